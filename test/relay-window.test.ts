/**
 * The streaming send window (`Sender.window`), against a real libSQL file (and MemoryStore) and,
 * for HTTP, a real receiver on 127.0.0.1: a hanging request holds one slot while the others
 * are delivered and recorded; budget, abort and stop() end with every message in flight
 * recorded and nothing never sent charged an attempt; per-key order holds with several claims
 * in flight; a message the sender did not attempt keeps its retries.
 */
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { httpSender } from "../adapters/http.ts";
import {
  type Message,
  Outbox,
  type OutboxOptions,
  type Sender,
  StoreError,
  ValidationError,
} from "../mod.ts";
import { commitMessages } from "./conformance/store-conformance.ts";
import { tempDir } from "./libsql/helpers.ts";
import { type HttpReceiver, startHttpReceiver } from "./support/http-receiver.ts";
import { waitFor } from "./support/senders.ts";
import { type AnyStore, everyStore, type OpenedStore, remaining, throwingMethod } from "./support/stores.ts";

const temp = tempDir();
afterAll(() => temp.cleanup());
const stores = everyStore(temp.dir);
const libsql = stores.find(([name]) => name === "LibsqlStore")![1];

const opened: OpenedStore[] = [];
const receivers: HttpReceiver[] = [];
afterEach(async () => {
  for (const r of receivers.splice(0)) await r.close();
  for (const o of opened.splice(0)) await o.close();
});

async function open(make: () => Promise<OpenedStore>): Promise<AnyStore> {
  const o = await make();
  opened.push(o);
  return o.store;
}

async function receiver(): Promise<HttpReceiver> {
  const r = await startHttpReceiver();
  receivers.push(r);
  return r;
}

/** `httpSender` opted in to the window (until httpSender declares `window` itself). */
/**
 * httpSender with `window` messages in flight (it declares `window: concurrency` itself); its
 * per-request deadline is lifted so that only `sendTimeout` and the tests' aborts cut a request.
 */
function windowedHttp(url: string, window: number): Sender {
  const sender = httpSender({ url, unsigned: true, concurrency: window, requestTimeout: 60_000 });
  expect(sender.window).toBe(window);
  return sender;
}

const numbered = (n: number, key = (i: number) => `k${i}`) =>
  Array.from({ length: n }, (_, i) => ({ key: key(i), value: `m${i}` }));

describe("the send window over HTTP (real libSQL file, real receiver)", () => {
  it("a hanging request holds one slot: every other message is delivered and recorded while it hangs", {
    timeout: 60_000,
  }, async () => {
    const store = await open(libsql);
    const r = await receiver();
    r.respond((request) => (request.text() === "m0" ? { delayMs: 30_000 } : {}));
    await commitMessages(store, numbered(40));
    const outbox = new Outbox(store, windowedHttp(r.url, 4), {
      sendTimeout: 20_000,
      leaseDuration: 60_000,
      batchSize: 4,
      backoff: { initialDelay: 0, maxDelay: 0 },
    });
    const abort = new AbortController();
    const ticking = outbox.tick({ signal: abort.signal });
    // In lock-step batches, m0's batch would wait for m0; here the other 39 go through and
    // their outcomes are stored while m0 is still unanswered.
    await waitFor(async () => {
      const stats = await store.stats();
      return stats.pending === 0 && stats.inFlight === 1;
    }, 30_000);
    expect(r.inFlight).toBe(1);
    expect(r.requests.filter((q) => q.text() !== "m0")).toHaveLength(39);
    abort.abort();
    // The aborted send fails m0 (an attempt: the request was on the wire).
    expect(await ticking).toMatchObject({ sent: 39, failed: 1, dead: 0 });
    const [m0] = await remaining(store);
    expect(m0).toMatchObject({ retries: 1 });
    expect(m0?.text()).toBe("m0");
  });

  it("stop() resolves only once every message in the window is recorded", { timeout: 60_000 }, async () => {
    const store = await open(libsql);
    const r = await receiver();
    r.respond(() => ({ delayMs: 150 }));
    await commitMessages(store, numbered(60));
    const outbox = new Outbox(store, windowedHttp(r.url, 6), { sendTimeout: 10_000, period: 10 });
    outbox.start();
    await waitFor(() => r.requests.length >= 6, 30_000);
    await outbox.stop();
    const stats = await store.stats();
    // Nothing left leased, and each request the receiver got is a recorded delivery.
    expect(stats.inFlight).toBe(0);
    expect(stats.pending).toBe(60 - r.requests.length);
    expect(new Set(r.requests.map((q) => q.text())).size).toBe(r.requests.length);
    expect((await remaining(store)).every((m) => m.retries === 0)).toBe(true);
  });

  it("budgetMs stops the claims; what is in flight finishes and counts exactly", {
    timeout: 60_000,
  }, async () => {
    const store = await open(libsql);
    const r = await receiver();
    r.respond(() => ({ delayMs: 100 }));
    await commitMessages(store, numbered(80));
    const outbox = new Outbox(store, windowedHttp(r.url, 4), { sendTimeout: 10_000 });
    const result = await outbox.tick({ budgetMs: 250 });
    expect(result.sent).toBe(r.requests.length);
    expect(result.sent).toBeGreaterThan(0);
    expect(result.sent).toBeLessThan(80);
    expect(result.failed + result.dead).toBe(0);
    const stats = await store.stats();
    expect(stats).toMatchObject({ inFlight: 0, pending: 80 - result.sent });
    expect((await remaining(store)).every((m) => m.retries === 0)).toBe(true);
  });
});

