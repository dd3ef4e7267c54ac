/**
 * `requestTimeout`: each request has its own deadline, under the send's signal. Real receivers on
 * 127.0.0.1 that hang, reset connections and stream bodies slowly, on both transports.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { type Message, SendStatus, ValidationError } from "../../mod.ts";
import { type HttpReceiver, startHttpReceiver, testMessage } from "../support/http-receiver.ts";
import { HTTP_BUILDS } from "../support/http-transports.ts";
import { waitFor } from "../support/senders.ts";

const messages = (n: number) => Array.from({ length: n }, (_, i) => testMessage(String(i + 1)));
const signal = () => new AbortController().signal;
// Far past every requestTimeout below: a request that waits for it has not been cut.
const HANG_MS = 60_000;

let receiver: HttpReceiver;
beforeAll(async () => {
  receiver = await startHttpReceiver();
});
afterAll(() => receiver.close());
beforeEach(async () => {
  await waitFor(() => receiver.inFlight === 0, 10_000);
  receiver.reset();
  receiver.respond(() => undefined);
});

const byId = (batch: Message[]) => Object.fromEntries(batch.map((m) => [m.id, m]));

describe.each(HTTP_BUILDS)("$transport transport", ({ build }) => {
  const { httpSender } = build;

  it("a hanging request fails alone after requestTimeout; the rest of the batch is delivered meanwhile", async () => {
    receiver.respond((request) => (request.headers["webhook-id"] === "2" ? { delayMs: HANG_MS } : {}));
    const sender = httpSender({ url: receiver.url, unsigned: true, requestTimeout: 1_500, concurrency: 2 });
    const batch = messages(12);
    await sender.send(batch, signal());
    const sent = byId(batch);
    expect(sent["2"]?.status).toBe(SendStatus.Fail);
    expect(sent["2"]?.error).toBe(
      "request for message 2 aborted: no response within requestTimeout (1500 ms)",
    );
    expect(batch.filter((m) => m.status === SendStatus.Sent)).toHaveLength(11);
    // The hanging request held one slot of two: the other slot delivered the rest of the batch,
    // all of it received while message 2 was still waiting.
    expect(receiver.requests.map((r) => r.headers["webhook-id"]).sort()).toEqual(
      batch.map((m) => m.id).sort(),
    );
    await waitFor(() => receiver.cutShort === 1);
  });

  it("sendTimeout stays the ceiling: the send's signal aborts requests before their requestTimeout", async () => {
    receiver.respond(() => ({ delayMs: HANG_MS }));
    const sender = httpSender({ url: receiver.url, unsigned: true, requestTimeout: 60_000 });
    const batch = messages(2);
    const controller = new AbortController();
    const sending = sender.send(batch, controller.signal);
    await waitFor(() => receiver.inFlight === 2);
    controller.abort(new Error("sendTimeout"));
    await sending;
    for (const m of batch) {
      expect(m.status).toBe(SendStatus.Fail);
      expect(m.error).toBe(`request for message ${m.id} aborted: sendTimeout`);
    }
  });

  it("a slow-streaming body is cut at the deadline; the status that came in time decides", async () => {
    receiver.respond((request) =>
      request.headers["webhook-id"] === "1"
        ? { status: 200, trickle: { count: 1000, everyMs: 50 } }
        : { status: 503, trickle: { count: 1000, everyMs: 50 } },
    );
    const sender = httpSender({ url: receiver.url, unsigned: true, requestTimeout: 1_500 });
    const batch = messages(2);
    await sender.send(batch, signal());
    expect(batch.map((m) => m.status)).toEqual([SendStatus.Sent, SendStatus.Fail]);
    expect(batch[1]?.error).toBe("HTTP 503 for message 2");
    // Both streams were cut by the sender long before their 50 s were over.
    await waitFor(() => receiver.cutShort === 2);
  });

  it("a reset connection fails its message alone with a connection error", async () => {
    receiver.respond((request) => (request.headers["webhook-id"] === "3" ? { reset: true } : {}));
    const sender = httpSender({ url: receiver.url, unsigned: true, requestTimeout: 5_000 });
    const batch = messages(5);
    await sender.send(batch, signal());
    const m3 = byId(batch)["3"]!;
    expect(m3.status).toBe(SendStatus.Fail);
    expect(m3.error).toMatch(
      /^request for message 3 failed: .*(socket hang up|ECONNRESET|fetch failed|terminated)/i,
    );
    expect(batch.filter((m) => m.status === SendStatus.Sent).map((m) => m.id)).toEqual(["1", "2", "4", "5"]);
  });

  it("aborted keep-alive requests do not poison the pool: the next requests are answered, each its own answer", async () => {
    const sender = httpSender({ url: receiver.url, unsigned: true, requestTimeout: 1_500, concurrency: 4 });
    // Four requests time out while waiting, four more while their bodies stream.
    receiver.respond((_request, index) =>
      index < 4 ? { delayMs: HANG_MS } : { status: 200, trickle: { count: 1000, everyMs: 50 } },
    );
    const first = messages(8);
    await sender.send(first.slice(0, 4), signal());
    await sender.send(first.slice(4), signal());
    expect(first.map((m) => m.status)).toEqual([
      ...Array(4).fill(SendStatus.Fail),
      ...Array(4).fill(SendStatus.Sent),
    ]);
    // Each answer names the request it answers: a socket left mid-response and reused would
    // hand a request the previous request's status or bytes.
    receiver.respond((request) => ({ status: Number(request.headers["webhook-id"]) % 2 === 0 ? 204 : 404 }));
    const next = Array.from({ length: 20 }, (_, i) => testMessage(String(100 + i)));
    await sender.send(next, signal());
    expect(next.map((m) => m.status)).toEqual(
      next.map((m) => (Number(m.id) % 2 === 0 ? SendStatus.Sent : SendStatus.Dead)),
    );
    expect(receiver.requests.slice(8)).toHaveLength(20);
  });

  it("refuses a bad requestTimeout with a ValidationError naming it", () => {
    for (const bad of [0, -1, 0.5, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 31, "1000", null]) {
      expect(() => httpSender({ url: receiver.url, unsigned: true, requestTimeout: bad as number })).toThrow(
        ValidationError,
      );
    }
    expect(() => httpSender({ url: receiver.url, unsigned: true, requestTimeout: 0 })).toThrow(
      "requestTimeout must be a number of milliseconds from 1 to 2147483647, got 0",
    );
    expect(() =>
      httpSender({ url: receiver.url, unsigned: true, requestTimeout: 2 ** 31 - 1 }),
    ).not.toThrow();
    expect(() => httpSender({ url: receiver.url, unsigned: true, requestTimeout: 1 })).not.toThrow();
  });
});
