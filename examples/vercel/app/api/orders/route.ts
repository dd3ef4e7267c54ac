/** POST /api/orders: the order and its outbox message commit together, or not at all. */
import { client, outbox } from "../../../lib/outbox";

export const runtime = "nodejs";

export async function POST(request: Request): Promise<Response> {
  const order = (await request.json()) as { id: string; total: number };
  const tx = await client.transaction("write");
  try {
    await tx.execute({ sql: "INSERT INTO orders (id, total) VALUES (?, ?)", args: [order.id, order.total] });
    await outbox.addMessage(tx, { key: `order:${order.id}`, value: JSON.stringify(order) });
    await tx.commit();
  } finally {
    tx.close();
  }
  return Response.json({ placed: order.id }, { status: 201 });
}