/** An in-process windowed sender: per-message latency and verdict from `plan`. */
function plannedSender(
  window: number,
  plan: (message: Message, attempt: number) => { delayMs?: number; mark: (m: Message) => void },
) {
  const inFlightKeys = new Map<string, number>();
  const log: { text: string; retries: number; key: string }[] = [];
  let sameKeyOverlap = 0;
  let maxInFlight = 0;
  let inFlight = 0;
  let calls = 0;
  let multi = 0;
  const attempts = new Map<string, number>();
  const sender: Sender = {
    window,
    async send(messages, signal) {
      calls += 1;
      if (messages.length !== 1) multi += 1;
      for (const message of messages) {
        const attempt = (attempts.get(message.id) ?? 0) + 1;
        attempts.set(message.id, attempt);
        log.push({ text: message.text(), retries: message.retries, key: message.key });
        const keyed = (inFlightKeys.get(message.key) ?? 0) + 1;
        if (keyed > 1) sameKeyOverlap += 1;
        inFlightKeys.set(message.key, keyed);
        inFlight += 1;
        maxInFlight = Math.max(maxInFlight, inFlight);
        try {
          const { delayMs = 0, mark } = plan(message, attempt);
          if (delayMs > 0) {
            // Gives up when its signal aborts, as fetch does.
            await new Promise<void>((resolve, reject) => {
              const timer = setTimeout(resolve, delayMs);
              signal.addEventListener("abort", () => {
                clearTimeout(timer);
                reject(signal.reason);
              });
            });
          }
          mark(message);
        } finally {
          inFlight -= 1;
          inFlightKeys.set(message.key, (inFlightKeys.get(message.key) ?? 1) - 1);
        }
      }
      return messages;
    },
  };
  return {
    sender,
    log,
    stats: () => ({ sameKeyOverlap, maxInFlight, calls, multi }),
  };
}

