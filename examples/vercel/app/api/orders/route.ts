/**
 * POST /api/orders: the order and its outbox message commit together, or not at all. Over
 * Turso's HTTP protocol one `client.batch` is the atomic write (one round trip, no
 * interactive transaction held open across requests).
 */
import type { InStatement } from "@libsql/client";
import { client, outbox } from "../../../lib/outbox";

export const runtime = "nodejs";

export async function POST(request: Request): Promise<Response> {
  const order = (await request.json()) as { id: string; total: number };
  const statements: InStatement[] = [
    { sql: "INSERT INTO orders (id, total) VALUES (?, ?)", args: [order.id, order.total] },
  ];
  await outbox.addMessage(statements, { key: `order:${order.id}`, value: JSON.stringify(order) });
  await client.batch(statements, "write");
  return Response.json({ placed: order.id }, { status: 201 });
}
