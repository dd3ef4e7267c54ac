import { Webhook } from "standardwebhooks";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { DEFAULT_CONTENT_TYPE, verifyWebhook } from "../../adapters/http.ts";
import { SendStatus, ValidationError } from "../../mod.ts";
import { type HttpReceiver, startHttpReceiver, testMessage, unusedUrl } from "../support/http-receiver.ts";
import { HTTP_BUILDS } from "../support/http-transports.ts";
import { waitFor } from "../support/senders.ts";

const SECRET = `whsec_${Buffer.from("a test secret of 32 bytes, fine!").toString("base64")}`;
const OTHER = `whsec_${Buffer.from("another secret for the rotation").toString("base64")}`;

const message = testMessage;

const messages = (n: number) => Array.from({ length: n }, (_, i) => message(String(i + 1)));
const signal = () => new AbortController().signal;

let receiver: HttpReceiver;
beforeAll(async () => {
  receiver = await startHttpReceiver();
});
afterAll(() => receiver.close());
beforeEach(async () => {
  // A request aborted by an earlier test may still be winding down at the receiver.
  await waitFor(() => receiver.inFlight === 0);
  receiver.reset();
  receiver.respond(() => undefined);
});

// Every behaviour below holds on both transports: the web build's fetch and the Node build's
// node:http (the package's `node` export condition).
describe.each(HTTP_BUILDS)("$transport transport", ({ transport, build }) => {
  const { httpSender } = build;

  it("reports its transport; an explicit fetch wins", () => {
    expect(httpSender({ url: receiver.url, secret: SECRET }).transport).toBe(transport);
    expect(httpSender({ url: receiver.url, secret: SECRET, fetch: globalThis.fetch }).transport).toBe(
      "fetch",
    );
  });

  describe("httpSender: requests", () => {
    it("POSTs each message: body, forwarded headers, webhook-id, content-type, signature", async () => {
      const traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
      const batch = [
        message("1", '{"a":1}', { "content-type": "application/json", traceparent, tracestate: "k=v" }),
        message("2", new Uint8Array([0, 255, 1, 254])),
      ];
      const sender = httpSender({
        url: receiver.url,
        secret: SECRET,
        headers: { Authorization: "Bearer t" },
      });
      await sender.send(batch, signal());
      expect(batch.map((m) => m.status)).toEqual([SendStatus.Sent, SendStatus.Sent]);
      expect(receiver.requests).toHaveLength(2);
      const byId = new Map(receiver.requests.map((r) => [r.headers["webhook-id"], r]));
      const first = byId.get("1")!;
      expect(first.method).toBe("POST");
      expect(first.path).toBe("/hook");
      expect(first.text()).toBe('{"a":1}');
      expect(first.headers["content-type"]).toBe("application/json");
      expect(first.headers.traceparent).toBe(traceparent);
      expect(first.headers.tracestate).toBe("k=v");
      expect(first.headers.authorization).toBe("Bearer t");
      expect(Math.abs(Number(first.headers["webhook-timestamp"]) - Date.now() / 1000)).toBeLessThan(60);
      const second = byId.get("2")!;
      expect([...second.body]).toEqual([0, 255, 1, 254]);
      expect(second.headers["content-type"]).toBe(DEFAULT_CONTENT_TYPE);
      // Both directions of Standard Webhooks: the reference package and our verifier accept it.
      expect(new Webhook(SECRET).verify(first.text(), first.headers)).toEqual({ a: 1 });
      const verified = await verifyWebhook(second.toRequest(), SECRET);
      expect(verified.id).toBe("2");
      expect([...verified.body]).toEqual([0, 255, 1, 254]);
    });

    it("signs with every secret during rotation", async () => {
      await httpSender({ url: receiver.url, secret: [OTHER, SECRET] }).send([message("5", "{}")], signal());
      const [request] = receiver.requests;
      expect(request!.headers["webhook-signature"]!.split(" ")).toHaveLength(2);
      expect(new Webhook(SECRET).verify("{}", request!.headers)).toEqual({});
      expect(new Webhook(OTHER).verify("{}", request!.headers)).toEqual({});
    });

    it("without a secret sends webhook-id and webhook-timestamp but no signature", async () => {
      await httpSender({ unsigned: true, url: receiver.url }).send([message("3")], signal());
      const headers = receiver.requests[0]!.headers;
      expect(headers["webhook-id"]).toBe("3");
      expect(headers["webhook-timestamp"]).toMatch(/^\d+$/);
      expect(headers["webhook-signature"]).toBeUndefined();
    });

    it("static content-type beats the default; a message's own beats both; signature headers are ours", async () => {
      const sender = httpSender({
        unsigned: true,
        url: receiver.url,
        headers: { "Content-Type": "text/plain" },
      });
      await sender.send(
        [
          message("1"),
          message("2", "x", { "content-type": "application/xml", "webhook-id": "forged", host: "evil" }),
        ],
        signal(),
      );
      const byId = new Map(receiver.requests.map((r) => [r.headers["webhook-id"], r.headers]));
      expect(byId.get("1")!["content-type"]).toBe("text/plain");
      expect(byId.get("2")!["content-type"]).toBe("application/xml");
      expect(byId.has("forged")).toBe(false);
      expect(byId.get("2")!.host).toBe(new URL(receiver.url).host);
    });

    it("takes the URL from a function of the message", async () => {
      const sender = httpSender({ unsigned: true, url: (m) => `${receiver.origin}/by-key/${m.key}` });
      await sender.send([message("1"), message("2")], signal());
      expect(receiver.requests.map((r) => r.path).sort()).toEqual(["/by-key/k1", "/by-key/k2"]);
    });

    it("uses an injected fetch", async () => {
      const seen: string[] = [];
      const sender = httpSender({
        unsigned: true,
        url: "https://example.invalid/hook",
        fetch: async (input, init) => {
          seen.push(`${typeof input} ${input} ${init?.redirect} ${init?.signal ? "signal" : ""}`);
          return new Response(null, { status: 204 });
        },
      });
      const batch = [message("1")];
      await sender.send(batch, signal());
      expect(seen).toEqual(["string https://example.invalid/hook manual signal"]);
      expect(batch[0]!.status).toBe(SendStatus.Sent);
    });
  });

  describe("httpSender: outcomes", () => {
    it.each([
      [200, SendStatus.Sent],
      [201, SendStatus.Sent],
      [202, SendStatus.Sent],
      [204, SendStatus.Sent],
      [400, SendStatus.Dead],
      [401, SendStatus.Dead],
      [403, SendStatus.Dead],
      [404, SendStatus.Dead],
      [410, SendStatus.Dead],
      [422, SendStatus.Dead],
      [408, SendStatus.Fail],
      [425, SendStatus.Fail],
      [429, SendStatus.Fail],
      [500, SendStatus.Fail],
      [502, SendStatus.Fail],
      [503, SendStatus.Fail],
    ])("status %i -> %i", async (status, expected) => {
      receiver.respond(() => ({ status, body: `secret-ish body ${SECRET}` }));
      const [m] = await httpSender({ url: receiver.url, secret: SECRET }).send([message("77")], signal());
      expect(m!.status).toBe(expected);
      if (expected !== SendStatus.Sent) {
        expect(m!.error).toContain(String(status));
        expect(m!.error).toContain("77");
        expect(m!.error).not.toContain("secret-ish");
        expect(m!.error).not.toContain(SECRET.slice(6));
      }
    });

    it("does not buffer a large response body, and keeps sending", async () => {
      receiver.respond((_, index) => (index === 0 ? { body: "x".repeat(1_000_000) } : { body: "ok" }));
      const batch = await httpSender({ unsigned: true, url: receiver.url, concurrency: 1 }).send(
        messages(3),
        signal(),
      );
      expect(batch.map((m) => m.status)).toEqual([SendStatus.Sent, SendStatus.Sent, SendStatus.Sent]);
    });

    it("does not follow redirects: a 3xx fails and the target gets nothing", async () => {
      for (const status of [301, 302, 303, 307, 308]) {
        receiver.reset();
        receiver.respond((r) =>
          r.path === "/hook" ? { status, headers: { location: `${receiver.origin}/moved` } } : {},
        );
        const [m] = await httpSender({ unsigned: true, url: receiver.url }).send([message("9")], signal());
        expect(m!.status).toBe(SendStatus.Fail);
        expect(m!.error).toContain(`HTTP ${status}`);
        expect(m!.error).toContain("redirects are not followed");
        expect(receiver.requests.map((r) => r.path)).toEqual(["/hook"]);
      }
    });

    it("honours Retry-After in seconds and as an HTTP date, capped by maxRetryAfter", async () => {
      receiver.respond(() => ({ status: 429, headers: { "retry-after": "7" } }));
      const [a] = await httpSender({ unsigned: true, url: receiver.url }).send([message("1")], signal());
      expect(a!.retryAfter).toBe(7000);

      const at = new Date(Date.now() + 120_000).toUTCString();
      receiver.respond(() => ({ status: 503, headers: { "retry-after": at } }));
      const [b] = await httpSender({ unsigned: true, url: receiver.url }).send([message("2")], signal());
      expect(b!.retryAfter).toBeGreaterThan(100_000);
      expect(b!.retryAfter).toBeLessThanOrEqual(120_000);

      receiver.respond(() => ({ status: 503, headers: { "retry-after": "86400" } }));
      const [c] = await httpSender({ unsigned: true, url: receiver.url, maxRetryAfter: 60_000 }).send(
        [message("3")],
        signal(),
      );
      expect(c!.retryAfter).toBe(60_000);

      receiver.respond(() => ({ status: 503, headers: { "retry-after": "whenever" } }));
      const [d] = await httpSender({ unsigned: true, url: receiver.url }).send([message("4")], signal());
      expect(d!.status).toBe(SendStatus.Fail);
      expect(d!.retryAfter).toBeUndefined();
    });

    it("a permanent-failure policy can retry 4xx or kill other statuses", async () => {
      receiver.respond(() => ({ status: 404 }));
      const [a] = await httpSender({ unsigned: true, url: receiver.url, permanent: () => false }).send(
        [message("1")],
        signal(),
      );
      expect(a!.status).toBe(SendStatus.Fail);
      receiver.respond(() => ({ status: 501 }));
      const [b] = await httpSender({ unsigned: true, url: receiver.url, permanent: (s) => s === 501 }).send(
        [message("2")],
        signal(),
      );
      expect(b!.status).toBe(SendStatus.Dead);
    });

    it("fails on network errors (nothing listening)", async () => {
      const [m] = await httpSender({ unsigned: true, url: await unusedUrl() }).send(
        [message("13")],
        signal(),
      );
      expect(m!.status).toBe(SendStatus.Fail);
      expect(m!.error).toContain("13");
      expect(m!.error).toContain("ECONNREFUSED");
    });

    it("fails a message whose URL function throws, and still sends the rest", async () => {
      const sender = httpSender({
        unsigned: true,
        url: (m) => {
          if (m.id === "2") throw new Error("no route for 2");
          return receiver.url;
        },
      });
      const batch = await sender.send([message("1"), message("2"), message("3")], signal());
      expect(batch.map((m) => m.status)).toEqual([SendStatus.Sent, SendStatus.Fail, SendStatus.Sent]);
      expect(batch[1]!.error).toContain("no route for 2");
    });

    it("times out through the relay's signal: slow requests fail, fast ones are sent", async () => {
      receiver.respond((r) => (r.headers["webhook-id"] === "2" ? { delayMs: 10_000 } : {}));
      const controller = new AbortController();
      const timer = setTimeout(
        () => controller.abort(new DOMException("timed out after 1000 ms", "TimeoutError")),
        1000,
      );
      const batch = await httpSender({ unsigned: true, url: receiver.url }).send(
        [message("1"), message("2")],
        controller.signal,
      );
      clearTimeout(timer);
      expect(batch[0]!.status).toBe(SendStatus.Sent);
      expect(batch[1]!.status).toBe(SendStatus.Fail);
      expect(batch[1]!.error).toBe("request for message 2 aborted: timed out after 1000 ms");
    });

    it("fails everything at once when the signal is already aborted", async () => {
      const controller = new AbortController();
      controller.abort();
      const batch = await httpSender({ unsigned: true, url: receiver.url }).send(
        messages(3),
        controller.signal,
      );
      expect(batch.every((m) => m.status === SendStatus.Fail)).toBe(true);
      expect(receiver.requests).toHaveLength(0);
    });
  });

  describe("httpSender: concurrency", () => {
    it("never has more than `concurrency` requests in flight, and uses them all", async () => {
      receiver.respond(() => ({ delayMs: 100 }));
      const batch = await httpSender({ unsigned: true, url: receiver.url, concurrency: 3 }).send(
        messages(15),
        signal(),
      );
      expect(batch.every((m) => m.status === SendStatus.Sent)).toBe(true);
      expect(receiver.requests).toHaveLength(15);
      expect(receiver.maxInFlight).toBe(3);
    });

    it("defaults to 8 in flight", async () => {
      receiver.respond(() => ({ delayMs: 100 }));
      await httpSender({ unsigned: true, url: receiver.url }).send(messages(16), signal());
      expect(receiver.maxInFlight).toBe(8);
    });

    it("concurrency 1 sends in batch order", async () => {
      await httpSender({ unsigned: true, url: receiver.url, concurrency: 1 }).send(messages(5), signal());
      expect(receiver.requests.map((r) => r.headers["webhook-id"])).toEqual(["1", "2", "3", "4", "5"]);
      expect(receiver.maxInFlight).toBe(1);
    });
  });

  describe("httpSender: options", () => {
    it.each([
      [{ url: "/relative" }, /url is not an absolute http\(s\) URL \(no scheme; not shown\)/],
      [{ url: "ftp://example.com/x" }, /url uses ftp:; only http: and https: are allowed/],
      [{ url: "data:,x" }, /url uses data:; only http: and https: are allowed/],
      [{ url: "https://x.test" }, /secret is required \(got undefined\).*unsigned: true/],
      [{ url: "https://x.test", secret: undefined }, /secret is required/],
      [{ url: "https://x.test", unsigned: "yes" }, /unsigned must be a boolean, got "yes"/],
      [{ url: "https://x.test", unsigned: false }, /secret is required/],
      [{ url: 42 }, /url must be an absolute http\(s\) URL or a function/],
      [{}, /url must be/],
      [{ url: "https://x.test", concurrency: 0 }, /concurrency must be an integer >= 1, got 0/],
      [{ url: "https://x.test", concurrency: 1.5 }, /concurrency must be an integer >= 1, got 1.5/],
      [{ url: "https://x.test", secret: "whsec_!!!" }, /secret must be "whsec_" followed by base64/],
      [{ url: "https://x.test", secret: [] }, /secret must be a secret or a non-empty array/],
      // Placeholders: too short to be a key (the error gives the length, never the value).
      [
        { url: "https://x.test", secret: "whsec_dGVzdA==" },
        /secret must hold at least 16 bytes of key material, got 4/,
      ],
      [{ url: "https://x.test", secret: new Uint8Array(15) }, /secret must hold at least 16 bytes.*got 15/],
      [
        { url: "https://x.test", secret: [SECRET, "c2VjcmV0"] },
        /secret\[1\] must hold at least 16 bytes.*got 6/,
      ],
      [
        { url: "https://x.test", secret: [SECRET, 5] },
        /secret\[1\] must be a "whsec_..." string or a Uint8Array/,
      ],
      [{ url: "https://x.test", headers: { "bad name": "x" } }, /"bad name" is not a valid HTTP header name/],
      [
        { url: "https://x.test", headers: { ok: "a\r\nb" } },
        /headers\["ok"\] must be a string without CR, LF/,
      ],
      [{ url: "https://x.test", fetch: "nope" }, /fetch must be a function/],
      [{ url: "https://x.test", permanent: 404 }, /permanent must be a function/],
      [{ url: "https://x.test", maxRetryAfter: -1 }, /maxRetryAfter must be a finite number/],
    ])("refuses %o", (options, message) => {
      expect(() => httpSender(options as never)).toThrow(ValidationError);
      expect(() => httpSender(options as never)).toThrow(message);
    });

    it("refuses a URL with credentials, and never echoes them or the query", () => {
      for (const url of ["https://alice:hunter2@x.test/hook?token=abc", "http://hunter2@x.test/hook"]) {
        const error = (() => {
          try {
            httpSender({ url, secret: SECRET });
          } catch (e) {
            return e as Error;
          }
        })();
        expect(error).toBeInstanceOf(ValidationError);
        expect(error!.message).toMatch(/carries credentials \(user:password@\)/);
        expect(error!.message).toContain("***@x.test/hook");
        expect(error!.message).not.toContain("hunter2");
        expect(error!.message).not.toContain("token=abc");
      }
    });

    it("unsigned: true sends without a secret; a secret given anyway is used", async () => {
      await httpSender({ url: receiver.url, unsigned: true, secret: SECRET }).send(
        [message("8", "{}")],
        signal(),
      );
      expect(new Webhook(SECRET).verify("{}", receiver.requests[0]!.headers)).toEqual({});
    });

    it("refuses a missing options object", () => {
      expect(() => httpSender(undefined as never)).toThrow(/httpSender options must be an object/);
    });
  });
});
