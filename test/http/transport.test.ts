/**
 * The transport contract (adapters/http/transport.ts), held by both implementations against a
 * real server on 127.0.0.1: connection reuse, no redirects, capped and drained bodies, aborts at
 * every stage, and URLs whose credentials never reach an error message.
 */
import { getEventListeners } from "node:events";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { MAX_RESPONSE_BYTES, type TransportRequest } from "../../adapters/http/transport.ts";
import { fetchTransport } from "../../adapters/http/transport-fetch.ts";
import { nodeTransport } from "../../adapters/http/transport-node.ts";
import { SendStatus, ValidationError } from "../../mod.ts";
import { testMessage } from "../support/http-receiver.ts";
import { HTTP_BUILDS } from "../support/http-transports.ts";

// Signed, as every sender should be (and must be, unless it says `unsigned: true`).
const SECRET = `whsec_${Buffer.from("a test secret of 32 bytes, fine!").toString("base64")}`;

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

let server: Server;
let origin = "";
let handler: Handler;
let connections = 0;
const paths: string[] = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    paths.push(req.url ?? "");
    req.resume();
    req.on("end", () => handler(req, res));
  });
  server.on("connection", () => {
    connections++;
  });
  server.keepAliveTimeout = 30_000;
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(
  () =>
    new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
);
beforeEach(() => {
  handler = (_, res) => res.writeHead(204).end();
  paths.length = 0;
});

const body = new TextEncoder().encode("x".repeat(250)) as Uint8Array<ArrayBuffer>;
const post = (path: string, signal = new AbortController().signal): TransportRequest => ({
  method: "POST",
  url: new URL(`${origin}${path}`),
  headers: { "content-type": "application/json", "webhook-id": "1" },
  body,
  signal,
});

