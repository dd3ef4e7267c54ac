/**
 * The demo's business side: an `orders` table, and placing an order the outbox way, the order
 * row and its `order.created` message in one write transaction, so either both exist or neither.
 */
import type { Client, Transaction } from "@libsql/client";
import type { LibsqlTx } from "../adapters/libsql.ts";
import type { Outbox } from "../mod.ts";

/** Creates the `orders` table (idempotent). */
export async function createOrdersTable(client: Client): Promise<void> {
  await client.execute(`CREATE TABLE IF NOT EXISTS orders (
    id INTEGER PRIMARY KEY,
    customer TEXT NOT NULL,
    total_cents INTEGER NOT NULL,
    currency TEXT NOT NULL,
    created_at TEXT NOT NULL
  )`);
}

/** The order with this number: deterministic, so every run tells the same story. */
export function orderFor(id: number, poisoned: boolean) {
  return {
    id,
    customer: `customer-${(id * 37) % 101}`,
    totalCents: 1_000 + ((id * 7919) % 90_000),
    // The receiver refuses this currency for good: the one message that goes dead.
    currency: poisoned ? "XXX" : "EUR",
    createdAt: new Date().toISOString(),
  };
}

/**
 * `client.transaction("write")` (BEGIN IMMEDIATE), waiting while another connection holds the
 * write lock: the relay in this same process takes it for a moment per claim and per mark, and
 * SQLite answers `SQLITE_BUSY` at once (the driver is synchronous, so no busy_timeout is set).
 * Retrying BEGIN is safe: it wrote nothing. Bounded: about 5 s.
 */
export async function beginWrite(client: Client): Promise<Transaction> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await client.transaction("write");
    } catch (error) {
      if ((error as { code?: unknown }).code !== "SQLITE_BUSY" || attempt >= 500) throw error;
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  }
}

/** Writes the order and its message in one transaction, then commits. */
export async function placeOrder(
  client: Client,
  outbox: Outbox<LibsqlTx>,
  order: ReturnType<typeof orderFor>,
): Promise<void> {
  const tx = await beginWrite(client);
  try {
    await tx.execute({
      sql: "INSERT INTO orders (id, customer, total_cents, currency, created_at) VALUES (?, ?, ?, ?, ?)",
      args: [order.id, order.customer, order.totalCents, order.currency, order.createdAt],
    });
    await outbox.addMessage(tx, {
      key: `order:${order.id}`,
      value: JSON.stringify({ type: "order.created", order }),
      headers: { "content-type": "application/json" },
    });
    await tx.commit();
  } finally {
    // Rolls back if commit was not reached; a no-op after commit.
    tx.close();
  }
}
