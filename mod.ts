/**
 * edge-outbox: a transactional outbox for TypeScript on web standards.
 *
 * Write a message in the same database transaction as your business data with
 * {@link Outbox.addMessage}; a relay (`tick()` from a cron trigger, or `start()` in a server)
 * delivers it at least once through a {@link Sender}. Stores and senders live in the subpath
 * exports `edge-outbox/libsql`, `edge-outbox/memory`, `edge-outbox/http`, `edge-outbox/qstash`.
 *
 * @module
 */
export { backoffDelay, nextAttemptAt, retryDelay } from "./src/backoff.ts";
export { constantTimeEqual } from "./src/constant-time.ts";
export { type CronHandlerOptions, type CronTarget, cronHandler } from "./src/cron.ts";
export {
  CallbackError,
  describeValue,
  LeaseLostError,
  OutboxError,
  type OutboxErrorCode,
  SendError,
  SendTimeoutError,
  StoreError,
  ValidationError,
} from "./src/errors.ts";
export {
  checkIdNamespace,
  formatMessageId,
  NAMESPACE_LENGTH,
  newIdNamespace,
  parseMessageId,
} from "./src/ids.ts";
export {
  createMessage,
  DEFAULT_MAX_MESSAGE_BYTES,
  type Message,
  type MessageRecord,
  type NewMessage,
  type PreparedMessage,
  prepareMessage,
  SendStatus,
} from "./src/message.ts";
export {
  type BackoffOptions,
  DEFAULT_OPTIONS,
  type OutboxOptions,
  type ResolvedOptions,
} from "./src/options.ts";
export { Outbox, type TickOptions, type TickResult } from "./src/outbox.ts";
export type { Sender } from "./src/sender.ts";
export {
  type Claim,
  type ClaimOptions,
  DEFAULT_DEAD_LIMIT,
  type DeadUpdate,
  deadListLimit,
  MAX_ERROR_LENGTH,
  type MessageStore,
  type Ordering,
  type OutboxStats,
  type PassOutcome,
  type RecordAndFetchResult,
  type RetryUpdate,
  releaseDelay,
  type TransactionalStore,
} from "./src/store.ts";
export { INSTRUMENTATION_SCOPE, OUTBOX_NAME } from "./src/telemetry.ts";
export { truncateText, wellFormedText } from "./src/text.ts";
export { extractTraceContext, type HeaderCarrier } from "./src/trace-context.ts";
