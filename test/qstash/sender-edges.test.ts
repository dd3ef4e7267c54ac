import type { Client } from "@upstash/qstash";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { qstashSender } from "../../adapters/qstash.ts";
import { SendStatus, ValidationError, wellFormedText } from "../../mod.ts";
import { testMessage as message } from "../support/http-receiver.ts";
import { type QStashStandIn, startQStashStandIn } from "../support/qstash-server.ts";

const DESTINATION = "https://example.com/hook";
const TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
const LIMIT = 4096;
const signal = () => new AbortController().signal;

let qstash: QStashStandIn;
let client: Client;
beforeAll(async () => {
  qstash = await startQStashStandIn({ maxRequestBytes: LIMIT });
  client = qstash.client();
});
afterAll(() => qstash.close());
afterEach(() => {
  qstash.reset();
  vi.restoreAllMocks();
});
const quiet = () => vi.spyOn(console, "error").mockImplementation(() => {});

describe("qstashSender: a request-level 413", () => {
  it("splits the batch and hands the halves over, instead of killing every message", async () => {
    quiet();
    // Ten messages of ~1 KiB: the batch (~10 KiB) is over the limit, a quarter of it is not.
    const batch = Array.from({ length: 10 }, (_, i) => message(String(i + 1), "x".repeat(1000)));
    await qstashSender({ client, destination: DESTINATION }).send(batch, signal());
    expect(batch.map((m) => m.status)).toEqual(Array(10).fill(SendStatus.Sent));
    expect(qstash.messages.map((m) => m.deduplicationId).sort((a, b) => Number(a) - Number(b))).toEqual(
      batch.map((m) => m.id),
    );
    expect(qstash.requests.filter((r) => r.status === 413).length).toBeGreaterThan(0);
    expect(qstash.requests.length).toBeLessThan(20);
  });

  it("fails (not kills) a single message that alone is too large, and sends the rest", async () => {
    quiet();
    const batch = [message("1", "small"), message("2", "y".repeat(LIMIT * 2)), message("3", "small")];
    await qstashSender({ client, destination: DESTINATION }).send(batch, signal());
    expect(batch.map((m) => m.status)).toEqual([SendStatus.Sent, SendStatus.Fail, SendStatus.Sent]);
    expect(batch[1]!.error).toContain("QStash answered 413");
    expect(batch[1]!.error).toContain("message 2");
    // A binary value goes alone through publish: the same rule.
    const alone = [message("4", new Uint8Array(LIMIT * 2).fill(0xff))];
    await qstashSender({ client, destination: DESTINATION }).send(alone, signal());
    expect(alone[0]!.status).toBe(SendStatus.Fail);
  });
});

describe("qstashSender: rate-limit resets are capped", () => {
  it("a huge or far-future reset never yields NaN or an unbounded wait", async () => {
    quiet();
    for (const reset of ["9".repeat(400), String(Date.now() * 1000)]) {
      qstash.respondNext({
        status: 429,
        headers: {
          "Burst-RateLimit-Limit": "1",
          "Burst-RateLimit-Remaining": "0",
          "Burst-RateLimit-Reset": reset,
        },
        body: { error: "rate limit exceeded" },
      });
      const batch = [message("1")];
      await qstashSender({ client, destination: DESTINATION }).send(batch, signal());
      expect(batch[0]!.status).toBe(SendStatus.Fail);
      expect(batch[0]!.retryAfter).toBe(3_600_000);
      expect(batch[0]!.error).not.toContain("NaN");
    }
    qstash.rateLimitNext("daily", Math.floor(Date.now() / 1000) + 7200);
    const capped = [message("2")];
    await qstashSender({ client, destination: DESTINATION, maxRetryAfter: 60_000 }).send(capped, signal());
    expect(capped[0]!.retryAfter).toBe(60_000);
  });
});

