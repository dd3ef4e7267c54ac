/** Reading a request body without ever holding more than a bound: for {@link verifyWebhook}. */
import type { WebhookParts } from "./verify.ts";

const encoder = new TextEncoder();

/**
 * The body of `request`, or `undefined` as soon as it is known to be larger than `max` bytes:
 * from `content-length` before reading anything, else while streaming (the stream is then
 * cancelled, so the sender's remaining bytes are never pulled).
 */
export async function readBoundedBody(
  request: Request | WebhookParts,
  max: number,
): Promise<Uint8Array | undefined> {
  if (typeof (request as Request).arrayBuffer !== "function") {
    const body = (request as WebhookParts).body;
    // A string's UTF-8 is at least as many bytes as it has UTF-16 units: skip encoding a huge one.
    if (typeof body === "string" && body.length > max) return undefined;
    const bytes = typeof body === "string" ? encoder.encode(body) : body;
    return bytes.byteLength > max ? undefined : bytes;
  }
  const stream = (request as Request).body;
  const declared = (request as Request).headers?.get?.("content-length");
  if (declared && /^\d+$/.test(declared.trim()) && Number(declared) > max) {
    stream?.cancel().catch(() => {});
    return undefined;
  }
  if (stream === null || stream === undefined) return new Uint8Array(0);
  if (typeof stream.getReader !== "function") {
    // A Request-like object without a web stream: read it whole, then check.
    const bytes = new Uint8Array(await (request as Request).arrayBuffer());
    return bytes.byteLength > max ? undefined : bytes;
  }
  const reader = stream.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    if (!(value instanceof Uint8Array)) {
      reader.cancel().catch(() => {});
      throw new TypeError("the request body stream must yield Uint8Array chunks");
    }
    total += value.byteLength;
    if (total > max) {
      // Stop pulling: the sender's bytes beyond this point are never buffered.
      reader.cancel().catch(() => {});
      return undefined;
    }
    chunks.push(value);
  }
  if (chunks.length === 1) return chunks[0]!;
  const body = new Uint8Array(total);
  let offset = 0;
  for (const chunk of chunks) {
    body.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return body;
}