describe.each(stores)("the send window (%s)", (_, make) => {
  it("keeps up to `window` in flight, one message per send call", async () => {
    const store = await open(make);
    await commitMessages(store, numbered(50));
    const planned = plannedSender(5, (m) => ({
      delayMs: Number(m.text().slice(1)) % 7 === 0 ? 80 : 5,
      mark: (x) => x.markAsSent(),
    }));
    const outbox = new Outbox(store, planned.sender, { batchSize: 50 });
    const result = await outbox.tick();
    expect(result).toMatchObject({ sent: 50, failed: 0, dead: 0 });
    expect(planned.stats().multi).toBe(0);
    expect(planned.stats().calls).toBe(50);
    expect(planned.stats().maxInFlight).toBeLessThanOrEqual(5);
    expect(planned.stats().maxInFlight).toBeGreaterThan(1);
    expect(await store.stats()).toMatchObject({ pending: 0, inFlight: 0 });
  });

  it('ordering "key": never two of a key in flight, each key in commit order, a retry holds its key', async () => {
    const store = await open(make);
    await commitMessages(
      store,
      numbered(30, (i) => `key${i % 3}`),
    );
    const planned = plannedSender(8, (m, attempt) => ({
      delayMs: 1 + ((Number(m.text().slice(1)) * 7) % 13),
      // m4 fails once (retry at once): key1's later messages must wait for it.
      mark: (x) => (x.text() === "m4" && attempt === 1 ? x.markAsFailed({ retryAfter: 0 }) : x.markAsSent()),
    }));
    const outbox = new Outbox(store, planned.sender, { ordering: "key", batchSize: 8 });
    let sent = 0;
    for (let i = 0; i < 50 && sent < 30; i++) sent += (await outbox.tick()).sent;
    expect(sent).toBe(30);
    expect(planned.stats().sameKeyOverlap).toBe(0);
    for (const key of ["key0", "key1", "key2"]) {
      const texts = planned.log.filter((l) => l.key === key).map((l) => Number(l.text.slice(1)));
      const expected = Array.from({ length: 30 }, (_, i) => i).filter((i) => `key${i % 3}` === key);
      // m4 appears twice (failed, then sent), nothing of key1 between its two attempts.
      expect(texts).toEqual(key === "key1" ? [1, 4, 4, ...expected.slice(2)] : expected);
    }
  });

  it("markAsFailed({ attempted: false }) spends no attempt and waits its retryAfter", async () => {
    const store = await open(make);
    await commitMessages(store, numbered(4));
    const planned = plannedSender(4, (_m, attempt) => ({
      mark: (x) =>
        x.text() === "m1" && attempt <= 2
          ? x.markAsFailed({ attempted: false, retryAfter: 1_000, error: "circuit open" })
          : x.markAsSent(),
    }));
    const outbox = new Outbox(store, planned.sender, { maxRetries: 0 });
    // maxRetries 0: a real failure would kill m1; a non-attempt must not.
    // A refusal is no failure of delivery: counted in no `failed` total. (retryAfter is a
    // second so that a tick slowed by a loaded machine cannot reach m1's second attempt.)
    expect(await outbox.tick()).toMatchObject({ batches: 1, sent: 3, failed: 0, dead: 0 });
    // Not claimable before its retryAfter.
    expect(await outbox.tick()).toMatchObject({ batches: 0, sent: 0 });
    await waitFor(async () => (await outbox.tick()).batches === 1, 5_000);
    await waitFor(async () => (await outbox.tick()).sent === 1, 5_000);
    const m1 = planned.log.filter((l) => l.text === "m1");
    expect(m1.map((l) => l.retries)).toEqual([0, 0, 0]);
    expect(await store.stats()).toMatchObject({ pending: 0, inFlight: 0, dead: 0 });
  });

  it("a signal aborted mid-window fails what was in flight and claims nothing more", async () => {
    const store = await open(make);
    await commitMessages(store, numbered(40));
    const abort = new AbortController();
    const planned = plannedSender(4, () => ({ delayMs: 10_000, mark: (x) => x.markAsSent() }));
    const outbox = new Outbox(store, planned.sender, {
      sendTimeout: 20_000,
      leaseDuration: 60_000,
      // Ready again at once, so `remaining` reads every message.
      backoff: { initialDelay: 0, maxDelay: 0 },
    });
    const ticking = outbox.tick({ signal: abort.signal });
    await waitFor(() => planned.stats().calls === 4);
    abort.abort();
    expect(await ticking).toMatchObject({ batches: 1, sent: 0, failed: 4, dead: 0 });
    expect(planned.stats().calls).toBe(4);
    const stats = await store.stats();
    expect(stats).toMatchObject({ inFlight: 0, pending: 40 });
    const left = await remaining(store);
    expect(left.filter((m) => m.retries === 1)).toHaveLength(4);
    expect(left.filter((m) => m.retries === 0)).toHaveLength(36);
  });

  it("sendTimeout bounds each message alone: the others are sent", async () => {
    const store = await open(make);
    await commitMessages(store, numbered(12));
    const planned = plannedSender(3, (m) => ({
      delayMs: m.text() === "m2" ? 60_000 : 1,
      mark: (x) => x.markAsSent(),
    }));
    const errors: unknown[] = [];
    const outbox = new Outbox(store, planned.sender, {
      sendTimeout: 300,
      onError: (e) => errors.push(e),
    });
    expect(await outbox.tick()).toMatchObject({ sent: 11, failed: 1 });
    expect(errors).toEqual([expect.objectContaining({ code: "SEND_TIMEOUT" })]);
  });
});

