import { Client } from "@upstash/qstash";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { DEFAULT_CONTENT_TYPE, qstashSender } from "../../adapters/qstash.ts";
import { SendStatus, ValidationError } from "../../mod.ts";
import { testMessage, unusedUrl } from "../support/http-receiver.ts";
import { type QStashStandIn, startQStashStandIn } from "../support/qstash-server.ts";

const DESTINATION = "https://example.com/hook";
const TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";

const message = testMessage;
const messages = (...ids: string[]) => ids.map((id) => message(id));
const signal = () => new AbortController().signal;

let qstash: QStashStandIn;
let client: Client;
beforeAll(async () => {
  qstash = await startQStashStandIn({
    urlGroups: { team: ["https://a.example.com/hook", "https://b.example.com/hook"], empty: [] },
  });
  client = qstash.client();
});
afterAll(() => qstash.close());
afterEach(() => {
  qstash.reset();
  vi.restoreAllMocks();
});
// The client logs every refused request with console.error; keep test output readable.
const quiet = () => vi.spyOn(console, "error").mockImplementation(() => {});

describe("qstashSender: handoff", () => {
  it("hands a batch over in one request: body, content type, forwarded headers, dedup id = message id", async () => {
    const batch = [
      message("1", '{"a":1}', {
        "content-type": "application/json",
        traceparent: TRACEPARENT,
        "x-tenant": "t1",
      }),
      message("2", "plain"),
    ];
    const sender = qstashSender({
      client,
      destination: DESTINATION,
      headers: { "x-app": "demo" },
      retries: 2,
      delay: 5,
      callback: "https://example.com/cb",
      failureCallback: "https://example.com/fail",
      flowControl: { key: "tenant-1", parallelism: 2 },
    });
    await sender.send(batch, signal());
    expect(batch.map((m) => m.status)).toEqual([SendStatus.Sent, SendStatus.Sent]);
    expect(qstash.requests).toEqual([{ method: "POST", path: "/v2/batch", status: 200 }]);
    const [first, second] = qstash.messages;
    expect(first).toMatchObject({ destination: DESTINATION, via: "batch", deduplicationId: "1" });
    expect(first!.text()).toBe('{"a":1}');
    expect(first!.forwarded).toMatchObject({
      "content-type": "application/json",
      traceparent: TRACEPARENT,
      "x-tenant": "t1",
      "x-app": "demo",
    });
    expect(first!.upstash).toMatchObject({
      "upstash-retries": "2",
      "upstash-delay": "5s",
      "upstash-callback": "https://example.com/cb",
      "upstash-failure-callback": "https://example.com/fail",
      "upstash-method": "POST",
      "upstash-flow-control-key": "tenant-1",
      "upstash-flow-control-value": "parallelism=2",
    });
    expect(second!.deduplicationId).toBe("2");
    expect(second!.forwarded["content-type"]).toBe(DEFAULT_CONTENT_TYPE);
  });

  it("fans out to a URL group", async () => {
    const batch = messages("3");
    await qstashSender({ client, urlGroup: "team" }).send(batch, signal());
    expect(batch[0]!.status).toBe(SendStatus.Sent);
    expect(qstash.messages.map((m) => m.url)).toEqual([
      "https://a.example.com/hook",
      "https://b.example.com/hook",
    ]);
  });

  it("enqueues into a queue", async () => {
    const batch = messages("4", "5");
    await qstashSender({ client, destination: DESTINATION, queue: "orders" }).send(batch, signal());
    expect(batch.map((m) => m.status)).toEqual([SendStatus.Sent, SendStatus.Sent]);
    expect(qstash.messages.map((m) => m.queue)).toEqual(["orders", "orders"]);
  });

  it("sends a value that is not UTF-8 alone, as raw bytes, through publish or enqueue", async () => {
    const bytes = new Uint8Array([0xff, 0xfe, 0x00, 0x80]);
    const batch = [message("6", bytes), message("7", "text")];
    await qstashSender({ client, destination: DESTINATION }).send(batch, signal());
    expect(batch.map((m) => m.status)).toEqual([SendStatus.Sent, SendStatus.Sent]);
    const binary = qstash.messages.find((m) => m.deduplicationId === "6")!;
    expect(binary.via).toBe("publish");
    expect([...binary.body]).toEqual([...bytes]);

    const queued = [message("8", bytes)];
    await qstashSender({ client, urlGroup: "team", queue: "bin" }).send(queued, signal());
    expect(queued[0]!.status).toBe(SendStatus.Sent);
    const enqueued = qstash.messages.filter((m) => m.deduplicationId === "8");
    expect(enqueued.map((m) => [m.via, m.queue, m.destination])).toEqual([
      ["enqueue", "bin", "team"],
      ["enqueue", "bin", "team"],
    ]);
  });

  it("a repeated handoff is deduplicated by QStash and still counts as sent", async () => {
    const sender = qstashSender({ client, destination: DESTINATION });
    await sender.send(messages("10", "11"), signal());
    const again = messages("10", "11", "12");
    await sender.send(again, signal());
    expect(again.map((m) => m.status)).toEqual([SendStatus.Sent, SendStatus.Sent, SendStatus.Sent]);
    expect(qstash.messages.map((m) => m.deduplicationId)).toEqual(["10", "11", "12"]);
  });
});

