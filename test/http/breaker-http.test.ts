/**
 * The per-origin circuit breaker of `httpSender` against real receivers on 127.0.0.1: which
 * failures open it, what a refused message carries, half-open probes, isolation between
 * origins (end to end through an Outbox), its gauge on the real OpenTelemetry SDK, and options.
 */

import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { createClient } from "@libsql/client";
import { DiagLogLevel, diag, type Meter } from "@opentelemetry/api";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { LibsqlStore } from "../../adapters/libsql.ts";
import { MemoryStore } from "../../adapters/memory.ts";
import { type Message, Outbox, SendStatus, type TransactionalStore, ValidationError } from "../../mod.ts";
import { type HttpReceiver, startHttpReceiver, testMessage, unusedUrl } from "../support/http-receiver.ts";
import { HTTP_BUILDS } from "../support/http-transports.ts";
import { waitFor } from "../support/senders.ts";
import { otel } from "../telemetry/support.ts";

type FailOptions = Parameters<Message["markAsFailed"]>[0];

/** Messages whose `markAsFailed` options are recorded, as the sender passed them. */
function recorded(ids: string[]): { batch: Message[]; marks: Map<string, FailOptions> } {
  const marks = new Map<string, FailOptions>();
  const batch = ids.map((id) => {
    const message = testMessage(id);
    const mark = message.markAsFailed.bind(message);
    message.markAsFailed = (options) => {
      marks.set(id, options);
      mark(options);
    };
    return message;
  });
  return { batch, marks };
}

const ids = (from: number, n: number) => Array.from({ length: n }, (_, i) => String(from + i));
const send = (sender: { send(m: Message[], s: AbortSignal): Promise<Message[]> }, batch: Message[]) =>
  sender.send(batch, new AbortController().signal);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

let healthy: HttpReceiver;
let failing: HttpReceiver;
beforeEach(async () => {
  healthy = await startHttpReceiver();
  failing = await startHttpReceiver();
});
afterEach(async () => {
  await Promise.all([healthy.close(), failing.close()]);
});

