import type { Message, Sender } from "../../mod.ts";
import { describeThrown } from "../shared/error-text.ts";
import { jsonBytes, type QueuedMessageBody, queuedBody } from "./body.ts";
import { QUEUE_METADATA_BYTES, type QueueSenderOptions, resolveQueueOptions } from "./options.ts";

/** One message ready for the queue, with the size Queues will count for it. */
interface Entry {
  message: Message;
  body: QueuedMessageBody;
  bytes: number;
}

/** Errors of the Workers runtime (and Miniflare) when a call is over a size or count limit. */
const OVER_LIMIT = /exceeds|too large|limit of/i;
const RATE_LIMITED = /too many requests/i;
/** How long a rate-limited batch waits: Queues refuses sends until the producer slows down. */
const RATE_LIMIT_WAIT = 1000;

/**
 * A {@link Sender} that puts outbox messages on a Cloudflare Queue through its producer binding,
 * for a consumer Worker (or a pull consumer) to process with Queues' own batching, retries and
 * dead letter queue.
 *
 * Each message goes as one queue message with content type `"json"` and the body
 * {@link QueuedMessageBody} `{ id, key, headers, timestamp, value, encoding }`: the outbox id to
 * deduplicate on, the key, the headers (the trace context the registered propagator wrote, for
 * `extractTraceContext`), and the value as UTF-8 text or, for bytes that are not UTF-8, base64.
 * A consumer reads it with {@link readQueuedMessage}.
 *
 * A batch goes over in as few `sendBatch` calls as Cloudflare's limits allow (100 messages and
 * 256 KB per call, 128 KB per message, ~100 bytes of metadata each: {@link QUEUE_LIMITS}), oldest
 * first. Outcomes:
 * - a call that resolves: its messages are sent;
 * - a call that throws: its messages fail and are retried by the outbox (a "Too Many Requests"
 *   after 1 s); a call refused as over a size or count limit is split in halves first, so one
 *   message the platform counts larger than we do cannot hold back the others;
 * - a message over the per-message limit is dead at once with an error giving its size: its
 *   size never changes, so every retry would fail alike (requeue it once it fits, say with
 *   another sender). The value goes as text or base64, whichever is smaller as JSON, so a
 *   message is dead only when neither fits.
 *
 * `sendBatch` takes no abort signal: a call still running at `sendTimeout` is abandoned by the
 * relay and its messages retried, so a consumer can see an id twice: deduplicate on `id`. Once
 * the signal has aborted no further call starts (a split's later halves included): what is left
 * fails without being handed over.
 *
 * @throws {ValidationError} when `queue` is not a Queue producer binding or `limits` is invalid.
 * @example
 * ```ts
 * // wrangler.toml: [[queues.producers]] binding = "ORDERS_QUEUE", queue = "orders"
 * const outbox = new Outbox(new D1Store(env.DB), queueSender({ queue: env.ORDERS_QUEUE }));
 * ```
 */
export function queueSender(options: QueueSenderOptions): Sender {
  const { queue, limits } = resolveQueueOptions(options);

  /**
   * Hands `entries` over in one `sendBatch` call, halving on a limit error. The signal is checked
   * before every call, the halves' included: once the relay has sealed the batch at `sendTimeout`,
   * a message queued anyway would be queued again by its retry.
   */
  async function hand(entries: Entry[], signal: AbortSignal): Promise<void> {
    if (signal.aborted) {
      for (const { message } of entries) {
        message.markAsFailed({ error: `aborted before the handoff to the queue (message ${message.id})` });
      }
      return;
    }
    try {
      await queue.sendBatch(entries.map((entry) => ({ body: entry.body, contentType: "json" })));
    } catch (error) {
      const reason = describeThrown(error);
      if (OVER_LIMIT.test(reason) && entries.length > 1) {
        const half = Math.ceil(entries.length / 2);
        await hand(entries.slice(0, half), signal);
        await hand(entries.slice(half), signal);
        return;
      }
      const retryAfter = RATE_LIMITED.test(reason) ? RATE_LIMIT_WAIT : undefined;
      for (const { message } of entries) {
        message.markAsFailed({ error: `the queue refused message ${message.id}: ${reason}`, retryAfter });
      }
      return;
    }
    for (const { message } of entries) message.markAsSent();
  }

  return {
    async send(messages, signal) {
      const entries: Entry[] = [];
      for (const message of messages) {
        const body = queuedBody(message);
        const bytes = jsonBytes(body) + QUEUE_METADATA_BYTES;
        if (bytes > limits.messageBytes) {
          message.markAsDead({
            error: `message ${message.id} is ${bytes} bytes as a queue message (its JSON body plus ${QUEUE_METADATA_BYTES} of metadata), over the limit of ${limits.messageBytes} per message: no retry can send it`,
          });
        } else entries.push({ message, body, bytes });
      }
      for (const batch of splitToLimits(entries, limits.batchMessages, limits.batchBytes)) {
        await hand(batch, signal);
      }
      return messages;
    },
  };
}

/** Consecutive runs of `entries` of at most `maxCount` entries and `maxBytes` bytes each, in order. */
export function splitToLimits<T extends { bytes: number }>(
  entries: T[],
  maxCount: number,
  maxBytes: number,
): T[][] {
  const batches: T[][] = [];
  let current: T[] = [];
  let bytes = 0;
  for (const entry of entries) {
    if (current.length > 0 && (current.length === maxCount || bytes + entry.bytes > maxBytes)) {
      batches.push(current);
      current = [];
      bytes = 0;
    }
    current.push(entry);
    bytes += entry.bytes;
  }
  if (current.length > 0) batches.push(current);
  return batches;
}
