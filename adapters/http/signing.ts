/**
 * Standard Webhooks signatures (https://www.standardwebhooks.com/) with Web Crypto only:
 * `v1,` + base64 HMAC-SHA256 of `${id}.${timestamp}.${body}`, keyed by a `whsec_` secret.
 */
import { ValidationError } from "../../mod.ts";
import { decodeBase64, encodeBase64 } from "../shared/base64.ts";

export { decodeBase64, encodeBase64 };

/**
 * A signing secret: a Standard Webhooks string (`whsec_` + base64 of the key; the prefix is
 * optional) or the raw key bytes.
 */
export type WebhookSecret = string | Uint8Array;

/** One secret, or several while rotating (sign with each; verify against any). */
export type WebhookSecrets = WebhookSecret | readonly WebhookSecret[];

const SECRET_PREFIX = "whsec_";
/**
 * The shortest key accepted (bytes, after base64 decoding): 128 bits. Shorter ones are
 * placeholders ("whsec_test", "secret") or guessable; Standard Webhooks suggests 24 to 64 bytes.
 */
export const MIN_KEY_BYTES = 16;
const HMAC = { name: "HMAC", hash: "SHA-256" } as const;
const encoder = new TextEncoder();

/**
 * The key bytes of each secret. Throws a {@link ValidationError} naming `label` (never the
 * secret) when one is of the wrong type, not base64 after the `whsec_` prefix, or shorter than
 * {@link MIN_KEY_BYTES} (16) bytes of key material.
 */
export function decodeSecrets(secrets: unknown, label = "secret"): Uint8Array<ArrayBuffer>[] {
  const list = Array.isArray(secrets) ? secrets : [secrets];
  if (list.length === 0) {
    throw new ValidationError(
      `${label} must be a secret or a non-empty array of secrets, got an empty array`,
    );
  }
  return list.map((secret, index) =>
    decodeSecret(secret, Array.isArray(secrets) ? `${label}[${index}]` : label),
  );
}

function decodeSecret(secret: unknown, label: string): Uint8Array<ArrayBuffer> {
  let key: Uint8Array<ArrayBuffer>;
  if (secret instanceof Uint8Array) {
    key = new Uint8Array(secret);
  } else if (typeof secret === "string") {
    const encoded = secret.startsWith(SECRET_PREFIX) ? secret.slice(SECRET_PREFIX.length) : secret;
    try {
      key = decodeBase64(encoded);
    } catch {
      // The value is a secret: say what is wrong with it, never echo it.
      throw new ValidationError(
        `${label} must be "whsec_" followed by base64 (Standard Webhooks), or the key bytes; the string given is not base64`,
      );
    }
  } else {
    throw new ValidationError(
      `${label} must be a "whsec_..." string or a Uint8Array, got ${secret === null ? "null" : typeof secret}`,
    );
  }
  if (key.byteLength < MIN_KEY_BYTES) {
    // The length only: the value is a secret, even a placeholder one.
    throw new ValidationError(
      `${label} must hold at least ${MIN_KEY_BYTES} bytes of key material, got ${key.byteLength}: use 32 random bytes, e.g. "whsec_$(openssl rand -base64 32)"`,
    );
  }
  return key;
}

/** Imports each key once for HMAC-SHA256; the resulting keys are what signing reuses. */
export function importHmacKeys(keys: readonly Uint8Array<ArrayBuffer>[]): Promise<CryptoKey[]> {
  return Promise.all(keys.map((key) => crypto.subtle.importKey("raw", key, HMAC, false, ["sign"])));
}

/**
 * The signed content `${id}.${timestamp}.` followed by `body`, in one buffer. The body is copied
 * once, here; a sender may send `content.subarray(prefixLength)` to avoid a second copy.
 */
export function signedContent(
  id: string,
  timestamp: number,
  body: Uint8Array,
): { content: Uint8Array<ArrayBuffer>; prefixLength: number } {
  const prefix = encoder.encode(`${id}.${timestamp}.`);
  const content = new Uint8Array(prefix.length + body.length);
  content.set(prefix);
  content.set(body, prefix.length);
  return { content, prefixLength: prefix.length };
}

/** Raw HMAC-SHA256 of `content` under each key. */
export async function hmacAll(
  keys: readonly CryptoKey[],
  content: Uint8Array<ArrayBuffer>,
): Promise<Uint8Array[]> {
  // One key is the common case: skip Promise.all's extra allocations on the hot path.
  if (keys.length === 1) return [new Uint8Array(await crypto.subtle.sign("HMAC", keys[0]!, content))];
  const macs = await Promise.all(keys.map((key) => crypto.subtle.sign("HMAC", key, content)));
  return macs.map((mac) => new Uint8Array(mac));
}

/** The `webhook-signature` header value: `v1,<base64>` per key, space-separated. */
export async function signatureHeader(
  keys: readonly CryptoKey[],
  content: Uint8Array<ArrayBuffer>,
): Promise<string> {
  const macs = await hmacAll(keys, content);
  let header = "";
  for (const mac of macs) header += `${header === "" ? "" : " "}v1,${encodeBase64(mac)}`;
  return header;
}

/**
 * The three Standard Webhooks headers for one delivery: for receivers' own tests, or a
 * hand-rolled sender. `timestamp` is in seconds since the epoch (default: now).
 *
 * @example
 * ```ts
 * const headers = await signWebhook({ id: "42", body: '{"ok":true}' }, "whsec_...");
 * await fetch(url, { method: "POST", headers, body: '{"ok":true}' });
 * ```
 */
export async function signWebhook(
  delivery: { id: string; body: Uint8Array | string; timestamp?: number },
  secret: WebhookSecrets,
): Promise<{ "webhook-id": string; "webhook-timestamp": string; "webhook-signature": string }> {
  const timestamp = delivery.timestamp ?? Math.floor(Date.now() / 1000);
  const body = typeof delivery.body === "string" ? encoder.encode(delivery.body) : delivery.body;
  const keys = await importHmacKeys(decodeSecrets(secret));
  const { content } = signedContent(delivery.id, timestamp, body);
  return {
    "webhook-id": delivery.id,
    "webhook-timestamp": String(timestamp),
    "webhook-signature": await signatureHeader(keys, content),
  };
}