describe.each(HTTP_BUILDS)("$transport transport", ({ build }) => {
  const { httpSender } = build;

  it("opens after failureThreshold 5xx in a row; then refuses without a request, attempted: false, with a retryAfter", async () => {
    failing.respond(() => ({ status: 503 }));
    const sender = httpSender({
      url: failing.url,
      unsigned: true,
      concurrency: 1,
      requestTimeout: 10_000,
      breaker: { failureThreshold: 3, cooldownMs: 10_000 },
    });
    await send(sender, recorded(ids(1, 3)).batch);
    expect(failing.requests).toHaveLength(3);
    const [state] = sender.breakers();
    expect(state).toMatchObject({ origin: failing.origin, state: "open", failures: 3 });
    const { batch, marks } = recorded(ids(10, 4));
    await send(sender, batch);
    // Read after the refusals: each retryAfter counts from its refusal, at or before this.
    // (Read before the send, a loaded machine's stall before a refusal would shorten the
    // retryAfter it gives by as much, and the sum below could fall short.)
    const after = Date.now();
    expect(failing.requests).toHaveLength(3);
    for (const message of batch) {
      expect(message.status).toBe(SendStatus.Fail);
      const mark = marks.get(message.id)!;
      expect(mark.attempted).toBe(false);
      // The time left until the breaker may let a probe through, rounded up to 100 ms.
      expect(mark.retryAfter! % 100).toBe(0);
      expect(mark.retryAfter).toBeGreaterThan(0);
      expect(mark.retryAfter).toBeLessThanOrEqual(10_000);
      expect(after + mark.retryAfter!).toBeGreaterThanOrEqual(state!.openUntil!.getTime() - 1);
      expect(mark.error).toBe(
        `circuit breaker open for ${failing.origin} after 3 failures in a row (last: HTTP 503); message ${message.id} not sent, retry in ${mark.retryAfter} ms`,
      );
    }
  });

  it("timeouts and refused connections count; 4xx answers do not (the endpoint is up)", async () => {
    failing.respond(() => ({ status: 404 }));
    const sender = httpSender({
      url: (m) => (m.key === "k-down" ? down : failing.url),
      unsigned: true,
      requestTimeout: 1_500,
      concurrency: 1,
      breaker: { failureThreshold: 2, cooldownMs: 10_000 },
    });
    const down = await unusedUrl();
    // Ten dead-at-once 404s in a row: the breaker stays closed.
    await send(sender, recorded(ids(1, 10)).batch);
    expect(sender.breakers()).toEqual([
      { origin: failing.origin, state: "closed", failures: 0, openUntil: null },
    ]);
    // Two hanging requests in a row open it.
    failing.respond(() => ({ delayMs: 60_000 }));
    await send(sender, recorded(ids(20, 2)).batch);
    expect(sender.breakers()[0]).toMatchObject({ state: "open", failures: 2 });
    const { batch, marks } = recorded(["25"]);
    await send(sender, batch);
    expect(marks.get("25")?.error).toContain(
      "after 2 failures in a row (last: no response within requestTimeout)",
    );
    // A refused connection is a failure too.
    const refused = [testMessage("30"), testMessage("31")].map((m) => Object.assign(m, { key: "k-down" }));
    await send(sender, refused);
    expect(sender.breakers().find((b) => b.origin === new URL(down).origin)).toMatchObject({
      state: "open",
      failures: 2,
    });
  });

  it("a 5xx burst shorter than failureThreshold never opens it; a longer one does, and a recovered endpoint closes it", async () => {
    // 4 failures, a success, 4 failures, a success, 6 failures in a row, then healthy again.
    const script = [...Array(4).fill(503), 200, ...Array(4).fill(500), 200, ...Array(6).fill(502)];
    failing.respond((_request, index) => ({ status: script[index] ?? 200 }));
    const sender = httpSender({
      url: failing.url,
      unsigned: true,
      concurrency: 1,
      requestTimeout: 10_000,
      breaker: { failureThreshold: 5, cooldownMs: 100 },
    });
    await send(sender, recorded(ids(1, 9)).batch);
    expect(sender.breakers()[0]).toMatchObject({ state: "closed", failures: 4 });
    await send(sender, recorded(["10"]).batch);
    expect(sender.breakers()[0]).toMatchObject({ state: "closed", failures: 0 });
    const burst = recorded(ids(20, 8));
    await send(sender, burst.batch);
    // The fifth failure in a row opened it: of eight messages, five reached the endpoint.
    expect(failing.requests).toHaveLength(10 + 5);
    expect(burst.batch.slice(5).map((m) => burst.marks.get(m.id)?.attempted)).toEqual([false, false, false]);
    await waitFor(() => sender.breakers()[0]?.state === "half_open");
    // The probe gets the burst's last 502: open again, for twice as long; then the endpoint is healthy.
    await send(sender, recorded(["30"]).batch);
    expect(failing.requests).toHaveLength(16);
    expect(sender.breakers()[0]?.state).toBe("open");
    await waitFor(() => sender.breakers()[0]?.state === "half_open");
    const after = recorded(ids(40, 3));
    await send(sender, after.batch);
    expect(after.batch.map((m) => m.status)).toEqual([SendStatus.Sent, SendStatus.Sent, SendStatus.Sent]);
    expect(sender.breakers()[0]).toMatchObject({ state: "closed", failures: 0 });
  });

  it("429 counts against the endpoint", async () => {
    failing.respond(() => ({ status: 429 }));
    const sender = httpSender({
      url: failing.url,
      unsigned: true,
      concurrency: 1,
      breaker: { failureThreshold: 2 },
    });
    await send(sender, recorded(ids(1, 2)).batch);
    expect(sender.breakers()[0]?.state).toBe("open");
  });

  it("half-open: one probe goes, the rest wait; a healthy probe closes it and the next send goes through", async () => {
    failing.respond(() => ({ status: 500 }));
    const sender = httpSender({
      url: failing.url,
      unsigned: true,
      requestTimeout: 2_000,
      concurrency: 3,
      breaker: { failureThreshold: 1, cooldownMs: 150 },
    });
    await send(sender, recorded(["1"]).batch);
    expect(sender.breakers()[0]?.state).toBe("open");
    await waitFor(() => sender.breakers()[0]?.state === "half_open");
    failing.reset();
    failing.respond(() => ({ status: 204, delayMs: 100 }));
    const { batch, marks } = recorded(ids(10, 3));
    await send(sender, batch);
    // The probe alone reached the endpoint; the two others were refused until the probe's
    // requestTimeout is over at the latest (what is left of it, not requestTimeout again).
    expect(failing.requests).toHaveLength(1);
    expect(batch.filter((m) => m.status === SendStatus.Sent)).toHaveLength(1);
    const refused = batch.filter((m) => m.status === SendStatus.Fail);
    for (const mark of refused.map((m) => marks.get(m.id))) {
      expect(mark?.attempted).toBe(false);
      expect(mark?.retryAfter).toBeGreaterThan(1_500);
      expect(mark?.retryAfter).toBeLessThanOrEqual(2_000);
    }
    expect(sender.breakers()).toEqual([
      { origin: failing.origin, state: "closed", failures: 0, openUntil: null },
    ]);
    await send(sender, refused);
    expect(refused.map((m) => m.status)).toEqual([SendStatus.Sent, SendStatus.Sent]);
  });

  it("a failed probe opens it again for about twice the cool-down", async () => {
    failing.respond(() => ({ status: 502 }));
    const sender = httpSender({
      url: failing.url,
      unsigned: true,
      breaker: { failureThreshold: 1, cooldownMs: 200, maxCooldownMs: 10_000 },
    });
    await send(sender, recorded(["1"]).batch);
    await waitFor(() => sender.breakers()[0]?.state === "half_open");
    const before = Date.now();
    await send(sender, recorded(["2"]).batch);
    const after = Date.now();
    expect(failing.requests).toHaveLength(2);
    const until = sender.breakers()[0]!.openUntil!.getTime();
    // 400 ms less up to a quarter of jitter, counted from when the probe failed.
    expect(until).toBeGreaterThanOrEqual(before + 300);
    expect(until).toBeLessThanOrEqual(after + 400);
  });

  it("one message per send, as the relay's window calls it: concurrent sends share one breaker", async () => {
    failing.respond(() => ({ status: 503 }));
    const sender = httpSender({
      url: failing.url,
      unsigned: true,
      concurrency: 4,
      breaker: { failureThreshold: 4, cooldownMs: 10_000 },
    });
    expect(sender.window).toBe(4);
    // Four sends of one message each, in flight together: four failures in a row open it.
    await Promise.all(ids(1, 4).map((id) => send(sender, recorded([id]).batch)));
    expect(sender.breakers()[0]).toMatchObject({ state: "open", failures: 4 });
    const later = recorded(ids(10, 4));
    await Promise.all(later.batch.map((m) => send(sender, [m])));
    expect(failing.requests).toHaveLength(4);
    expect([...later.marks.values()].every((mark) => mark?.attempted === false)).toBe(true);
    expect(httpSender({ url: failing.url, unsigned: true }).window).toBe(8);
  });

  it("breaker: false sends every request whatever happens, and reports no breakers", async () => {
    failing.respond(() => ({ status: 503 }));
    const sender = httpSender({ url: failing.url, unsigned: true, concurrency: 1, breaker: false });
    await send(sender, recorded(ids(1, 20)).batch);
    expect(failing.requests).toHaveLength(20);
    expect(sender.breakers()).toEqual([]);
  });

  it("breakers belong to their sender: another sender still sends to an origin this one gave up on", async () => {
    failing.respond(() => ({ status: 503 }));
    const options = {
      url: failing.url,
      unsigned: true,
      concurrency: 1,
      breaker: { failureThreshold: 1 },
    } as const;
    const first = httpSender(options);
    const second = httpSender(options);
    await send(first, recorded(["1"]).batch);
    await send(second, recorded(["2"]).batch);
    expect(failing.requests).toHaveLength(2);
    expect(first.breakers()[0]?.state).toBe("open");
    expect(second.breakers()[0]?.state).toBe("open");
  });
});

