import type { PublishBatchRequest } from "@upstash/qstash";
import type { Message, Sender } from "../../mod.ts";
import { classifyQStashError, type QStashFailure } from "./errors.ts";
import { type QStashSenderOptions, resolveQStashOptions } from "./options.ts";

const ABORTED: QStashFailure = { outcome: "retry", description: "aborted before the handoff to QStash" };
const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/**
 * A {@link Sender} that hands messages to Upstash QStash, which then delivers them (with its
 * own retries, signing and dead letter queue).
 *
 * A batch goes over in one `client.batch` call (into `queue` too, through the batch's
 * `queueName`). Each message carries `deduplicationId` = its id, so a handoff repeated after a
 * crash or timeout is accepted by QStash but not delivered twice; its value as the body (a value that is not UTF-8 text goes alone through
 * `publish`/`enqueue`, which carry raw bytes); its headers (QStash forwards them, so
 * `traceparent` reaches the receiver; `upstash-*` ones are QStash options); and `content-type`
 * from the message, then `headers`, then `DEFAULT_CONTENT_TYPE` (`application/octet-stream`).
 *
 * Outcomes: accepted (or deduplicated) is sent; a per-message `{ error }` in the batch answer
 * fails that message; rate limits fail with the reset time as `retryAfter`; 5xx and network
 * errors fail; other 4xx are dead (see `permanent`). The client has no abort signal: a call
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

  /** The client request for one message; `body` is text for the batch, else raw bytes. */
  function request(message: Message, body: string | Blob): PublishBatchRequest {
    const headers: Record<string, string> = { ...config.headers };
    const own = message.headers;
    for (const name in own) headers[name] = own[name]!;
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
    for (const message of messages) {
      const error = `${failure.description} (message ${message.id})`;
      if (failure.outcome === "dead") message.markAsDead({ error });
      else message.markAsFailed({ error, retryAfter: failure.retryAfter });
    }
  }

  async function sendBatch(messages: Message[], bodies: string[]): Promise<void> {
    let results: unknown;
    try {
      results = await config.client.batch(messages.map((m, i) => request(m, bodies[i]!)));
    } catch (error) {
      return fail(messages, classifyQStashError(error, config.permanent));
    }
    const list = Array.isArray(results) ? results : [results];
    messages.forEach((message, i) => {
      recordResult(message, list[i]);
    });
  }

  async function sendAlone(message: Message): Promise<void> {
    // The client types bodies as fetch's BodyInit without byte arrays; a Blob carries the bytes.
    const single = request(message, new Blob([message.value as Uint8Array<ArrayBuffer>]));
    try {
      const result = config.queue
        ? await config.client.queue({ queueName: config.queue }).enqueue(single)
        : await config.client.publish(single);
      recordResult(message, result);
    } catch (error) {
      fail([message], classifyQStashError(error, config.permanent));
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
      if (text.length > 0) await sendBatch(text, bodies);
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
  const detail = errors[0]!.length > 200 ? `${errors[0]!.slice(0, 200)}...` : errors[0];
  message.markAsFailed({ error: `QStash refused message ${message.id}: ${detail}` });
}

function decodeText(value: Uint8Array): string | undefined {
  try {
    return utf8.decode(value);
  } catch {
    return undefined;
  }
}
