/** Building claimed-looking messages without a store, for sender benchmarks. */
import { createMessage, type Message } from "../../mod.ts";
import { orderMessage } from "./workload.ts";

const encoder = new TextEncoder();

/** `n` fresh messages (status None) with ids `from+1 ...`, as a store would hand them out. */
export function claimedMessages(n: number, from = 0): Message[] {
  const out: Message[] = [];
  for (let i = 0; i < n; i++) {
    const m = orderMessage(from + i);
    out.push(
      createMessage({
        id: String(from + i + 1),
        key: m.key,
        value: typeof m.value === "string" ? encoder.encode(m.value) : m.value.slice(),
        headers: { ...(m.headers ?? {}) },
        timestamp: new Date(),
        retries: 0,
      }),
    );
  }
  return out;
}