describe("requestTimeout at or above sendTimeout: the send's deadline cuts the requests", () => {
  it.each([1_000, 2_000])(
    "requestTimeout %i, sendTimeout 1000: a hanging endpoint opens the breaker after failureThreshold requests",
    async (requestTimeout) => {
      failing.respond(() => ({ delayMs: 60_000 }));
      const store = new MemoryStore();
      const sender = HTTP_BUILDS[1]!.build.httpSender({
        url: failing.url,
        unsigned: true,
        concurrency: 1,
        requestTimeout,
        breaker: { failureThreshold: 3, cooldownMs: 60_000 },
      });
      const outbox = new Outbox(store, sender, {
        sendTimeout: 1_000,
        leaseDuration: 5_000,
        maxRetries: 100,
        backoff: { initialDelay: 1, maxDelay: 1 },
        onError: () => {},
      });
      await store.transaction(async (tx) => {
        for (let i = 0; i < 6; i++) await outbox.addMessage(tx, { key: `k${i}`, value: "x" });
      });
      for (let i = 0; i < 20 && sender.breakers()[0]?.state !== "open"; i++) {
        await outbox.tick({ budgetMs: 1_500 });
      }
      // One request at a time: each is cut by sendTimeout, counts, and the third opens it.
      expect(sender.breakers()[0]).toMatchObject({ state: "open", failures: 3 });
      expect(failing.requests).toHaveLength(3);
      await outbox[Symbol.asyncDispose]();
    },
  );

  it("a caller's abort says nothing about the endpoint: the ticket is given back, nothing counts", async () => {
    failing.respond(() => ({ delayMs: 60_000 }));
    const sender = httpSender1({ url: failing.url, requestTimeout: 10_000 });
    for (let i = 0; i < 3; i++) {
      const controller = new AbortController();
      const sent = sender.send([testMessage(String(i))], controller.signal);
      await waitFor(() => failing.requests.length === i + 1);
      controller.abort();
      await sent;
    }
    expect(sender.breakers()[0]).toMatchObject({ state: "closed", failures: 0 });
  });

  it("a timeout signal (AbortSignal.timeout, as the relay's sendTimeout) cutting a request counts", async () => {
    failing.respond(() => ({ delayMs: 60_000 }));
    const sender = httpSender1({ url: failing.url, requestTimeout: 10_000 });
    for (let i = 0; i < 3; i++) await sender.send([testMessage(String(i))], AbortSignal.timeout(200));
    expect(sender.breakers()[0]).toMatchObject({ state: "open", failures: 3 });
    const { batch, marks } = recorded(["9"]);
    await send(sender, batch);
    expect(marks.get("9")?.error).toContain("(last: no response within sendTimeout)");
  });
});

