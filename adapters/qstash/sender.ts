import type { PublishBatchRequest } from "@upstash/qstash";
import type { Message, Sender } from "../../mod.ts";
import { describeThrown, safeText } from "../shared/error-text.ts";
import { sendableHeaders } from "../shared/headers.ts";
import { classifyQStashError, type QStashFailure } from "./errors.ts";
import { type QStashSenderOptions, resolveQStashOptions } from "./options.ts";

const ABORTED: QStashFailure = { outcome: "retry", description: "aborted before the handoff to QStash" };
const TOO_LARGE = 413;
const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/**
 * A {@link Sender} that hands messages to Upstash QStash, which then delivers them (with its
 * own retries, signing and dead letter queue).
 *
 * A batch goes over in one `client.batch` call (into `queue` too, through the batch's
 * `queueName`). Each message carries `deduplicationId` = its id, so a handoff repeated after a
 * crash or timeout is accepted by QStash but not delivered twice; its value as the body (a value that is not UTF-8 text goes alone through
 * `publish`/`enqueue`, which carry raw bytes); its headers (QStash forwards them, so the
 * trace headers the registered OpenTelemetry propagator wrote reach the receiver; `upstash-*`
 * ones are QStash options); and `content-type` from the message, then `headers`, then
 * `DEFAULT_CONTENT_TYPE` (`application/octet-stream`).
 *
 * Outcomes: accepted (or deduplicated) is sent; a per-message `{ error }` in the batch answer
 * fails that message; rate limits fail with the reset time as `retryAfter`; 5xx and network
 * errors fail; other 4xx are dead (see `permanent`). A request-level 413 (the batch too large
 * for QStash) splits the batch and retries the halves; one message alone answered 413 fails
 * (retried), never dies. A message whose own header cannot be sent fails alone; an unsendable
 * `traceparent`/`tracestate` is dropped. The client has no abort signal: a call
 * still running at `sendTimeout` is abandoned by the relay, and deduplication makes the retry safe.
 *
 * @throws {ValidationError} on bad options.
 * @example
 * ```ts
 * import { Client } from "@upstash/qstash";
 * const sender = qstashSender({
 *   client: new Client({ token: env.QSTASH_TOKEN }),
 *   destination: "https://example.com/hooks",
 *   retries: 5,
 *   failureCallback: "https://example.com/hooks/failed",
 * });
 * ```
 */
