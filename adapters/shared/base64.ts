/**
 * Base64 (standard alphabet, padded) with web-standard `btoa`/`atob` only, for the adapters that
 * carry bytes as text (Standard Webhooks signatures, Cloudflare Queues bodies). Internal: no
 * subpath export.
 */

// String.fromCharCode takes its arguments on the stack: a bounded slice at a time.
const CHUNK = 0x8000;

/** Base64 of `bytes`, without `Buffer`. */
export function encodeBase64(bytes: Uint8Array): string {
  let binary = "";
  for (let start = 0; start < bytes.length; start += CHUNK) {
    binary += String.fromCharCode(...bytes.subarray(start, start + CHUNK));
  }
  return btoa(binary);
}

/** Bytes of a base64 string; throws (a `DOMException` from `atob`) on characters outside the alphabet. */
export function decodeBase64(text: string): Uint8Array<ArrayBuffer> {
  const binary = atob(text);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}
