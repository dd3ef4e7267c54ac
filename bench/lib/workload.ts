/** The messages benchmarks write: order events of a realistic size (~200 bytes of JSON). */
import { type NewMessage, type PreparedMessage, prepareMessage } from "../../mod.ts";

/** The `i`-th order event. */
export function orderMessage(i: number): NewMessage {
  return {
    key: `order:${i % 1000}`,
    value: JSON.stringify({
      type: "order.created",
      order: { id: i, customer: `customer-${i % 977}`, total: (i % 10_000) / 100, currency: "EUR" },
      at: "2026-01-01T00:00:00.000Z",
    }),
    headers: { "content-type": "application/json" },
  };
}

/** `n` prepared order events, timestamps one millisecond apart, oldest first. */
export function preparedOrders(n: number, from = 0): PreparedMessage[] {
  const start = Date.now() - n;
  const out: PreparedMessage[] = [];
  for (let i = 0; i < n; i++) {
    out.push(prepareMessage(orderMessage(from + i), { maxMessageBytes: 1 << 20, now: new Date(start + i) }));
  }
  return out;
}