describe.each([
  ["fetch", fetchTransport()],
  ["node:http", nodeTransport()],
])("%s transport", (name, transport) => {
  it("is named", () => {
    expect(transport.name).toBe(name);
  });

  // Node's fetch hands over a response a moment before its connection is free again, so a
  // request issued at once may open another: it reuses, but keeps more connections than requests
  // in flight (measured: 2 for 30 one after another, 14 for 8 in flight). Bounds with a margin,
  // still far below a connection per request; node:http is exact.
  const newConnections = name === "fetch" ? { sequential: 3, parallel: 20 } : { sequential: 0, parallel: 8 };

  it("reuses connections for requests one after another", async () => {
    // A connection of an earlier test may still be closing: count from a quiet start.
    await transport.request(post("/warm"));
    const before = connections;
    for (let i = 0; i < 30; i++) expect((await transport.request(post("/seq"))).status).toBe(204);
    expect(connections - before).toBeLessThanOrEqual(newConnections.sequential);
  });

  it("opens no more connections than requests in flight", async () => {
    const before = connections;
    for (let round = 0; round < 5; round++) {
      await Promise.all(Array.from({ length: 8 }, () => transport.request(post("/par"))));
    }
    expect(connections - before).toBeLessThanOrEqual(newConnections.parallel);
  });

  it("sends method, path, headers and body as given", async () => {
    let seen: { method?: string; headers?: IncomingMessage["headers"]; body?: string } = {};
    server.once("request", (req: IncomingMessage) => {
      let text = "";
      req.on("data", (chunk: Buffer) => {
        text += chunk;
      });
      req.on("end", () => {
        seen = { method: req.method, headers: req.headers, body: text };
      });
    });
    await transport.request(post("/echo?x=1"));
    expect(paths).toEqual(["/echo?x=1"]);
    expect(seen.method).toBe("POST");
    expect(seen.body).toBe("x".repeat(250));
    expect(seen.headers!["content-length"]).toBe("250");
    expect(seen.headers!["webhook-id"]).toBe("1");
    expect(seen.headers!.host).toBe(new URL(origin).host);
  });

  it("puts the same header bytes on the wire as fetch: one name in two cases joined, values trimmed", async () => {
    let raw: string[] = [];
    server.once("request", (req: IncomingMessage) => {
      raw = req.rawHeaders.map((h, i) => (i % 2 === 0 ? h.toLowerCase() : h));
    });
    const headers: Record<string, string> = { "X-Two": " 1 ", "x-two": "2\t" };
    Object.defineProperty(headers, "__proto__", { value: "p", enumerable: true });
    await transport.request({ ...post("/h"), headers });
    const value = (name: string) => raw.filter((_, i) => i % 2 === 1 && raw[i - 1] === name);
    expect(value("x-two")).toEqual(["1, 2"]);
    // Node's fetch drops a header of that name; the node transport does the same.
    expect(value("__proto__")).toEqual([]);
  });

  it("returns the status, the headers and a small body", async () => {
    handler = (_, res) => res.writeHead(429, { "retry-after": "7", "x-two": ["a", "b"] }).end("slow down");
    const response = await transport.request(post("/r"));
    expect(response.status).toBe(429);
    expect(response.header("retry-after")).toBe("7");
    expect(response.header("x-two")).toBe("a, b");
    expect(response.header("absent")).toBeUndefined();
    expect(new TextDecoder().decode(response.body)).toBe("slow down");
  });

  it("does not follow a redirect", async () => {
    handler = (req, res) =>
      req.url === "/from" ? res.writeHead(302, { location: `${origin}/to` }).end() : res.writeHead(200).end();
    const response = await transport.request(post("/from"));
    expect(response.status).toBe(302);
    expect(paths).toEqual(["/from"]);
  });

  it("does not read a body announced larger than the cap, and the next request still works", async () => {
    const big = Buffer.alloc(4 * MAX_RESPONSE_BYTES, 97);
    handler = (req, res) =>
      req.url === "/big"
        ? res.writeHead(200, { "content-length": big.length }).end(big)
        : res.writeHead(204).end();
    const response = await transport.request(post("/big"));
    expect(response.status).toBe(200);
    expect(response.body.byteLength).toBe(0);
    expect((await transport.request(post("/after"))).status).toBe(204);
  });

  it("cuts an unsized body off at the cap instead of buffering it", async () => {
    let written = 0;
    handler = (_, res) => {
      res.writeHead(200); // chunked: no content-length
      const chunk = Buffer.alloc(16 * 1024, 98);
      // Far more than the cap, slowly enough that a buffering client would take a while.
      const timer = setInterval(() => {
        if (res.destroyed || written >= 64 * MAX_RESPONSE_BYTES) {
          clearInterval(timer);
          res.end();
          return;
        }
        written += chunk.length;
        res.write(chunk);
      }, 1);
    };
    const response = await transport.request(post("/stream"));
    expect(response.status).toBe(200);
    expect(response.body.byteLength).toBeLessThanOrEqual(MAX_RESPONSE_BYTES);
    expect(written).toBeLessThan(64 * MAX_RESPONSE_BYTES);
  });

  it("an abort while the body drains keeps the status", async () => {
    handler = (_, res) => {
      res.writeHead(200);
      res.write("partial"); // and never ends
    };
    const controller = new AbortController();
    const pending = transport.request(post("/hang", controller.signal));
    setTimeout(() => controller.abort(new Error("deadline")), 300);
    const response = await pending;
    expect(response.status).toBe(200);
  });

  it("an abort before the answer rejects, and leaves no listener on the signal", async () => {
    handler = () => {}; // never answers
    const controller = new AbortController();
    const pending = transport.request(post("/never", controller.signal));
    setTimeout(() => controller.abort(new DOMException("timed out", "TimeoutError")), 100);
    await expect(pending).rejects.toBeDefined();
    expect(getEventListeners(controller.signal, "abort")).toHaveLength(0);
  });

  it("an already aborted signal sends nothing", async () => {
    const controller = new AbortController();
    controller.abort();
    await expect(transport.request(post("/no", controller.signal))).rejects.toBeDefined();
    expect(paths).toEqual([]);
  });

  // Node's fetch leaves one listener per request on the signal until the request is garbage
  // collected; node:http removes its own as each request settles.
  it.runIf(name === "node:http")(
    "leaves no listener behind on a signal shared by many requests",
    async () => {
      const controller = new AbortController();
      await Promise.all(
        Array.from({ length: 20 }, () => transport.request(post("/shared", controller.signal))),
      );
      expect(getEventListeners(controller.signal, "abort")).toHaveLength(0);
    },
  );

  it("rejects (never throws synchronously) on a header it cannot send", async () => {
    const request = { ...post("/bad"), headers: { "x-bad": "a\r\nb" } };
    let pending: Promise<unknown> | undefined;
    expect(() => {
      pending = transport.request(request);
    }).not.toThrow();
    await expect(pending).rejects.toBeInstanceOf(Error);
    expect(paths).toEqual([]);
  });

  it("fails on a refused connection with the system error", async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, "127.0.0.1", resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const request = { ...post("/"), url: new URL(`http://127.0.0.1:${port}/`) };
    await expect(transport.request(request)).rejects.toBeInstanceOf(Error);
  });
});

