import type { Client, PublishRequest } from "@upstash/qstash";
import { ValidationError } from "../../mod.ts";
import { checkStaticHeaders } from "../shared/headers.ts";
import { checkTargetUrl } from "../shared/urls.ts";
import { isPermanentQStashStatus } from "./errors.ts";

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
 * Options of `qstashSender`: the client, one target, and QStash publish options
 * ({@link QStashPublishOptions}) applied to every message.
 */
export interface QStashSenderOptions extends QStashPublishOptions {
  /** A `Client` from `@upstash/qstash`. Its own retries add latency under `sendTimeout`: consider `retry: false`. */
  client: QStashClient;
  /**
   * Deliver to this URL (absolute `http:`/`https:`, without `user:password@`: put credentials
   * in `headers`). Exactly one of `destination` and `urlGroup`.
   */
  destination?: string;
  /** Deliver to every endpoint of this QStash URL group. */
  urlGroup?: string;
  /** Enqueue into this QStash queue (ordered delivery) on the way to `destination` or `urlGroup`. */
  queue?: string;
  /**
   * Static headers forwarded with every message; a message's own headers override them.
   * Checked like `httpSender`'s (valid names, no CR, LF or controls); errors never echo a value.
   */
  headers?: Record<string, string>;
  /**
   * Which QStash statuses are permanent (the batch's messages die at once). Default
   * {@link isPermanentQStashStatus}: 4xx except 408, 425, 429. When it throws or returns a
   * non-boolean, the messages fail (and are retried) with an error naming `permanent`.
   */
  permanent?: (status: number) => boolean;
  /**
   * Upper bound (ms) on the wait after a rate limit (QStash's reset time), so one answer cannot
   * park messages for long. Default 3_600_000 (1 h); a message retried early meets the limit again.
   */
  maxRetryAfter?: number;
}

/** The `content-type` sent when neither the message nor `headers` names one. */
export const DEFAULT_CONTENT_TYPE = "application/octet-stream";
const DEFAULT_MAX_RETRY_AFTER = 3_600_000;

/** Options with every default filled in and every value checked. */
export interface ResolvedQStashOptions {
  client: QStashClient;
  target: { url: string } | { urlGroup: string };
  queue: string | undefined;
  headers: Record<string, string>;
  publish: QStashPublishOptions;
  permanent: (status: number) => boolean;
  maxRetryAfter: number;
}

/** Checks `options` and fills in the defaults; throws a {@link ValidationError} naming the bad one. */
export function resolveQStashOptions(options: QStashSenderOptions): ResolvedQStashOptions {
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
    const checked = checkTargetUrl(destination);
    if ("problem" in checked) throw new ValidationError(`destination ${checked.problem}`);
    target = { url: checked.url };
  } else {
    target = { urlGroup: nonEmpty("urlGroup", urlGroup) };
  }
  if (permanent !== undefined && typeof permanent !== "function") {
    throw new ValidationError(`permanent must be a function (status) => boolean, got ${show(permanent)}`);
  }
  const merged: Record<string, string> = {
    "content-type": DEFAULT_CONTENT_TYPE,
    ...checkStaticHeaders(headers),
  };
  const maxRetryAfter = options.maxRetryAfter ?? DEFAULT_MAX_RETRY_AFTER;
  if (typeof maxRetryAfter !== "number" || !Number.isFinite(maxRetryAfter) || maxRetryAfter < 0) {
    throw new ValidationError(
      `maxRetryAfter must be a finite number of milliseconds >= 0, got ${show(maxRetryAfter)}`,
    );
  }
  return {
    maxRetryAfter,
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
    if (url === undefined) continue;
    const checked = checkTargetUrl(url);
    if ("problem" in checked) throw new ValidationError(`${name} ${checked.problem}`);
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