describe.each(stores)("attempted: false and store errors (%s)", (_, make) => {
  it("a batch sender's attempted: false spends no attempt either; without release it is a failed attempt", async () => {
    const store = await open(make);
    await commitMessages(store, numbered(2));
    const seen: number[] = [];
    const sender: Sender = {
      async send(messages) {
        for (const m of messages) {
          seen.push(m.retries);
          m.markAsFailed({ attempted: false, retryAfter: 0 });
        }
        return messages;
      },
    };
    // The delays the relay gives messages back with.
    const delays: unknown[] = [];
    const watched = new Proxy(store, {
      get: (target, name) => {
        const value = Reflect.get(target, name);
        if (typeof value !== "function") return value;
        if (name !== "release") return value.bind(target);
        return (...args: unknown[]) => {
          delays.push(args[2]);
          return value.apply(target, args);
        };
      },
    });
    const outbox = new Outbox(watched, sender, { maxRetries: 0 });
    const released = performance.now();
    expect(await outbox.tick()).toMatchObject({ batches: 1, sent: 0, failed: 0, dead: 0 });
    // retryAfter 0 still waits the 100 ms floor: an open breaker cannot spin the relay.
    expect(delays).toEqual([100]);
    // The floor is the library's, not this test's: a loaded machine may spend it before the next
    // claim, which may then rightly find the messages, so that claim is held to it only while
    // less than the floor has passed since before the give-back (without one it finds them).
    const next = await outbox.tick();
    if (performance.now() - released < 100) expect(next).toMatchObject({ batches: 0 });
    await new Promise((resolve) => setTimeout(resolve, 150));
    expect(await outbox.tick()).toMatchObject({ batches: 1, failed: 0, dead: 0 });
    // Given back each time with no attempt spent (twice, or three times if `next` got them).
    expect(seen).toEqual(Array(next.batches === 0 ? 4 : 6).fill(0));

    // The same store without release: today's behaviour, an attempt spent (and maxRetries 0 kills).
    const withoutRelease = new Proxy(store, {
      get: (target, name) =>
        name === "release"
          ? undefined
          : typeof Reflect.get(target, name) === "function"
            ? Reflect.get(target, name).bind(target)
            : Reflect.get(target, name),
    });
    const plain = new Outbox(withoutRelease, sender, { maxRetries: 0 });
    await new Promise((resolve) => setTimeout(resolve, 150));
    expect(await plain.tick()).toMatchObject({ failed: 2, dead: 0 });
    await new Promise((resolve) => setTimeout(resolve, 150));
    expect((await remaining(store)).map((m) => m.retries)).toEqual([1, 1]);
  });

  it("a claim that lands after the signal aborted is given back unsent, no attempt spent", async () => {
    const store = await open(make);
    await commitMessages(store, numbered(3));
    const abort = new AbortController();
    const hooked = new Proxy(store, {
      get(target, name) {
        const value = Reflect.get(target, name);
        if (typeof value !== "function") return value;
        if (name !== "fetchAndLock") return value.bind(target);
        return async (...args: unknown[]) => {
          const claim = await value.apply(target, args);
          abort.abort();
          return claim;
        };
      },
    });
    const planned = plannedSender(3, () => ({ mark: (x) => x.markAsSent() }));
    const outbox = new Outbox(hooked, planned.sender);
    expect(await outbox.tick({ signal: abort.signal })).toMatchObject({ batches: 0, sent: 0, failed: 0 });
    expect(planned.stats().calls).toBe(0);
    expect(await store.stats()).toMatchObject({ pending: 3, inFlight: 0 });
    expect((await remaining(store)).map((m) => m.retries)).toEqual([0, 0, 0]);
  });

  it("a release that throws is reported, and the message not attempted is recorded as a failed attempt", async () => {
    const store = await open(make);
    await commitMessages(store, numbered(3));
    const broken = throwingMethod(
      store,
      "release",
      () => new StoreError("database is locked", { retryable: true }),
    );
    const planned = plannedSender(3, (m) => ({
      mark: (x) =>
        m.text() === "m1" ? x.markAsFailed({ attempted: false, retryAfter: 1_000 }) : x.markAsSent(),
    }));
    const errors: unknown[] = [];
    const outbox = new Outbox(broken, planned.sender, { onError: (e) => errors.push(e) });
    expect(await outbox.tick()).toMatchObject({ sent: 2, failed: 1, dead: 0 });
    expect(errors).toEqual([expect.any(StoreError)]);
    // Not claimable before its retryAfter, even so; then claimed with the attempt counted.
    // (retryAfter is a second so that a claim slowed by a loaded machine still comes before it.)
    expect(
      (await store.fetchAndLock({ batchSize: 5, leaseDuration: 1000, ordering: "none" })).messages,
    ).toEqual([]);
    await new Promise((resolve) => setTimeout(resolve, 1_100));
    expect((await remaining(store)).map((m) => [m.text(), m.retries])).toEqual([["m1", 1]]);
  });

  it("a store without release: the window claims only what starts at once, never charging a queued message", async () => {
    const store = await open(make);
    await commitMessages(store, numbered(12));
    const claimSizes: number[] = [];
    const withoutRelease = new Proxy(store, {
      get(target, name) {
        if (name === "release") return undefined;
        const value = Reflect.get(target, name);
        if (typeof value !== "function") return value;
        if (name === "fetchAndLock" || name === "recordAndFetch") {
          return (...args: unknown[]) => {
            claimSizes.push((args[args.length - 1] as { batchSize: number }).batchSize);
            return value.apply(target, args);
          };
        }
        return value.bind(target);
      },
    });
    const planned = plannedSender(3, () => ({ delayMs: 20, mark: (x) => x.markAsSent() }));
    const outbox = new Outbox(withoutRelease, planned.sender, { batchSize: 10 });
    // Nothing waits in a queue it could not give back: every claim fits the free slots.
    expect(await outbox.tick()).toMatchObject({ sent: 12, failed: 0, dead: 0 });
    expect(Math.max(...claimSizes)).toBeLessThanOrEqual(3);
    expect(planned.log.map((l) => l.retries)).toEqual(Array(12).fill(0));
    expect(await store.stats()).toMatchObject({ pending: 0, inFlight: 0 });
  });

  it.each([
    ["window", true],
    ["batch passes", false],
  ])(
    "%s: a failed combined write is recorded again with the plain marks: the drain ends, nothing is sent twice",
    async (_, windowed) => {
      const store = await open(make);
      await commitMessages(store, numbered(12));
      let recordsLeft = 1;
      // The first refill write fails: the messages already in flight are still recorded.
      const flaky = new Proxy(store, {
        get(target, name) {
          const value = Reflect.get(target, name);
          if (typeof value !== "function") return value;
          if (name === "fetchAndLock" || name === "recordAndFetch") {
            return async (...args: unknown[]) => {
              if (name === "recordAndFetch" && recordsLeft-- === 1) {
                throw new StoreError("database is locked", { retryable: true });
              }
              return value.apply(target, args);
            };
          }
          return value.bind(target);
        },
      });
      const planned = plannedSender(4, () => ({ delayMs: 5, mark: (x) => x.markAsSent() }));
      const sender: Sender = windowed ? planned.sender : { send: planned.sender.send };
      const outbox = new Outbox(flaky, sender, { batchSize: 4, leaseDuration: 1200, sendTimeout: 200 });
      await expect(outbox.tick()).rejects.toBeInstanceOf(StoreError);
      expect(recordsLeft).toBe(0);
      // Whatever the failed write dropped comes back when its lease ends; then all are delivered.
      await new Promise((resolve) => setTimeout(resolve, 1250));
      for (let i = 0; i < 10 && (await store.stats()).pending > 0; i++) await outbox.tick();
      expect(await store.stats()).toMatchObject({ pending: 0, inFlight: 0, dead: 0 });
      expect(new Set(planned.log.map((l) => l.text)).size).toBe(12);
      // The outcomes of the failed write were stored by the plain marks: no message came back.
      expect(planned.log).toHaveLength(12);
    },
  );
});

