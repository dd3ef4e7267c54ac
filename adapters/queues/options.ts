import { ValidationError } from "../../mod.ts";

/**
 * The content types a Cloudflare Queue accepts for a message body. `queueSender` always sends
 * `"json"` (see {@link QueuedMessageBody}).
 */
export type QueueContentType = "text" | "bytes" | "json" | "v8";

/** One entry of `Queue.sendBatch`, as the Workers runtime takes it. */
export interface QueueSendRequest<Body = unknown> {
  body: Body;
  contentType?: QueueContentType;
  delaySeconds?: number;
}

/**
 * The part of a Cloudflare Queue producer binding (`env.MY_QUEUE`, the `Queue` type of
 * `@cloudflare/workers-types`) this sender uses. Declared structurally so that edge-outbox needs
 * no Cloudflare types: a real binding fits it.
 */
export interface QueueProducer {
  send(body: unknown, options?: { contentType?: QueueContentType; delaySeconds?: number }): Promise<unknown>;
  sendBatch(messages: Iterable<QueueSendRequest>, options?: { delaySeconds?: number }): Promise<unknown>;
}

/**
 * Cloudflare Queues limits, from https://developers.cloudflare.com/queues/platform/limits/
 * (read 2 December 2026): a message is at most 128 KB, a `sendBatch` call at most 100 messages
 * or 256 KB in total, where 1 KB is 1000 bytes and each message may carry up to ~100 bytes of
 * internal metadata that counts towards both limits.
 *
 * Miniflare is looser, so passing there proves nothing about these numbers: Miniflare 4
 * (4.20260426.0) refuses a message over 128,000 bytes of body and a call over 100 messages or
 * 288,000 bytes of bodies, metadata not counted (its error still says "limit of 256000").
 * test/queues checks the split against Cloudflare's numbers by recording the calls the sender
 * makes on the real binding.
 */
export const QUEUE_LIMITS = {
  /** Messages per `sendBatch` call. */
  batchMessages: 100,
  /** Bytes per `sendBatch` call, metadata included. */
  batchBytes: 256_000,
  /** Bytes per message, metadata included. */
  messageBytes: 128_000,
} as const;

/** What Queues may add to each message's size (its internal metadata), counted against both limits. */
export const QUEUE_METADATA_BYTES = 100;

/**
 * Per-call limits the sender splits batches to. The defaults are Cloudflare's
 * ({@link QUEUE_LIMITS}); lower them to leave headroom, raise them only when Cloudflare's limits
 * page says the platform has.
 */
export interface QueueLimits {
  /** Messages per `sendBatch` call. Integer >= 1. Default 100. */
  batchMessages?: number;
  /** Bytes per `sendBatch` call (bodies plus 100 bytes of metadata each). Default 256000. */
  batchBytes?: number;
  /**
   * Bytes per message (its JSON body plus 100 bytes of metadata). A message over it is dead at
   * once: its size never changes, so no retry can send it. Default 128000.
   */
  messageBytes?: number;
}

/** Options of `queueSender`. */
export interface QueueSenderOptions {
  /** The Queue producer binding (`env.MY_QUEUE`, a `[[queues.producers]]` entry of wrangler.toml). */
  queue: QueueProducer;
  /** Limits to split batches to; Cloudflare's by default. */
  limits?: QueueLimits;
}

/** Options with every default filled in and every value checked. */
export interface ResolvedQueueOptions {
  queue: QueueProducer;
  limits: Required<QueueLimits>;
}

/** Checks `options` and fills in the defaults; throws a {@link ValidationError} naming the bad one. */
export function resolveQueueOptions(options: QueueSenderOptions): ResolvedQueueOptions {
  if (typeof options !== "object" || options === null) {
    throw new ValidationError("queueSender options must be an object { queue, limits? }");
  }
  const { queue, limits } = options;
  if (
    typeof queue !== "object" ||
    queue === null ||
    typeof queue.send !== "function" ||
    typeof queue.sendBatch !== "function"
  ) {
    throw new ValidationError(
      `queue must be a Cloudflare Queue producer binding (with send and sendBatch methods), got ${describe(queue)}`,
    );
  }
  if (limits !== undefined && (typeof limits !== "object" || limits === null || Array.isArray(limits))) {
    throw new ValidationError(
      `limits must be an object { batchMessages?, batchBytes?, messageBytes? }, got ${describe(limits)}`,
    );
  }
  const resolved = {
    batchMessages: limit("batchMessages", limits?.batchMessages, QUEUE_LIMITS.batchMessages, 1),
    batchBytes: limit("batchBytes", limits?.batchBytes, QUEUE_LIMITS.batchBytes, QUEUE_METADATA_BYTES + 2),
    messageBytes: limit(
      "messageBytes",
      limits?.messageBytes,
      QUEUE_LIMITS.messageBytes,
      QUEUE_METADATA_BYTES + 2,
    ),
  };
  if (resolved.messageBytes > resolved.batchBytes) {
    throw new ValidationError(
      `limits.messageBytes (${resolved.messageBytes}) must not exceed limits.batchBytes (${resolved.batchBytes}): a message must fit in a batch`,
    );
  }
  return { queue, limits: resolved };
}

function limit(name: string, value: unknown, fallback: number, min: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < min) {
    throw new ValidationError(`limits.${name} must be an integer >= ${min}, got ${describe(value)}`);
  }
  return value;
}

function describe(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  if (typeof value === "number") return String(value);
  return typeof value === "object" ? "an object" : `a ${typeof value}`;
}
