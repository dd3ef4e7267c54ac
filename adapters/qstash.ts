/**
 * `edge-outbox/qstash`: hand outbox messages to Upstash QStash with the `@upstash/qstash`
 * client (a peer dependency you install and construct). QStash then delivers each message
 * with its own retries and signatures; `deduplicationId` = the message id keeps a repeated
 * handoff from being delivered twice.
 *
 * @module
 */
export {
  classifyQStashError,
  isPermanentQStashStatus,
  type QStashFailure,
  resetDelay,
} from "./qstash/errors.ts";
export {
  DEFAULT_CONTENT_TYPE,
  type QStashClient,
  type QStashPublishOptions,
  type QStashSenderOptions,
} from "./qstash/options.ts";
export { qstashSender } from "./qstash/sender.ts";
