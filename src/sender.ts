import type { Message } from "./message.ts";

/**
 * Carries messages to where they are consumed. Gets a batch sorted oldest first and marks each
 * message (`markAsSent`, `markAsFailed`, `markAsDead`), then returns them.
 *
 * The relay is strict about the result: a message left unmarked, missing from the result, or
 * a throw or a timeout counts as a failure for the messages not yet marked (they are retried);
 * the error goes to `onError`. A sender should honour `signal`: it aborts at `sendTimeout`.
 *
 * @example
 * ```ts
 * const consoleSender: Sender = {
 *   async send(messages) {
 *     for (const m of messages) { console.log(m.id, m.key); m.markAsSent(); }
 *     return messages;
 *   },
 * };
 * ```
 */
export interface Sender {
  send(messages: Message[], signal: AbortSignal): Promise<Message[]>;
}
