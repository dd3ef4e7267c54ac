/**
 * The runtime-neutral part of the Deno and Bun checks: an outbox over a MemoryStore that relays
 * through a plain-fetch sender to a receiver URL. Web-standard only, so each runtime runs the
 * same code and only the receiver (Deno.serve, Bun.serve) differs.
 */
import { MemoryStore } from "../../../adapters/memory.ts";
import { Outbox, type Sender } from "../../../mod.ts";

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

/** Commits `count` messages in one transaction, ticks, and returns the tick's result. */
export async function relayOnce(url: string, count: number) {
  const store = new MemoryStore();
  const errors: unknown[] = [];
  const outbox = new Outbox(store, fetchSender(url), { batchSize: 4, onError: (e) => errors.push(e) });
  await store.transaction(async (tx) => {
    for (let i = 0; i < count; i++) {
      await outbox.addMessage(tx, { key: `order:${i}`, value: JSON.stringify({ order: i }) });
    }
  });
  // A rolled-back transaction leaves nothing to relay.
  await store
    .transaction(async (tx) => {
      await outbox.addMessage(tx, { key: "order:rolled-back", value: "{}" });
      throw new Error("rollback");
    })
    .catch(() => {});
  const result = await outbox.tick();
  return { result, errors, stats: await store.stats() };
}