const httpSender1 = (options: { url: string; requestTimeout: number }) =>
  HTTP_BUILDS[1]!.build.httpSender({
    ...options,
    unsigned: true,
    concurrency: 1,
    breaker: { failureThreshold: 3, cooldownMs: 60_000 },
  });

describe("two endpoints through an Outbox: one hanging, one healthy", () => {
  const stores = [
    ["MemoryStore", async () => new MemoryStore()],
    [
      "LibsqlStore :memory:",
      async () => {
        const store = new LibsqlStore(createClient({ url: ":memory:" }));
        await store.migrate();
        return store;
      },
    ],
  ] as const;

  it.each(stores)(
    "%s: the healthy endpoint gets all its messages, not much later than without the hanging one; the hanging one gets no request while open, then recovers through a probe",
    async (_name, open) => {
      failing.respond(() => ({ delayMs: 60_000 }));
      const BAD = 100;
      const GOOD = 40;
      const relay = async () => {
        const store = await open();
        const sender = HTTP_BUILDS[1]!.build.httpSender({
          url: (m) => (m.key.startsWith("bad") ? failing.url : healthy.url),
          unsigned: true,
          concurrency: 4,
          requestTimeout: 1_500,
          breaker: { failureThreshold: 3, cooldownMs: 4_000 },
        });
        const outbox = new Outbox(store as TransactionalStore<unknown>, sender, {
          batchSize: 10,
          sendTimeout: 5_000,
          leaseDuration: 30_000,
          maxRetries: 20,
          backoff: { initialDelay: 10, maxDelay: 50 },
          onError: () => {},
        });
        const add = async (key: string, n: number) => {
          await store.withTransaction(async (tx: unknown) => {
            for (let i = 0; i < n; i++)
              await outbox.addMessage(tx, { key: `${key}-${i}`, value: `${key}${i}` });
          });
        };
        return { store, sender, outbox, add };
      };
      /** Milliseconds until the healthy endpoint got all its messages, relaying from now on. */
      const healthyDelivery = async (outbox: Outbox<unknown>) => {
        const started = performance.now();
        const ticking = outbox.tick({ budgetMs: 30_000 });
        await waitFor(() => healthy.requests.length >= GOOD, 30_000);
        const elapsed = performance.now() - started;
        await ticking;
        return elapsed;
      };

      // The same healthy traffic without the hanging endpoint, in this test: the baseline.
      const alone = await relay();
      await alone.add("good", GOOD);
      const aloneMs = await healthyDelivery(alone.outbox);
      await alone.outbox[Symbol.asyncDispose]();
      healthy.reset();

      const { store, sender, outbox, add } = await relay();
      // The hanging endpoint's backlog is written first: the oldest messages, claimed first.
      await add("bad", BAD);
      await add("good", GOOD);
      const withHangingMs = await healthyDelivery(outbox);
      const goodIds = healthy.requests.map((r) => r.text());
      expect(new Set(goodIds).size).toBe(GOOD);
      // Its three first requests hang until requestTimeout (one slot still serving the healthy
      // endpoint), then its backlog is refused without a request: the healthy deliveries are
      // not held back for long. Generous margins: a loaded machine measures noisily.
      expect(withHangingMs).toBeLessThanOrEqual(3 * aloneMs + 2_000);
      // The hanging endpoint got its first requests (at most failureThreshold + concurrency - 1
      // were admitted before the third timeout opened the breaker), then none while it was open:
      // the rest of its messages were refused without a request.
      const state = sender.breakers().find((b) => b.origin === failing.origin);
      expect(state?.state).toBe("open");
      const whileOpen = failing.requests.length;
      expect(whileOpen).toBeGreaterThanOrEqual(3);
      expect(whileOpen).toBeLessThanOrEqual(3 + 4 - 1);
      // The endpoint recovers: after the cool-down a probe closes the breaker, and every message
      // of that endpoint is delivered (refused ones come back spread over a cool-down).
      failing.respond(() => ({ status: 200 }));
      const delivered = () => new Set(failing.requests.filter((r) => r.text() !== "").map((r) => r.text()));
      for (let i = 0; i < 400 && (await store.stats()).pending > 0; i++) {
        await outbox.tick({ budgetMs: 500 });
        await sleep(50);
      }
      expect((await store.stats()).pending).toBe(0);
      expect([...delivered()].filter((t) => t.startsWith("bad")).sort()).toEqual(
        Array.from({ length: BAD }, (_, i) => `bad${i}`).sort(),
      );
      expect(sender.breakers().find((b) => b.origin === failing.origin)?.state).toBe("closed");
      expect(healthy.requests).toHaveLength(GOOD);
      await outbox[Symbol.asyncDispose]();
    },
    60_000,
  );
});

