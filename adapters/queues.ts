/**
 * `edge-outbox/queues`: relay outbox messages onto a Cloudflare Queue through its producer
 * binding, and read them back in the consumer Worker. No Cloudflare types needed: the binding
 * is typed structurally.
 *
 * @module
 */
export { type QueuedMessage, type QueuedMessageBody, readQueuedMessage } from "./queues/body.ts";
export {
  QUEUE_LIMITS,
  QUEUE_METADATA_BYTES,
  type QueueContentType,
  type QueueLimits,
  type QueueProducer,
  type QueueSenderOptions,
  type QueueSendRequest,
} from "./queues/options.ts";
export { queueSender } from "./queues/sender.ts";
