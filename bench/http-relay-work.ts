/**
 * One round of benchmark 9's end-to-end relay, in any runtime (web standards only, no node:*):
 * load a fresh MemoryStore with `n` messages of 250 bytes (not timed), then drain it with
 * `Outbox.tick()` through the given `httpSender` (signed, 8 in flight) and return messages per
 * second. The Node side runs it in the benchmark process; Bun and Deno in bench/http-relay-child.ts.
 */
import { MemoryStore } from "../adapters/memory.ts";
import { Outbox, type Sender } from "../mod.ts";

/** Messages per claim: what a draining relay hands the sender at once. */
export const RELAY_BATCH = 100;
/** Requests in flight (`httpSender`'s default). */
export const IN_FLIGHT = 8;
/** Bytes of every message body. */
export const BODY_BYTES = 250;
/** The signing secret every side uses. */
export const RELAY_SECRET = `whsec_${btoa("edge-outbox-benchmark-secret-32b")}`;

/** A JSON order event padded to exactly {@link BODY_BYTES}. */
export function relayBody(i: number): string {
  const head = `{"type":"order.created","order":{"id":${i},"customer":"customer-${i % 977}","total":${(i % 10_000) / 100},"currency":"EUR"},"pad":"`;
  return `${head}${"x".repeat(Math.max(0, BODY_BYTES - head.length - 2))}"}`;
}

/** A MemoryStore holding `n` committed messages, and an Outbox over it with `sender`. */
export async function loadedOutbox(
  n: number,
  sender: Sender,
): Promise<{ store: MemoryStore; outbox: Outbox<unknown> }> {
  const store = new MemoryStore();
  const outbox = new Outbox(store, sender, {
    batchSize: RELAY_BATCH,
    // Generous deadlines: on a loaded machine a slow batch must not turn into retries.
    sendTimeout: 30_000,
    leaseDuration: 60_000,
    onError: (error) => {
      throw error;
    },
  });
  await store.transaction(async (tx) => {
    for (let i = 0; i < n; i++) {
      await outbox.addMessage(tx, {
        key: `order:${i % 1000}`,
        value: relayBody(i),
        headers: { "content-type": "application/json" },
      });
    }
  });
  return { store, outbox: outbox as Outbox<unknown> };
}

/** Drains `n` messages through `sender` with `Outbox.tick()`; messages per second. */
export async function relayRound(n: number, sender: Sender): Promise<number> {
  const { store, outbox } = await loadedOutbox(n, sender);
  const started = performance.now();
  const result = await outbox.tick();
  const seconds = (performance.now() - started) / 1000;
  const stats = await store.stats();
  if (result.sent !== n || stats.pending !== 0) {
    throw new Error(
      `relay round sent ${result.sent} of ${n} (${stats.pending} pending, ${result.failed} failed)`,
    );
  }
  return n / seconds;
}
