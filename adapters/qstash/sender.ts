import type { Client, PublishBatchRequest, PublishRequest } from "@upstash/qstash";
import { type Message, type Sender, ValidationError } from "../../mod.ts";
import { classifyQStashError, isPermanentQStashStatus, type QStashFailure } from "./errors.ts";

/**
 * The part of the `@upstash/qstash` `Client` this sender uses; pass a real `Client`
 * (`new Client({ token })`). Only types come from the package: nothing is imported at runtime.
 */
export type QStashClient = Pick<Client, "batch" | "publish" | "queue">;

/**
 * QStash publish options applied to every message, passed through to the client unchanged
 * (see `PublishRequest` in `@upstash/qstash`): `retries`, `retryDelay`, `delay`, `notBefore`,
 * `callback`, `failureCallback`, `timeout`, `method`, `flowControl`, `label`, `redact`.
 */
export type QStashPublishOptions = Pick<
  PublishRequest,
  | "retries"
  | "retryDelay"
  | "delay"
  | "notBefore"
  | "failureCallback"
  | "timeout"
  | "method"
  | "flowControl"
  | "label"
  | "redact"
> & { callback?: string };

const PUBLISH_OPTIONS = [
  "retries",
  "retryDelay",
  "delay",
  "notBefore",
  "callback",
  "failureCallback",
  "timeout",
  "method",
  "flowControl",
  "label",
  "redact",
] as const;

/**
 * Options of {@link qstashSender}: the client, one target, and QStash publish options
 * ({@link QStashPublishOptions}) applied to every message.
 */
export interface QStashSenderOptions extends QStashPublishOptions {
  /** A `Client` from `@upstash/qstash`. Its own retries add latency under `sendTimeout`: consider `retry: false`. */
  client: QStashClient;
  /** Deliver to this URL (absolute `http:`/`https:`). Exactly one of `destination` and `urlGroup`. */
  destination?: string;
  /** Deliver to every endpoint of this QStash URL group. */
  urlGroup?: string;
  /** Enqueue into this QStash queue (ordered delivery) on the way to `destination` or `urlGroup`. */
  queue?: string;
  /** Static headers forwarded with every message; a message's own headers override them. */
  headers?: Record<string, string>;
  /**
   * Which QStash statuses are permanent (the batch's messages die at once). Default
   * {@link isPermanentQStashStatus}: 4xx except 408, 425, 429.
   */
  permanent?: (status: number) => boolean;
}

/** The `content-type` sent when neither the message nor `headers` names one. */
export const DEFAULT_CONTENT_TYPE = "application/octet-stream";
const ABORTED: QStashFailure = { outcome: "retry", description: "aborted before the handoff to QStash" };
const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/**
 * A {@link Sender} that hands messages to Upstash QStash, which then delivers them (with its
 * own retries, signing and dead letter queue).
 *
 * A batch goes over in one `client.batch` call (into `queue` too, through the batch's
 * `queueName`). Each message carries `deduplicationId` = its
 * id, so a handoff repeated after a crash or timeout is accepted by QStash but not delivered
 * twice; its value as the body (a value that is not UTF-8 text goes alone through
 * `publish`/`enqueue`, which carry raw bytes); its headers (QStash forwards them, so
 * `traceparent` reaches the receiver; `upstash-*` ones are QStash options); and `content-type`
 * from the message, then `headers`, then {@link DEFAULT_CONTENT_TYPE}.
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
  const config = resolve(options);

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

interface ResolvedQStashOptions {
  client: QStashClient;
  target: { url: string } | { urlGroup: string };
  queue: string | undefined;
  headers: Record<string, string>;
  publish: QStashPublishOptions;
  permanent: (status: number) => boolean;
}

function resolve(options: QStashSenderOptions): ResolvedQStashOptions {
  if (typeof options !== "object" || options === null) {
    throw new ValidationError(
      "qstashSender options must be an object { client, destination | urlGroup, ... }",
    );
  }
  const { client, destination, urlGroup, queue, headers, permanent } = options;
  if (
    typeof client !== "object" ||
    client === null ||
    typeof client.batch !== "function" ||
    typeof client.publish !== "function" ||
    typeof client.queue !== "function"
  ) {
    throw new ValidationError("client must be a Client from @upstash/qstash (with batch, publish and queue)");
  }
  if ((destination === undefined) === (urlGroup === undefined)) {
    throw new ValidationError(
      `exactly one of destination and urlGroup is required, got ${destination === undefined ? "neither" : "both"}`,
    );
  }
  let target: ResolvedQStashOptions["target"];
  if (destination !== undefined) {
    if (
      typeof destination !== "string" ||
      !/^https?:\/\/[^/]/.test(destination) ||
      !URL.canParse(destination)
    ) {
      throw new ValidationError(`destination must be an absolute http(s) URL, got ${show(destination)}`);
    }
    target = { url: destination };
  } else {
    target = { urlGroup: nonEmpty("urlGroup", urlGroup) };
  }
  if (permanent !== undefined && typeof permanent !== "function") {
    throw new ValidationError(`permanent must be a function (status) => boolean, got ${show(permanent)}`);
  }
  const merged: Record<string, string> = { "content-type": DEFAULT_CONTENT_TYPE };
  if (headers !== undefined) {
    if (typeof headers !== "object" || headers === null || Array.isArray(headers)) {
      throw new ValidationError(`headers must be an object of string values, got ${show(headers)}`);
    }
    for (const [name, value] of Object.entries(headers)) {
      if (typeof value !== "string")
        throw new ValidationError(`headers["${name}"] must be a string, got ${show(value)}`);
      merged[name.toLowerCase()] = value;
    }
  }
  return {
    client,
    target,
    queue: queue === undefined ? undefined : nonEmpty("queue", queue),
    headers: merged,
    publish: pickPublishOptions(options),
    permanent: permanent ?? isPermanentQStashStatus,
  };
}

/** The QStash options among `options`, and only those (an unknown key is not sent on). */
function pickPublishOptions(options: QStashSenderOptions): QStashPublishOptions {
  const picked: Record<string, unknown> = {};
  for (const name of PUBLISH_OPTIONS) {
    if (options[name] !== undefined) picked[name] = options[name];
  }
  if (picked.retries !== undefined && (!Number.isInteger(picked.retries) || (picked.retries as number) < 0)) {
    throw new ValidationError(`retries must be an integer >= 0, got ${show(picked.retries)}`);
  }
  for (const name of ["callback", "failureCallback"] as const) {
    const url = picked[name];
    if (url !== undefined && (typeof url !== "string" || !/^https?:\/\//.test(url) || !URL.canParse(url))) {
      throw new ValidationError(`${name} must be an absolute http(s) URL, got ${show(url)}`);
    }
  }
  return picked as QStashPublishOptions;
}

function nonEmpty(name: string, value: unknown): string {
  if (typeof value !== "string" || value.trim() === "") {
    throw new ValidationError(`${name} must be a non-empty string, got ${show(value)}`);
  }
  return value;
}

function show(value: unknown): string {
  if (typeof value === "string") return `"${value.length > 60 ? `${value.slice(0, 60)}...` : value}"`;
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  return typeof value === "object" ? "an object" : String(value);
}
