import { createServer, type IncomingMessage } from "node:http";
import type { AddressInfo } from "node:net";
import { Webhook } from "standardwebhooks";
import { describe, expect, it } from "vitest";
import { signWebhook, verifyWebhook, WebhookVerificationError } from "../../adapters/http.ts";
import { DEFAULT_MAX_MESSAGE_BYTES, ValidationError } from "../../mod.ts";

const SECRET = `whsec_${Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString("base64")}`;
const CHUNK = 64 * 1024;
// A well-formed but wrong signature: passes the shape check, so the body has to be read.
const WRONG_V1 = `v1,${Buffer.alloc(32, 7).toString("base64")}`;

/** A body of `total` bytes produced lazily, counting what the reader actually pulled. */
function countingStream(total: number) {
  const state = { pulled: 0, cancelled: false };
  const chunk = new Uint8Array(CHUNK).fill(120);
  const stream = new ReadableStream<Uint8Array>(
    {
      pull(controller) {
        if (state.pulled >= total) return controller.close();
        const size = Math.min(CHUNK, total - state.pulled);
        state.pulled += size;
        controller.enqueue(size === CHUNK ? chunk.slice() : chunk.slice(0, size));
      },
      cancel() {
        state.cancelled = true;
      },
    },
    { highWaterMark: 0 },
  );
  return { stream, state };
}

function streamedRequest(headers: Record<string, string>, body: ReadableStream<Uint8Array>): Request {
  return new Request("http://127.0.0.1/hook", {
    method: "POST",
    headers,
    body,
    duplex: "half",
  } as RequestInit);
}

async function rejection(promise: Promise<unknown>): Promise<WebhookVerificationError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(WebhookVerificationError);
  return error as WebhookVerificationError;
}

const headersFor = (signature: string) => ({
  "webhook-id": "msg_big",
  "webhook-timestamp": String(Math.floor(Date.now() / 1000)),
  "webhook-signature": signature,
});