describe("request URLs", () => {
  describe.each(HTTP_BUILDS)("httpSender ($transport)", ({ build }) => {
    it("refuses a URL with credentials at construction, without echoing them", () => {
      const make = () => build.httpSender({ url: "https://user:hunter2@example.com/x", secret: SECRET });
      expect(make).toThrow(ValidationError);
      expect(make).toThrow(/carries credentials/);
      try {
        make();
      } catch (error) {
        expect((error as Error).message).not.toContain("hunter2");
      }
    });

    it("fails a message whose URL function returns credentials, without echoing them", async () => {
      const sender = build.httpSender({
        url: () => `${origin.replace("//", "//u:hunter2@")}/x`,
        secret: SECRET,
      });
      const [m] = await sender.send([testMessage("41")], new AbortController().signal);
      expect(m!.status).toBe(SendStatus.Fail);
      expect(m!.error).toContain("41");
      expect(m!.error).toContain("carries credentials");
      expect(m!.error).not.toContain("hunter2");
      expect(paths).toEqual([]);
    });

    it("sends to an IPv6 literal", async () => {
      const v6 = createServer((_, res) => res.writeHead(204).end());
      const listening = await new Promise<boolean>((resolve) => {
        v6.once("error", () => resolve(false));
        v6.listen(0, "::1", () => resolve(true));
      });
      if (!listening) return; // no IPv6 loopback on this machine
      try {
        const url = `http://[::1]:${(v6.address() as AddressInfo).port}/hook`;
        const [m] = await build
          .httpSender({ url, secret: SECRET })
          .send([testMessage("6")], new AbortController().signal);
        expect(m!.status).toBe(SendStatus.Sent);
      } finally {
        v6.closeAllConnections();
        await new Promise<void>((resolve) => v6.close(() => resolve()));
      }
    });
  });
});

describe.each(HTTP_BUILDS)("node and fetch agree ($transport)", ({ build }) => {
  it("sends 16 requests in flight on one signal without a process warning", async () => {
    const warnings: string[] = [];
    const onWarning = (warning: Error) => warnings.push(warning.name);
    process.on("warning", onWarning);
    try {
      const sender = build.httpSender({ url: `${origin}/many`, secret: SECRET, concurrency: 16 });
      const batch = Array.from({ length: 16 }, (_, i) => testMessage(String(i + 1)));
      const sent = await sender.send(batch, new AbortController().signal);
      expect(sent.every((m) => m.status === SendStatus.Sent)).toBe(true);
      await new Promise((resolve) => setTimeout(resolve, 50));
      expect(warnings).toEqual([]);
    } finally {
      process.off("warning", onWarning);
    }
  });

  it("reads two Retry-After lines the same way (joined, so neither is trusted)", async () => {
    const twice = createServer((_, res) => {
      res.setHeader("retry-after", ["120", "5"]);
      res.writeHead(429).end();
    });
    await new Promise<void>((resolve) => twice.listen(0, "127.0.0.1", resolve));
    try {
      const url = `http://127.0.0.1:${(twice.address() as AddressInfo).port}/`;
      const [m] = await build
        .httpSender({ url, secret: SECRET })
        .send([testMessage("9")], new AbortController().signal);
      expect(m!.status).toBe(SendStatus.Fail);
      expect(m!.retryAfter).toBeUndefined();
    } finally {
      await new Promise<void>((resolve) => twice.close(() => resolve()));
    }
  });
});

describe.each(HTTP_BUILDS)("connection headers ($transport)", ({ build }) => {
  it.each(["Transfer-Encoding", "connection", "keep-alive", "upgrade", "expect", "te", "trailer", "host"])(
    "refuses a static %s header at construction",
    (name) => {
      expect(() =>
        build.httpSender({ url: `${origin}/x`, secret: SECRET, headers: { [name]: "x" } }),
      ).toThrow(/is set by the HTTP client/);
    },
  );

  it("does not forward a message's expect or transfer-encoding header", async () => {
    const seen: Record<string, string | string[] | undefined>[] = [];
    const server = createServer((req, res) => {
      seen.push(req.headers);
      req.resume();
      req.on("end", () => res.writeHead(204).end());
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
      const message = testMessage("7", "{}", { expect: "100-continue", "transfer-encoding": "chunked" });
      const [m] = await build
        .httpSender({ url, secret: SECRET })
        .send([message], new AbortController().signal);
      expect(m!.status).toBe(SendStatus.Sent);
      expect(seen[0]!.expect).toBeUndefined();
      expect(seen[0]!["transfer-encoding"]).toBeUndefined();
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});