describe("the outbox.http.breaker.state gauge", () => {
  it("reports each origin's state on the real SDK: 0 closed, 2 open, 1 half-open", async () => {
    const rig = otel();
    failing.respond(() => ({ status: 503 }));
    const sender = HTTP_BUILDS[0]!.build.httpSender({
      url: (m) => (m.key === "k1" ? failing.url : healthy.url),
      unsigned: true,
      meter: rig.meter,
      concurrency: 1,
      breaker: { failureThreshold: 1, cooldownMs: 300 },
    });
    await send(sender, [testMessage("1"), testMessage("2")]);
    const points = async () => {
      const metric = (await rig.collect()).get("outbox.http.breaker.state");
      return (metric?.dataPoints ?? []).map((p) => ({ ...p.attributes, value: p.value }));
    };
    const metric = (await rig.collect()).get("outbox.http.breaker.state");
    expect(metric?.descriptor).toMatchObject({
      unit: "{state}",
      description:
        "Circuit breaker of httpSender per origin (server.address, server.port, url.scheme): 0 closed, 1 half-open (probing), 2 open (messages wait without a request).",
    });
    const port = (origin: string) => Number(new URL(origin).port);
    expect(await points()).toEqual([
      { "server.address": "127.0.0.1", "server.port": port(failing.origin), "url.scheme": "http", value: 2 },
      { "server.address": "127.0.0.1", "server.port": port(healthy.origin), "url.scheme": "http", value: 0 },
    ]);
    await waitFor(() => sender.breakers()[0]?.state === "half_open");
    expect((await points())[0]?.value).toBe(1);
    await rig.shutdown();
  });

  it("a broken meter costs the gauge only: sending goes on, the failure goes to diag once", async () => {
    const warnings: string[] = [];
    diag.setLogger(
      {
        error: () => {},
        warn: (message) => warnings.push(message),
        info: () => {},
        debug: () => {},
        verbose: () => {},
      },
      { logLevel: DiagLogLevel.WARN, suppressOverrideMessage: true },
    );
    try {
      const throwing = {
        createObservableGauge() {
          throw new Error("meter down");
        },
      } as unknown as Meter;
      const sender = HTTP_BUILDS[0]!.build.httpSender({ url: healthy.url, unsigned: true, meter: throwing });
      const batch = [testMessage("1")];
      await send(sender, batch);
      expect(batch[0]?.status).toBe(SendStatus.Sent);
      expect(warnings).toEqual([
        "edge-outbox/http: outbox.http.breaker.state registration failed; breaker telemetry is skipped",
      ]);
      // An SDK whose observe throws: the collection goes on, reported once.
      let callback: ((result: { observe(): void }) => void) | undefined;
      const observing = {
        createObservableGauge: () => ({
          addCallback: (cb: typeof callback) => {
            callback = cb;
          },
        }),
      } as unknown as Meter;
      HTTP_BUILDS[0]!.build.httpSender({ url: healthy.url, unsigned: true, meter: observing }).breakers();
      const sender2 = HTTP_BUILDS[0]!.build.httpSender({
        url: healthy.url,
        unsigned: true,
        meter: observing,
      });
      await send(sender2, [testMessage("2")]);
      const broken = {
        observe() {
          throw new Error("observe down");
        },
      };
      callback!(broken);
      callback!(broken);
      expect(warnings).toHaveLength(2);
      expect(warnings[1]).toBe(
        "edge-outbox/http: outbox.http.breaker.state observe failed; breaker telemetry is skipped",
      );
    } finally {
      diag.disable();
    }
  });
});