describe("Sender.window validation", () => {
  it.each([0, -1, 1.5, Number.NaN, 10_001, "8"])("refuses window %s", async (window) => {
    const { MemoryStore } = await import("../adapters/memory.ts");
    const sender = { window, send: async (m: Message[]) => m } as unknown as Sender;
    expect(() => new Outbox(new MemoryStore(), sender)).toThrow(ValidationError);
  });

  it("refuses a lease that cannot cover a wait for a slot, a send and its grouped write", async () => {
    const { MemoryStore } = await import("../adapters/memory.ts");
    const sender: Sender = { window: 2, send: async (m) => m };
    const options: OutboxOptions = { sendTimeout: 1000, leaseDuration: 1999 };
    expect(() => new Outbox(new MemoryStore(), sender, options)).toThrow(
      /leaseDuration must be at least sendTimeout \+ 1000 ms \(2000 ms\) with the sender's window \(Sender.window; httpSender's concurrency\)/,
    );
    expect(() => new Outbox(new MemoryStore(), { send: sender.send }, options)).not.toThrow();
    expect(() => new Outbox(new MemoryStore(), sender, { ...options, leaseDuration: 2000 })).not.toThrow();
  });
});

describe("the default log", () => {
  it("names no message failed with attempted: false, and writes no empty line", async () => {
    const { failedBatchLine } = await import("../src/report.ts");
    const { createMessage } = await import("../mod.ts");
    const record = (id: string) => ({
      id,
      key: "k",
      value: new Uint8Array(),
      headers: {},
      timestamp: new Date(0),
      retries: 0,
    });
    const deferred = createMessage(record("a"));
    deferred.markAsFailed({ attempted: false, error: "circuit open" });
    const failed = createMessage(record("b"));
    failed.markAsFailed({ error: "HTTP 503" });
    expect(failedBatchLine([deferred])).toBe("");
    expect(failedBatchLine([deferred, failed])).toBe(
      "delivery failed for 1 of 2 message(s) (1 will be retried, 0 dead): b: HTTP 503",
    );
    const lines: unknown[][] = [];
    const original = console.error;
    console.error = (...parts: unknown[]) => lines.push(parts);
    try {
      const store = new (await import("../adapters/memory.ts")).MemoryStore();
      await commitMessages(store as unknown as AnyStore, numbered(2));
      const sender: Sender = {
        window: 2,
        async send(messages) {
          for (const m of messages) m.markAsFailed({ attempted: false });
          return messages;
        },
      };
      expect(await new Outbox(store, sender).tick()).toMatchObject({ batches: 1, failed: 0 });
    } finally {
      console.error = original;
    }
    expect(lines).toEqual([]);
  });
});
