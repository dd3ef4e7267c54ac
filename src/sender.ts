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
  /**
   * Opt-in to the streaming send window: this sender delivers each message independently of
   * the others (one request per message, as `httpSender` does), and can carry up to `window`
   * messages at once. The relay then keeps up to `window` messages in flight continuously,
   * calling `send([message], signal)` with ONE message per call, each under its own
   * `sendTimeout`; as messages finish, their outcomes are recorded in grouped writes and more
   * are claimed to refill the window, so one slow message holds one slot, not a batch.
   * An integer from 1 to 10000 (the `Outbox` constructor checks it).
   *
   * Leave it undefined for a sender whose messages travel together (a batch API such as
   * QStash's, a transaction, a single stream): the relay then sends whole batches of
   * `batchSize`, one pass at a time.
   *
   * @example
   * ```ts
   * const webhookSender: Sender = {
   *   window: 16,
   *   async send([message], signal) {
   *     const response = await fetch(url, { method: "POST", body: message!.value, signal });
   *     if (response.ok) message!.markAsSent();
   *     else message!.markAsFailed({ error: `HTTP ${response.status}` });
   *     return [message!];
   *   },
   * };
   * ```
   */
  readonly window?: number;
}