describe("the gauge of a dropped sender", () => {
  it("is unregistered once the sender is garbage-collected", async () => {
    setFlagsFromString("--expose-gc");
    const gc = runInNewContext("gc") as () => void;
    const added: unknown[] = [];
    const removed: unknown[] = [];
    const meter = {
      createObservableGauge: () => ({
        addCallback: (cb: unknown) => added.push(cb),
        removeCallback: (cb: unknown) => removed.push(cb),
      }),
    } as unknown as Meter;
    (() => {
      HTTP_BUILDS[0]!.build.httpSender({ url: healthy.url, unsigned: true, meter });
    })();
    expect(added).toHaveLength(1);
    await waitFor(async () => {
      gc();
      await sleep(20);
      return removed.length === 1;
    }, 10_000);
    expect(removed[0]).toBe(added[0]);
  });
});

describe("breaker and meter options", () => {
  const { httpSender } = HTTP_BUILDS[0]!.build;
  const url = "http://127.0.0.1:9/hook";
  const build = (extra: Record<string, unknown>) => () => httpSender({ url, unsigned: true, ...extra });

  it("refuses bad values with a ValidationError naming the option", () => {
    const cases: [Record<string, unknown>, string][] = [
      [
        { breaker: true },
        "breaker must be an object { failureThreshold?, cooldownMs?, maxCooldownMs?, halfOpenProbes? } or false, got true",
      ],
      [{ breaker: null }, "breaker must be an object"],
      [{ breaker: [] }, "breaker must be an object"],
      [{ breaker: "off" }, "breaker must be an object"],
      [{ breaker: { failureThreshold: 0 } }, "breaker.failureThreshold must be an integer >= 1, got 0"],
      [{ breaker: { failureThreshold: 1.5 } }, "breaker.failureThreshold must be an integer >= 1, got 1.5"],
      [{ breaker: { halfOpenProbes: 0 } }, "breaker.halfOpenProbes must be an integer >= 1, got 0"],
      [
        { breaker: { cooldownMs: -1 } },
        "breaker.cooldownMs must be an integer number of milliseconds from 0 to 86400000 (1 day), got -1",
      ],
      [{ breaker: { cooldownMs: Number.POSITIVE_INFINITY } }, "breaker.cooldownMs must be an integer"],
      [{ breaker: { cooldownMs: 1e300 } }, "from 0 to 86400000 (1 day), got 1e+300"],
      [{ breaker: { cooldownMs: 1.5 } }, "breaker.cooldownMs must be an integer"],
      [{ breaker: { maxCooldownMs: Number.NaN } }, "breaker.maxCooldownMs must be an integer"],
      [{ breaker: { maxCooldownMs: 86_400_001 } }, "breaker.maxCooldownMs must be an integer"],
      [
        { concurrency: 20_000 },
        "concurrency must be at most 10000 (the relay's largest send window), got 20000",
      ],
      [
        { breaker: { cooldownMs: 5_000, maxCooldownMs: 1_000 } },
        "breaker.maxCooldownMs must be at least breaker.cooldownMs (5000), got 1000",
      ],
      [{ meter: {} }, "meter must be an OpenTelemetry Meter, got an object"],
      [{ meter: "meter" }, 'meter must be an OpenTelemetry Meter, got "meter"'],
      [{ meter: null }, "meter must be an OpenTelemetry Meter, got null"],
    ];
    for (const [options, message] of cases) {
      expect(build(options)).toThrow(ValidationError);
      expect(build(options)).toThrow(message);
    }
  });

  it("accepts defaults, partial settings and a cool-down above the default cap", () => {
    expect(build({ breaker: {} })).not.toThrow();
    expect(build({ breaker: { cooldownMs: 0, failureThreshold: 1, halfOpenProbes: 4 } })).not.toThrow();
    // The cap follows a cool-down set above its default instead of refusing it.
    expect(build({ breaker: { cooldownMs: 120_000 } })).not.toThrow();
    expect(build({ breaker: { cooldownMs: 86_400_000, maxCooldownMs: 86_400_000 } })).not.toThrow();
    // The largest concurrency is a window the relay accepts.
    expect(() => new Outbox(new MemoryStore(), build({ concurrency: 10_000 })())).not.toThrow();
    expect(build({ breaker: false })).not.toThrow();
  });
});