describe("qstashSender: outcomes", () => {
  it("fails only the messages QStash refused in a batch", async () => {
    qstash.refuse((m) => (m.text() === "bad" ? "invalid body" : undefined));
    const batch = [message("1", "ok"), message("2", "bad"), message("3", "ok")];
    await qstashSender({ client, destination: DESTINATION }).send(batch, signal());
    expect(batch.map((m) => m.status)).toEqual([SendStatus.Sent, SendStatus.Fail, SendStatus.Sent]);
    expect(batch[1]!.error).toBe("QStash refused message 2: invalid body");
  });

  it("fails a message whose URL group is empty or unknown", async () => {
    const empty = messages("1");
    await qstashSender({ client, urlGroup: "empty" }).send(empty, signal());
    expect(empty[0]!.status).toBe(SendStatus.Fail);
    const unknown = messages("2");
    await qstashSender({ client, urlGroup: "nope" }).send(unknown, signal());
    expect(unknown[0]!.status).toBe(SendStatus.Fail);
    expect(unknown[0]!.error).toContain("urlGroup nope not found");
  });

  it("fails the batch on a burst or daily rate limit, retrying after the reset", async () => {
    quiet();
    for (const kind of ["burst", "daily"] as const) {
      qstash.rateLimitNext(kind, Math.floor(Date.now() / 1000) + 20);
      const batch = messages("1", "2");
      await qstashSender({ client, destination: DESTINATION }).send(batch, signal());
      for (const m of batch) {
        expect(m.status).toBe(SendStatus.Fail);
        expect(m.retryAfter).toBeGreaterThan(15_000);
        expect(m.retryAfter).toBeLessThanOrEqual(20_000);
        expect(m.error).toContain(kind === "burst" ? "QstashRatelimitError" : "QstashDailyRatelimitError");
        expect(m.error).toContain(`message ${m.id}`);
      }
    }
    expect(qstash.messages).toHaveLength(0);
  });

  it("fails on 5xx, kills on 4xx (configurable), fails on network errors", async () => {
    quiet();
    qstash.respondNext({ status: 503, body: { error: "unavailable" } });
    const a = messages("1");
    await qstashSender({ client, destination: DESTINATION }).send(a, signal());
    expect(a[0]).toMatchObject({
      status: SendStatus.Fail,
      error: "QStash answered 503: unavailable (message 1)",
    });

    qstash.respondNext({ status: 400, body: { error: "invalid destination" } });
    const b = messages("2");
    await qstashSender({ client, destination: DESTINATION }).send(b, signal());
    expect(b[0]).toMatchObject({
      status: SendStatus.Dead,
      error: "QStash answered 400: invalid destination (message 2)",
    });

    qstash.respondNext({ status: 400, body: { error: "invalid destination" } });
    const c = messages("3");
    await qstashSender({ client, destination: DESTINATION, permanent: () => false }).send(c, signal());
    expect(c[0]!.status).toBe(SendStatus.Fail);

    const offline = new Client({ token: "t", baseUrl: new URL(await unusedUrl()).origin, retry: false });
    const d = messages("4");
    await qstashSender({ client: offline, destination: DESTINATION }).send(d, signal());
    expect(d[0]!.status).toBe(SendStatus.Fail);
    expect(d[0]!.error).toContain("QStash request failed");
  });

  it("a wrong token is a 401: dead by default, never echoing the token", async () => {
    quiet();
    const wrong = qstash.client("wrong-token-value");
    const batch = messages("1");
    await qstashSender({ client: wrong, destination: DESTINATION }).send(batch, signal());
    expect(batch[0]!.status).toBe(SendStatus.Dead);
    expect(batch[0]!.error).toContain("401");
    expect(batch[0]!.error).not.toContain("wrong-token-value");
  });

  it("does not hand over anything once the signal has aborted", async () => {
    const controller = new AbortController();
    controller.abort();
    const batch = messages("1", "2");
    await qstashSender({ client, destination: DESTINATION }).send(batch, controller.signal);
    expect(batch.every((m) => m.status === SendStatus.Fail)).toBe(true);
    expect(qstash.requests).toHaveLength(0);
  });
});

describe("qstashSender: options", () => {
  it.each([
    [{ client: undefined, destination: DESTINATION }, /client must be a Client from @upstash\/qstash/],
    [{ client: {}, destination: DESTINATION }, /client must be a Client/],
    [{}, /exactly one of destination and urlGroup is required, got neither/],
    [{ destination: DESTINATION, urlGroup: "g" }, /got both/],
    [
      { destination: "example.com/hook" },
      /destination is not an absolute http\(s\) URL \(no scheme; not shown\)/,
    ],
    [{ destination: "ftp://example.com" }, /destination uses ftp:; only http: and https: are allowed/],
    [
      { destination: "https://u:p@example.com/h" },
      /destination carries credentials \(user:password@\) in https:\/\/\*\*\*@example.com\/h/,
    ],
    [{ urlGroup: "" }, /urlGroup must be a non-empty string/],
    [{ urlGroup: "g", queue: 5 }, /queue must be a non-empty string, got 5/],
    [{ urlGroup: "g", retries: -1 }, /retries must be an integer >= 0, got -1/],
    [
      { urlGroup: "g", callback: "/cb" },
      /callback is not an absolute http\(s\) URL \(no scheme; not shown\)/,
    ],
    [{ urlGroup: "g", failureCallback: 7 }, /failureCallback is not a string \(got number\)/],
    [{ urlGroup: "g", headers: { a: 1 } }, /headers\["a"\] must be a string, got number/],
    [{ urlGroup: "g", headers: { "bad name": "x" } }, /"bad name" is not a valid HTTP header name/],
    [{ urlGroup: "g", maxRetryAfter: Number.NaN }, /maxRetryAfter must be a finite number/],
    [{ urlGroup: "g", permanent: true }, /permanent must be a function/],
  ])("refuses %o", (options, message) => {
    const withClient = "client" in options ? options : { client, ...options };
    expect(() => qstashSender(withClient as never)).toThrow(ValidationError);
    expect(() => qstashSender(withClient as never)).toThrow(message);
  });
});
