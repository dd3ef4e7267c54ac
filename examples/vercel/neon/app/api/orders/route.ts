/**
 * POST /api/orders: the order and its outbox message commit together, or not at all, in one
 * PostgreSQL transaction on a connection of Neon's Pool (`store.withTransaction` runs BEGIN,
 * your writes, COMMIT, and ROLLBACK if anything throws).
 */
import { outbox, store } from "../../../lib/outbox";

export const runtime = "nodejs";

export async function POST(request: Request): Promise<Response> {
  const order = (await request.json()) as { id: string; total: number };
  try {
    await store.withTransaction(async (tx) => {
      await tx.query("INSERT INTO orders (id, total) VALUES ($1, $2)", [order.id, order.total]);
      await outbox.addMessage(tx, { key: `order:${order.id}`, value: JSON.stringify(order) });
    });
  } catch (error) {
    // Rolled back: neither the order nor its message exists.
    if ((error as { code?: unknown }).code === "23505") {
      return Response.json({ error: `order ${order.id} exists` }, { status: 409 });
    }
    throw error;
  }
  return Response.json({ placed: order.id }, { status: 201 });
}
