/**
 * The runtime-neutral part of the Deno and Bun checks: an outbox over any store that relays
 * through a plain-fetch sender to a receiver URL. Web-standard only, so each runtime runs the
 * same code and only the receiver (Deno.serve, Bun.serve) differs.
 */
import { Outbox, type Sender, type TransactionalStore } from "../../../mod.ts";

/** A sender that POSTs each message to `url` with its id as `webhook-id`. */
export function fetchSender(url: string): Sender {
  return {
    async send(messages, signal) {
      for (const message of messages) {
        const response = await fetch(url, {
          method: "POST",
          // TS 5.7+ types Uint8Array<ArrayBufferLike> as no BodyInit; the bytes are a plain ArrayBuffer.
          body: message.value as Uint8Array<ArrayBuffer>,
          headers: { "webhook-id": message.id, "x-key": message.key },
          signal,
        });
        await response.body?.cancel();
        if (response.ok) message.markAsSent();
        else message.markAsFailed();
      }
      return messages;
    },
  };
}

/**
 * Commits `count` messages in one transaction of `store`, rolls another one back, ticks, and
 * returns the tick's result with the store's statistics after it.
 */
export async function relayOnce<T>(store: TransactionalStore<T>, url: string, count: number) {
  const errors: unknown[] = [];
  const outbox = new Outbox(store, fetchSender(url), { batchSize: 4, onError: (e) => errors.push(e) });
  await store.withTransaction(async (tx) => {
    for (let i = 0; i < count; i++) {
      await outbox.addMessage(tx, { key: `order:${i}`, value: JSON.stringify({ order: i }) });
    }
  });
  // A rolled-back transaction leaves nothing to relay.
  await store
    .withTransaction(async (tx) => {
      await outbox.addMessage(tx, { key: "order:rolled-back", value: "{}" });
      throw new Error("rollback");
    })
    .catch(() => {});
  const result = await outbox.tick();
  return { result, errors, stats: await store.stats() };
}

/** One request a receiver got. */
export interface Delivery {
  id: string | null;
  key: string | null;
  body: string;
}

/** A fetch handler for Deno.serve / Bun.serve that records deliveries and answers 204. */
export function recordingReceiver(): { received: Delivery[]; handle(request: Request): Promise<Response> } {
  const received: Delivery[] = [];
  return {
    received,
    async handle(request) {
      received.push({
        id: request.headers.get("webhook-id"),
        key: request.headers.get("x-key"),
        body: await request.text(),
      });
      return new Response(null, { status: 204 });
    },
  };
}

/**
 * Relays 10 messages from `store` to `url` (served by `receiver`) and returns what went wrong,
 * if anything: an empty list means every message arrived once, in order, and none rolled back.
 */
export async function checkRelay<T>(
  store: TransactionalStore<T>,
  url: string,
  received: readonly Delivery[],
): Promise<string[]> {
  const { result, errors, stats } = await relayOnce(store, url, 10);
  const problems: string[] = [];
  const expect = (what: string, actual: unknown, expected: unknown) => {
    const a = JSON.stringify(actual);
    const e = JSON.stringify(expected);
    if (a !== e) problems.push(`${what}: expected ${e}, got ${a}`);
  };
  expect("tick", [result.sent, result.failed, result.dead, result.batches], [10, 0, 0, 3]);
  expect("errors", errors.map(String), []);
  expect("pending after tick", stats.pending, 0);
  expect(
    "keys received",
    received.map((r) => r.key),
    Array.from({ length: 10 }, (_, i) => `order:${i}`),
  );
  expect("distinct ids", new Set(received.map((r) => r.id)).size, 10);
  expect("a body", received[3] && JSON.parse(received[3].body), { order: 3 });
  return problems;
}