describe("verifyWebhook: the body is read last, and never beyond maxBodyBytes", () => {
  it("reads nothing when no well-formed v1 signature is present", async () => {
    for (const signature of ["v2,abc", "v1,***", "v1,c2hvcnQ=", "nonsense", `v1a,${WRONG_V1.slice(3)}`]) {
      const { stream, state } = countingStream(256 * 1024 * 1024);
      const error = await rejection(verifyWebhook(streamedRequest(headersFor(signature), stream), SECRET));
      expect(error.reason).toBe("invalid_signature");
      expect(state.pulled).toBe(0);
    }
  });

  it("stops a 256 MiB body at the default limit (1 MiB) and cancels the stream", async () => {
    const total = 256 * 1024 * 1024;
    const { stream, state } = countingStream(total);
    const heapBefore = process.memoryUsage().heapUsed + process.memoryUsage().arrayBuffers;
    const error = await rejection(verifyWebhook(streamedRequest(headersFor(WRONG_V1), stream), SECRET));
    expect(error.reason).toBe("body_too_large");
    expect(error.message).toContain(String(DEFAULT_MAX_MESSAGE_BYTES));
    // What was pulled from the sender: the limit and at most a couple of chunks in flight.
    expect(state.pulled).toBeLessThanOrEqual(DEFAULT_MAX_MESSAGE_BYTES + 2 * CHUNK);
    expect(state.cancelled).toBe(true);
    const heapAfter = process.memoryUsage().heapUsed + process.memoryUsage().arrayBuffers;
    expect(heapAfter - heapBefore).toBeLessThan(64 * 1024 * 1024);
  });

  it("refuses from content-length without reading, and honours a custom maxBodyBytes", async () => {
    const { stream, state } = countingStream(10_000);
    const declared = { ...headersFor(WRONG_V1), "content-length": "10000" };
    const error = await rejection(
      verifyWebhook(streamedRequest(declared, stream), SECRET, { maxBodyBytes: 9999 }),
    );
    expect(error.reason).toBe("body_too_large");
    expect(state.pulled).toBe(0);

    const body = "x".repeat(1000);
    const signed = await signWebhook({ id: "1", body }, SECRET);
    await expect(verifyWebhook(request(signed, body), SECRET, { maxBodyBytes: 1000 })).resolves.toMatchObject(
      {
        id: "1",
      },
    );
    const over = await rejection(verifyWebhook(request(signed, body), SECRET, { maxBodyBytes: 999 }));
    expect(over.reason).toBe("body_too_large");
    // Node-style parts are held to the same limit.
    const parts = await rejection(verifyWebhook({ headers: signed, body }, SECRET, { maxBodyBytes: 999 }));
    expect(parts.reason).toBe("body_too_large");
  });

  it("refuses a bad maxBodyBytes as configuration", async () => {
    const signed = await signWebhook({ id: "1", body: "b" }, SECRET);
    for (const maxBodyBytes of [-1, 1.5, Number.NaN, "10" as never]) {
      await expect(verifyWebhook(request(signed, "b"), SECRET, { maxBodyBytes })).rejects.toBeInstanceOf(
        ValidationError,
      );
    }
  });

  it("a real server answers 413 to a 256 MiB upload after reading about 1 MiB of it", async () => {
    let pulled = 0;
    const server = createServer(async (req, res) => {
      try {
        await verifyWebhook(
          toRequest(req, (n) => (pulled += n)),
          SECRET,
        );
        res.writeHead(204).end();
      } catch (error) {
        const status = (error as WebhookVerificationError).reason === "body_too_large" ? 413 : 401;
        res.writeHead(status, { connection: "close" }).end();
        req.destroy();
      }
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const { port } = server.address() as AddressInfo;
    try {
      const upload = countingStream(256 * 1024 * 1024);
      const status = await fetch(`http://127.0.0.1:${port}/hook`, {
        method: "POST",
        headers: headersFor(WRONG_V1),
        body: upload.stream,
        duplex: "half",
      } as RequestInit).then(
        (response) => response.status,
        () => 0, // the server may close the connection before the client reads the answer
      );
      expect([413, 0]).toContain(status);
      expect(pulled).toBeLessThanOrEqual(DEFAULT_MAX_MESSAGE_BYTES + 1024 * 1024);
      // The client produced far less than the 256 MiB it offered (socket buffers only).
      expect(upload.state.pulled).toBeLessThan(64 * 1024 * 1024);
    } finally {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});

describe("verifyWebhook: options and signature lists", () => {
  it("refuses an invalid `now` instead of accepting every timestamp", async () => {
    const signed = await signWebhook({ id: "1", body: "b", timestamp: 1 }, SECRET);
    for (const now of [new Date("not a date"), Number.NaN, Number.POSITIVE_INFINITY, "2026" as never]) {
      const error = await verifyWebhook(request(signed, "b"), SECRET, { now }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ValidationError);
      expect((error as Error).message).toMatch(/now must be a valid Date/);
    }
  });

  it("reads several webhook-signature header lines as one list", async () => {
    const body = '{"a":1}';
    const signed = await signWebhook({ id: "m1", body }, SECRET);
    const headers = new Headers({ "webhook-id": "m1", "webhook-timestamp": signed["webhook-timestamp"] });
    headers.append("webhook-signature", `v2,abc ${WRONG_V1}`);
    headers.append("webhook-signature", signed["webhook-signature"]);
    expect(headers.get("webhook-signature")).toContain(", ");
    const hook = await verifyWebhook({ headers, body }, SECRET);
    expect(hook.json()).toEqual({ a: 1 });
    // Node joins repeated lines the same way; and an array value is read alike.
    const nodeStyle = { ...signed, "webhook-signature": [WRONG_V1, signed["webhook-signature"]] };
    await expect(verifyWebhook({ headers: nodeStyle, body }, SECRET)).resolves.toMatchObject({ id: "m1" });
  });

  it("finds a good signature after any number of well-formed wrong ones (no count cap)", async () => {
    const body = "crowded";
    const signed = await signWebhook({ id: "m2", body }, SECRET);
    const noise = Array.from({ length: 40 }, (_, i) => (i % 2 ? `v2,${i}` : `v1,bad${i}`)).join(" ");
    for (const wrong of [20, 100]) {
      const crowded = `${noise} ${Array(wrong).fill(WRONG_V1).join(" ")} ${signed["webhook-signature"]}`;
      await expect(
        verifyWebhook(request({ ...signed, "webhook-signature": crowded }, body), SECRET),
      ).resolves.toMatchObject({ id: "m2" });
    }
  });

  it("refuses a webhook-signature longer than 8 KiB unparsed, and reads no body", async () => {
    const signed = await signWebhook({ id: "m3", body: "b" }, SECRET);
    // 8 KiB exactly is parsed (and a good signature at its end still found).
    const padding = `${"x".repeat(8 * 1024 - signed["webhook-signature"].length - 1)} `;
    const atLimit = `${padding}${signed["webhook-signature"]}`;
    expect(atLimit).toHaveLength(8 * 1024);
    await expect(
      verifyWebhook(request({ ...signed, "webhook-signature": atLimit }, "b"), SECRET),
    ).resolves.toMatchObject({ id: "m3" });
    const { stream, state } = countingStream(1024 * 1024);
    const tooLong = { ...signed, "webhook-signature": `x${atLimit}` };
    const error = await rejection(verifyWebhook(streamedRequest(tooLong, stream), SECRET));
    expect(error.reason).toBe("invalid_signature");
    expect(error.message).toBe("webhook-signature is 8193 characters long; at most 8192 are read");
    expect(state.pulled).toBe(0);
  });

  it("binary bodies: we verify them; the reference standardwebhooks package cannot (README says so)", async () => {
    const body = new Uint8Array([0xff, 0xfe, 0x00, 0x80]);
    const signed = await signWebhook({ id: "bin", body }, SECRET);
    const hook = await verifyWebhook({ headers: signed, body }, SECRET);
    expect([...hook.body]).toEqual([0xff, 0xfe, 0x00, 0x80]);
    // It decodes the payload as UTF-8 text before signing, so the bytes it checks are not ours.
    expect(() => new Webhook(SECRET).verify(Buffer.from(body) as never, signed)).toThrow();
  });
});

function request(headers: Record<string, string>, body: string): Request {
  return new Request("http://127.0.0.1/hook", { method: "POST", headers, body });
}

/** A web `Request` over a Node request, counting the bytes pulled from the socket. */
function toRequest(req: IncomingMessage, count: (bytes: number) => void): Request {
  const headers = new Headers();
  for (const [name, value] of Object.entries(req.headers)) {
    if (typeof value === "string") headers.set(name, value);
  }
  const iterator = req[Symbol.asyncIterator]();
  const body = new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        const { done, value } = await iterator.next();
        if (done) return controller.close();
        count((value as Buffer).byteLength);
        controller.enqueue(new Uint8Array(value as Buffer));
      },
      cancel() {
        req.destroy();
      },
    },
    { highWaterMark: 0 },
  );
  return new Request(`http://127.0.0.1${req.url}`, {
    method: "POST",
    headers,
    body,
    duplex: "half",
  } as RequestInit);
}