describe("qstashSender: callbacks and headers", () => {
  it("a permanent(status) that throws or returns garbage fails the messages (retried), naming it", async () => {
    quiet();
    for (const permanent of [
      () => {
        throw new Error("policy bug");
      },
      () => "no" as never,
    ]) {
      qstash.respondNext({ status: 400, body: { error: "invalid destination" } });
      const batch = [message("1"), message("2")];
      await qstashSender({ client, destination: DESTINATION, permanent }).send(batch, signal());
      for (const m of batch) {
        expect(m.status).toBe(SendStatus.Fail);
        expect(m.error).toMatch(
          /QStash answered 400: invalid destination; permanent\(400\) (threw: Error: policy bug|returned string, expected a boolean)/,
        );
      }
    }
  });

  it("drops invalid trace headers, and fails only a message with an unsendable header", async () => {
    const batch = [
      message("1", "a", { traceparent: TRACEPARENT, tracestate: "v=\u2603" }),
      message("2", "b", { "x-note": "\u2603" }),
      message("3", "c", { traceparent: "bad\u0100", tracestate: "k=v" }),
    ];
    await qstashSender({ client, destination: DESTINATION }).send(batch, signal());
    expect(batch.map((m) => m.status)).toEqual([SendStatus.Sent, SendStatus.Fail, SendStatus.Sent]);
    expect(batch[1]!.error).toBe('message 2: header "x-note" cannot be sent (not a valid HTTP header field)');
    const byId = new Map(qstash.messages.map((m) => [m.deduplicationId, m.forwarded]));
    expect(byId.get("1")!.traceparent).toBe(TRACEPARENT);
    expect(byId.get("1")!.tracestate).toBeUndefined();
    expect(byId.get("3")!.traceparent).toBeUndefined();
    expect(byId.get("3")!.tracestate).toBeUndefined();
  });

  it("refuses bad static headers without echoing their values", () => {
    for (const value of ["Bearer s3cret\r\nx: y", "Bearer s3cret\u2603"]) {
      let error: unknown;
      try {
        qstashSender({ client, destination: DESTINATION, headers: { authorization: value } });
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(ValidationError);
      expect((error as Error).message).toContain('headers["authorization"]');
      expect((error as Error).message).not.toContain("s3cret");
    }
  });

  it("error texts from QStash are well-formed, bounded and carry no URL query or credentials", async () => {
    quiet();
    qstash.respondNext({
      status: 500,
      body: { error: `broken \uD800 at https://user:pw@example.com/x?token=t0ken ${"z".repeat(5000)}` },
    });
    const batch = [message("1")];
    await qstashSender({ client, destination: DESTINATION }).send(batch, signal());
    const error = batch[0]!.error!;
    expect(error).toBe(wellFormedText(error));
    expect(error).not.toContain("t0ken");
    expect(error).not.toContain("pw@");
    expect(error).toContain("https://***@example.com/x?…");
    expect(error.length).toBeLessThan(300);
  });
});

describe("qstashSender: URLs are sent as written, so they are checked as written", () => {
  it("refuses control characters and surrounding whitespace in destination and callbacks", async () => {
    for (const bad of [
      "https://h.example/hook\n",
      "https://h.exa\tmple/hook",
      "https://h.example/ho\r\nok",
      "https://h.example/hook ",
    ]) {
      for (const name of ["destination", "callback", "failureCallback"] as const) {
        const options =
          name === "destination" ? { destination: bad } : { destination: DESTINATION, [name]: bad };
        expect(() => qstashSender({ client, ...options })).toThrow(ValidationError);
        expect(() => qstashSender({ client, ...options })).toThrow(
          new RegExp(`^${name} (contains the control character|starts or ends with whitespace)`),
        );
      }
    }
    expect(qstash.requests).toHaveLength(0);
  });

  it("QStash's error text that echoes a URL with a password holding '/' is stored redacted", async () => {
    quiet();
    qstash.respondNext({
      status: 400,
      body: { error: "invalid destination: https://svc:p4ss/w0rd@h.example/hook?k=v" },
    });
    const batch = [message("1", "{}")];
    await qstashSender({ client, destination: DESTINATION }).send(batch, signal());
    expect(batch[0]!.status).toBe(SendStatus.Dead);
    expect(batch[0]!.error).toContain("invalid destination: https://***@h.example/hook?…");
    expect(batch[0]!.error).not.toMatch(/p4ss|w0rd|k=v/);
  });
});
