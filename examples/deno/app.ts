/**
 * The order service of the Deno example: an orders table and the outbox in one libSQL
 * database, and the HTTP routes. main.ts wires it to Deno.serve and Deno.cron.
 */
import { createClient } from "@libsql/client";
import { cronHandler, Outbox } from "edge-outbox";
import { httpSender } from "edge-outbox/http";
import { LibsqlStore } from "edge-outbox/libsql";

/** Where the database is and where the webhooks go. */
export interface AppConfig {
  /** `file:orders.db` locally, `libsql://...turso.io` on Turso. */
  databaseUrl: string;
  authToken?: string;
  webhookUrl: string;
  /** A Standard Webhooks secret (`whsec_...`): the receiver verifies each request with it. */
  webhookSecret: string;
  /** Protects `POST /outbox/tick` (an external cron's entry point). */
  cronSecret: string;
}

export interface Order {
  id: string;
  total: number;
}

/** Opens the database, migrates it, and returns the service. */
export async function createApp(config: AppConfig) {
  const client = createClient({ url: config.databaseUrl, authToken: config.authToken });
  const store = new LibsqlStore(client);
  await store.migrate();
  await client.execute(
    "CREATE TABLE IF NOT EXISTS orders (id TEXT PRIMARY KEY, total INTEGER NOT NULL, created_at TEXT NOT NULL)",
  );
  const outbox = new Outbox(store, httpSender({ url: config.webhookUrl, secret: config.webhookSecret }));

  /**
   * Inserts the order and its `order.placed` message atomically: both or neither.
   * `withTransaction` waits for the write lock asynchronously and rolls back on a throw.
   */
  async function placeOrder(order: Order): Promise<void> {
    await store.withTransaction(async (tx) => {
      await tx.execute({
        sql: "INSERT INTO orders (id, total, created_at) VALUES (?, ?, ?)",
        args: [order.id, order.total, new Date().toISOString()],
      });
      await outbox.addMessage(tx, {
        key: `order:${order.id}`,
        value: JSON.stringify({ type: "order.placed", order }),
        headers: { "content-type": "application/json" },
      });
    });
  }

  const tick = cronHandler(outbox, { secret: config.cronSecret, budgetMs: 20_000 });

  /** `POST /orders` places an order; `POST /outbox/tick` relays (for an external cron). */
  async function fetch(request: Request): Promise<Response> {
    const { pathname } = new URL(request.url);
    if (pathname === "/orders" && request.method === "POST") {
      const order = (await request.json()) as Order;
      if (typeof order?.id !== "string" || !Number.isInteger(order.total)) {
        return Response.json({ error: "expected { id: string, total: integer }" }, { status: 400 });
      }
      await placeOrder(order);
      return Response.json({ placed: order.id }, { status: 201 });
    }
    if (pathname === "/outbox/tick") return tick(request);
    if (pathname === "/outbox/stats" && request.method === "GET") return Response.json(await outbox.stats());
    return new Response("not found", { status: 404 });
  }

  return { client, outbox, placeOrder, fetch, close: () => client.close() };
}