export function qstashSender(options: QStashSenderOptions): Sender {
  const config = resolveQStashOptions(options);

  /**
   * The client request for one message (`body` is text for the batch, else raw bytes), or why
   * the message cannot be handed over: a header `fetch` would refuse fails this message only,
   * where it would otherwise make the client throw for the whole batch.
   */
  function request(message: Message, body: string | Blob): PublishBatchRequest | { error: string } {
    const own = sendableHeaders(message.headers);
    if ("error" in own) return { error: `message ${message.id}: ${own.error}` };
    const headers: Record<string, string> = { ...config.headers, ...own.headers };
    return {
      ...config.publish,
      ...config.target,
      ...(config.queue === undefined ? {} : { queueName: config.queue }),
      body,
      headers,
      deduplicationId: message.id,
    };
  }

  function fail(messages: Message[], failure: QStashFailure): void {
    const retryAfter =
      failure.retryAfter === undefined ? undefined : Math.min(failure.retryAfter, config.maxRetryAfter);
    for (const message of messages) {
      const error = `${failure.description} (message ${message.id})`;
      if (failure.outcome === "dead") message.markAsDead({ error });
      else message.markAsFailed({ error, retryAfter });
    }
  }

  function classify(error: unknown): QStashFailure {
    try {
      return classifyQStashError(error, config.permanent);
    } catch {
      // An error object whose fields throw when read: fail (retry), never reject the send.
      return { outcome: "retry", description: `QStash request failed: ${describeThrown(error)}` };
    }
  }

  /**
   * Hands over a batch of text messages. A request-level 413 (the batch as a whole is larger
   * than QStash takes) splits the batch in halves and tries each; a single message still
   * answered 413 fails (to be retried: the limit depends on the QStash plan), never dies
   * with the rest of the batch. At most log2(batch size) rounds of splitting.
   */
  async function sendBatch(messages: Message[], bodies: string[], signal: AbortSignal): Promise<void> {
    if (signal.aborted) return fail(messages, ABORTED);
    const ready: Message[] = [];
    const requests: PublishBatchRequest[] = [];
    messages.forEach((message, i) => {
      const built = request(message, bodies[i]!);
      if ("error" in built) message.markAsFailed({ error: built.error });
      else {
        ready.push(message);
        requests.push(built);
      }
    });
    if (ready.length === 0) return;
    let results: unknown;
    try {
      results = await config.client.batch(requests);
    } catch (error) {
      const failure = classify(error);
      if (failure.status === TOO_LARGE && ready.length > 1) {
        const half = Math.ceil(ready.length / 2);
        const readyBodies = requests.map((r) => r.body as string);
        await sendBatch(ready.slice(0, half), readyBodies.slice(0, half), signal);
        await sendBatch(ready.slice(half), readyBodies.slice(half), signal);
        return;
      }
      if (failure.status === TOO_LARGE) return fail(ready, { ...failure, outcome: "retry" });
      return fail(ready, failure);
    }
    const list = Array.isArray(results) ? results : [results];
    ready.forEach((message, i) => {
      recordResult(message, list[i]);
    });
  }

  async function sendAlone(message: Message): Promise<void> {
    // The client types bodies as fetch's BodyInit without byte arrays; a Blob carries the bytes.
    const single = request(message, new Blob([message.value as Uint8Array<ArrayBuffer>]));
    if ("error" in single) {
      message.markAsFailed({ error: single.error });
      return;
    }
    try {
      const result = config.queue
        ? await config.client.queue({ queueName: config.queue }).enqueue(single)
        : await config.client.publish(single);
      recordResult(message, result);
    } catch (error) {
      const failure = classify(error);
      fail([message], failure.status === TOO_LARGE ? { ...failure, outcome: "retry" } : failure);
    }
  }

  return {
    async send(messages, signal) {
      if (signal.aborted) {
        fail(messages, ABORTED);
        return messages;
      }
      const text: Message[] = [];
      const bodies: string[] = [];
      const binary: Message[] = [];
      for (const message of messages) {
        const body = decodeText(message.value);
        if (body === undefined) binary.push(message);
        else {
          text.push(message);
          bodies.push(body);
        }
      }
      if (text.length > 0) await sendBatch(text, bodies, signal);
      for (const message of binary) {
        if (signal.aborted) fail([message], ABORTED);
        else await sendAlone(message);
      }
      return messages;
    },
  };
}

/**
 * Marks one message from its entry in QStash's answer: `{ messageId }` (deduplicated or not)
 * is sent, `{ error }` fails, a URL group's array is sent when every endpoint accepted.
 */
function recordResult(message: Message, result: unknown): void {
  const entries = Array.isArray(result) ? result : [result];
  const errors: string[] = [];
  for (const entry of entries) {
    const fields = (typeof entry === "object" && entry !== null ? entry : {}) as Record<string, unknown>;
    if (typeof fields.error === "string") errors.push(fields.error);
    else if (typeof fields.messageId !== "string") errors.push("no messageId in QStash's answer");
  }
  if (entries.length === 0) errors.push("QStash accepted it for no endpoint (empty URL group?)");
  if (errors.length === 0) {
    message.markAsSent();
    return;
  }
  message.markAsFailed({ error: `QStash refused message ${message.id}: ${safeText(errors[0]!, 200)}` });
}

function decodeText(value: Uint8Array): string | undefined {
  try {
    return utf8.decode(value);
  } catch {
    return undefined;
  }
}
