/** Reading a request body without ever holding more than a bound: for {@link verifyWebhook}. */
import type { WebhookParts } from "./verify.ts";

const encoder = new TextEncoder();

/**
 * The body of `request`, or `undefined` as soon as it is known to be larger than `max` bytes:
 * from `content-length` before reading anything, else while reading (a stream is then
 * cancelled and an async iterable closed, so the sender's remaining bytes are never pulled).
 * `header` reads the request's headers (for `content-length`).
 */
export async function readBoundedBody(
  request: Request | WebhookParts,
  max: number,
  header: (name: string) => string | undefined,
): Promise<Uint8Array | undefined> {
  const declared = header("content-length");
  const overDeclared = declared !== undefined && /^\d+$/.test(declared.trim()) && Number(declared) > max;
  if (typeof (request as Request).arrayBuffer !== "function") {
    const body = (request as WebhookParts).body;
    if (typeof body === "string") {
      // A string's UTF-8 is at least as many bytes as it has UTF-16 units: skip encoding a huge one.
      if (body.length > max) return undefined;
      const bytes = encoder.encode(body);
      return bytes.byteLength > max ? undefined : bytes;
    }
    if (body instanceof Uint8Array) return body.byteLength > max ? undefined : body;
    // A stream or a Node request: refused on its declared length without reading (a Node request
    // is left alone: its server answers, then discards the rest), else read up to the bound.
    if (overDeclared) {
      if (isReadableStream(body)) body.cancel().catch(() => {});
      return undefined;
    }
    if (isReadableStream(body)) return readStream(body, max);
    if (isAsyncIterable(body)) return readIterable(body, max);
    throw new TypeError(
      `body must be a Uint8Array, a string, a ReadableStream or an async iterable of Uint8Array (a Node request), got ${describe(body)}`,
    );
  }
  const stream = (request as Request).body;
  if (overDeclared) {
    stream?.cancel().catch(() => {});
    return undefined;
  }
  if (stream === null || stream === undefined) return new Uint8Array(0);
  if (typeof stream.getReader !== "function") {
    // A Request-like object without a web stream: read it whole, then check.
    const bytes = new Uint8Array(await (request as Request).arrayBuffer());
    return bytes.byteLength > max ? undefined : bytes;
  }
  return readStream(stream, max);
}

async function readStream(stream: ReadableStream<Uint8Array>, max: number): Promise<Uint8Array | undefined> {
  const reader = stream.getReader();
  const chunks = new Chunks(max);
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return chunks.joined();
    if (!chunks.add(value)) {
      // Stop pulling: the sender's bytes beyond this point are never buffered.
      reader.cancel().catch(() => {});
      return undefined;
    }
  }
}

async function readIterable(body: AsyncIterable<unknown>, max: number): Promise<Uint8Array | undefined> {
  const iterator = body[Symbol.asyncIterator]();
  const chunks = new Chunks(max);
  for (;;) {
    const { done, value } = await iterator.next();
    if (done) return chunks.joined();
    let added: boolean;
    try {
      added = chunks.add(value);
    } catch (error) {
      await closeQuietly(iterator);
      throw error;
    }
    if (!added) {
      // Closing the iterator releases the source: a Node request is destroyed with its
      // connection, so the rest of an oversized upload is never received.
      await closeQuietly(iterator);
      return undefined;
    }
  }
}

async function closeQuietly(iterator: AsyncIterator<unknown>): Promise<void> {
  try {
    await iterator.return?.();
  } catch {
    // The source is being given up: how it ends changes nothing.
  }
}

/** Chunks collected up to a byte bound, then joined into one buffer. */
class Chunks {
  private readonly list: Uint8Array[] = [];
  private total = 0;

  constructor(private readonly max: number) {}

  /** Adds `chunk`; false when the total passes the bound (the chunk is then not kept). */
  add(chunk: unknown): boolean {
    if (!(chunk instanceof Uint8Array)) {
      throw new TypeError(`the request body must yield Uint8Array chunks, got ${describe(chunk)}`);
    }
    this.total += chunk.byteLength;
    if (this.total > this.max) return false;
    this.list.push(chunk);
    return true;
  }

  joined(): Uint8Array {
    if (this.list.length === 1) return this.list[0]!;
    const body = new Uint8Array(this.total);
    let offset = 0;
    for (const chunk of this.list) {
      body.set(chunk, offset);
      offset += chunk.byteLength;
    }
    return body;
  }
}

function isReadableStream(value: unknown): value is ReadableStream<Uint8Array> {
  return typeof (value as ReadableStream | null)?.getReader === "function";
}

function isAsyncIterable(value: unknown): value is AsyncIterable<unknown> {
  return typeof (value as AsyncIterable<unknown> | null)?.[Symbol.asyncIterator] === "function";
}

function describe(value: unknown): string {
  if (value === null) return "null";
  if (typeof value === "string") return "a string";
  return typeof value === "object" ? (value.constructor?.name ?? "an object") : typeof value;
}
