/**
 * The window's local queue of claimed messages (MemoryStore, in process): a claim queued behind
 * another whose lease ends first goes back unsent as soon as it can no longer start, not when
 * the queue reaches it; more than a thousand messages pass through a queue topped up before it
 * runs dry (its compaction), each delivered once; a drain that ends with a full queue, and a
 * store error, give the queue back unsent and record what was in flight; a claimed message past
 * its retries dies unsent.
 */
import { describe, expect, it } from "vitest";
import { MemoryStore } from "../adapters/memory.ts";
import { type Claim, type ClaimOptions, type Message, Outbox, type Sender, StoreError } from "../mod.ts";
import { WINDOW_RECORD_MARGIN_MS } from "../src/window.ts";
import { commitMessages } from "./conformance/store-conformance.ts";
import { type AnyStore, throwingMethod } from "./support/stores.ts";

const numbered = (n: number) => Array.from({ length: n }, (_, i) => ({ key: `k${i}`, value: `m${i}` }));
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A claim as the store saw it: when it was asked for, when it answered, the lease asked. */
interface SeenClaim {
  calledAt: number;
  answeredAt: number;
  lease: number;
}

/** A release of unsent messages: when, and the claim it gave back. */
interface SeenRelease {
  at: number;
  token: string;
  ids: readonly string[];
}

/**
 * A MemoryStore that notes every claim that found messages and every release; `claimDelay(n)`
 * holds the n-th claim call (from 0) that long before it runs.
 */
function watchedStore(claimDelay: (call: number) => number = () => 0) {
  const store = new MemoryStore();
  const claims = new Map<string, SeenClaim>();
  const releases: SeenRelease[] = [];
  let calls = 0;
  const noted = async (options: ClaimOptions, run: () => Promise<Claim>): Promise<Claim> => {
    const calledAt = performance.now();
    const delay = claimDelay(calls++);
    if (delay > 0) await sleep(delay);
    const claim = await run();
    if (claim.messages.length > 0) {
      claims.set(claim.token, { calledAt, answeredAt: performance.now(), lease: options.leaseDuration });
    }
    return claim;
  };
  const watched = new Proxy(store, {
    get(target, name) {
      const value = Reflect.get(target, name);
      if (typeof value !== "function") return value;
      if (name === "fetchAndLock") {
        return (options: ClaimOptions) => noted(options, () => target.fetchAndLock(options));
      }
      if (name === "recordAndFetch") {
        return async (outcome: Parameters<MemoryStore["recordAndFetch"]>[0], next: ClaimOptions) => {
          let result!: Awaited<ReturnType<MemoryStore["recordAndFetch"]>>;
          await noted(next, async () => {
            result = await target.recordAndFetch(outcome, next);
            return result.claim;
          });
          return result;
        };
      }
      if (name === "release") {
        return (token: string, ids: readonly string[], delay?: number) => {
          releases.push({ at: performance.now(), token, ids: [...ids] });
          return target.release(token, ids, delay);
        };
      }
      return value.bind(target);
    },
  });
  return { store: watched as unknown as AnyStore, memory: store, claims, releases };
}

/** A window sender taking `sendMs` per message, counting each message's deliveries. */
function timedSender(window: number, sendMs: number) {
  const deliveries = new Map<string, number>();
  const retriesSeen = new Set<number>();
  const sender: Sender = {
    window,
    async send([m]: Message[]) {
      await sleep(sendMs);
      deliveries.set(m!.text(), (deliveries.get(m!.text()) ?? 0) + 1);
      retriesSeen.add(m!.retries);
      m!.markAsSent();
      return [m!];
    },
  };
  return { sender, deliveries, retriesSeen };
}

describe("the send window's queue", () => {
  it("a claim queued behind another whose lease ends later goes back as soon as it can no longer start", {
    timeout: 30_000,
  }, async () => {
    const sendTimeout = 1000;
    const leaseDuration = 2000;
    // The first claim takes 1.1 s: its messages can no longer start and go back, and the next
    // claim asks for a longer lease (3.5 s); the one after it, made soon after, for a shorter
    // one (2.6 s). So the second claim's messages, queued behind the first's, run out of time
    // first while the first's are still being sent one by one.
    const { store, claims, releases } = watchedStore((call) => (call === 0 ? 1100 : 0));
    await commitMessages(store, numbered(150));
    const { sender, deliveries, retriesSeen } = timedSender(1, 40);
    const errors: unknown[] = [];
    const outbox = new Outbox(store, sender, {
      batchSize: 50,
      sendTimeout,
      leaseDuration,
      backoff: { initialDelay: 0, maxDelay: 0 },
      onError: (error) => errors.push(error),
    });
    for (let round = 0; round < 20 && (await store.stats()).pending > 0; round++) {
      await outbox.tick({ budgetMs: 10_000 });
    }
    expect(errors).toEqual([]);
    expect(deliveries.size).toBe(150);
    expect([...deliveries.values()].every((count) => count === 1)).toBe(true);
    // Given back unsent, never charged.
    expect([...retriesSeen]).toEqual([0]);
    // The leases shrank back after the slow claim, so a later claim's lease ended first.
    const leases = [...claims.values()].map((claim) => claim.lease);
    expect(leases.slice(0, 2)).toEqual([leaseDuration, 3500]);
    expect(leases[2]).toBeLessThan(3500);
    // Every give-back came once its claim could no longer start a message (or at once, for a
    // claim that came back too late), not when the queue reached it: the second claim's
    // messages are back about 0.75 s before the first's would have made way for them.
    const startBefore = sendTimeout + WINDOW_RECORD_MARGIN_MS;
    expect(releases.length).toBeGreaterThanOrEqual(3);
    for (const release of releases) {
      const claim = claims.get(release.token)!;
      const late = Math.max(claim.answeredAt, claim.calledAt + claim.lease - startBefore);
      expect(release.at - late).toBeLessThan(400);
      // And never before: a message with time left to start is not given back. The relay reads
      // its clock a little before the call reaches this store (a few ms on a loaded machine),
      // so its deadline may come that much earlier than `late`; a give-back that counted the
      // margin twice would come 500 ms early.
      expect(release.at).toBeGreaterThanOrEqual(late - 50);
    }
  });

  it("with every slot hung, each queued claim goes back at its own deadline, the later one too", {
    timeout: 30_000,
  }, async () => {
    const sendTimeout = 2000;
    const leaseDuration = 3000;
    const { store, claims, releases } = watchedStore();
    await commitMessages(store, numbered(6));
    const startedAt = new Map<string, number>();
    // One slot: m0 takes 300 ms, m1 hangs until its sendTimeout, the rest are quick.
    const sender: Sender = {
      window: 1,
      async send([m]: Message[], signal: AbortSignal) {
        startedAt.set(m!.text(), performance.now());
        if (m!.text() === "m0") await sleep(300);
        if (m!.text() === "m1") {
          await new Promise((resolve) => signal.addEventListener("abort", resolve, { once: true }));
          signal.throwIfAborted();
        }
        m!.markAsSent();
        return [m!];
      },
    };
    const outbox = new Outbox(store, sender, {
      batchSize: 3,
      sendTimeout,
      leaseDuration,
      backoff: { initialDelay: 60_000, maxDelay: 60_000 },
    });
    // Claim A (m0-m2): m0 goes out, then m1, which hangs; m2 waits. A's first write (m0 sent,
    // at about 400 ms) claims B (m3-m5) behind m2. A's lease ends first: m2 goes back at A's
    // deadline (500 ms), B's three at B's (900 ms, with no write or claim between to wake the
    // relay), long before m1's send times out and frees the slot (2300 ms).
    const result = await outbox.tick({ budgetMs: 10_000 });
    const startBefore = sendTimeout + WINDOW_RECORD_MARGIN_MS;
    const [a, b] = [...claims.values()];
    const lateOf = (claim: SeenClaim) => claim.calledAt + claim.lease - startBefore;
    expect(claims.size).toBeGreaterThanOrEqual(2);
    const [releaseA, releaseB] = releases;
    expect(releaseA?.at).toBeGreaterThanOrEqual(lateOf(a!) - 50);
    expect(releaseA!.at - lateOf(a!)).toBeLessThan(400);
    expect(releaseB?.ids).toHaveLength(3);
    expect(releaseB!.at).toBeGreaterThanOrEqual(lateOf(b!) - 50);
    expect(releaseB!.at - lateOf(b!)).toBeLessThan(400);
    // Both well before the hung send freed the slot.
    expect(releaseB!.at).toBeLessThan(startedAt.get("m1")! + sendTimeout - 500);
    // Then the slot freed: the five others are delivered, m1 failed once (it was attempted).
    expect(result).toMatchObject({ sent: 5, failed: 1, dead: 0 });
  });

  it("more than a thousand messages through a queue topped up before it runs dry: each delivered once, none given back", {
    timeout: 60_000,
  }, async () => {
    const { store, claims, releases } = watchedStore();
    await commitMessages(store, numbered(1600));
    // Sends slow enough that a claim of 100 is still queued when its first outcomes are
    // written (every 100 ms), which claims the next 100: the queue is topped up before it runs dry (past the first claim).
    const { sender, deliveries, retriesSeen } = timedSender(4, 3);
    const outbox = new Outbox(store, sender, {
      batchSize: 100,
      sendTimeout: 5000,
      leaseDuration: 60_000,
      backoff: { initialDelay: 0, maxDelay: 0 },
    });
    const result = await outbox.tick();
    expect(result).toMatchObject({ sent: 1600, failed: 0, dead: 0 });
    expect(deliveries.size).toBe(1600);
    expect([...deliveries.values()].every((count) => count === 1)).toBe(true);
    expect([...retriesSeen]).toEqual([0]);
    expect(releases).toEqual([]);
    expect(claims.size).toBe(16);
    expect(await store.stats()).toMatchObject({ pending: 0, inFlight: 0 });
  });

  it("a drain ending with a full queue gives the queue back unsent and records what was in flight", {
    timeout: 30_000,
  }, async () => {
    const { store, releases, memory } = watchedStore();
    await commitMessages(store, numbered(60));
    const { sender, deliveries, retriesSeen } = timedSender(2, 50);
    const outbox = new Outbox(store, sender, {
      batchSize: 30,
      sendTimeout: 1000,
      leaseDuration: 60_000,
    });
    const result = await outbox.tick({ budgetMs: 300 });
    // Only what was in flight when the budget ran out was sent, and it was all recorded.
    expect(result.sent).toBe(deliveries.size);
    expect(result.sent).toBeGreaterThan(0);
    expect(result.sent).toBeLessThan(30);
    expect(result.failed).toBe(0);
    const stats = await memory.stats();
    // The rest are back at once (no lease left to wait out), none charged an attempt.
    expect(stats).toMatchObject({ pending: 60 - result.sent, inFlight: 0 });
    const given = releases.flatMap((r) => r.ids);
    expect(given.length).toBeGreaterThanOrEqual(30 - result.sent);
    expect(new Set(given).size).toBe(given.length);
    const rest = await store.fetchAndLock({ batchSize: 100, leaseDuration: 1000, ordering: "none" });
    expect(rest.messages).toHaveLength(60 - result.sent);
    expect(rest.messages.every((m) => m.retries === 0)).toBe(true);
    expect([...retriesSeen]).toEqual([0]);
  });

  it("a store error stops the queue: what was queued goes back unsent, only what was in flight is sent", {
    timeout: 30_000,
  }, async () => {
    const { store, memory } = watchedStore();
    await commitMessages(store, numbered(10));
    // The first write of outcomes (with the next claim) fails; releases still work.
    const failing = throwingMethod(
      store,
      "recordAndFetch",
      () => new StoreError("disk I/O error", { retryable: false }),
    );
    // 20 ms a message through a window of 1: the write, 100 ms after the first outcome, comes
    // with messages still queued.
    const { sender, deliveries } = timedSender(1, 20);
    const outbox = new Outbox(failing, sender, { batchSize: 10, sendTimeout: 1000, leaseDuration: 60_000 });
    await expect(outbox.tick()).rejects.toThrow("disk I/O error");
    expect(deliveries.size).toBeGreaterThan(0);
    expect(deliveries.size).toBeLessThan(10);
    // The unsent are back at once, none charged; the sent are recorded with plain marks.
    expect(await memory.stats()).toMatchObject({ pending: 10 - deliveries.size, inFlight: 0 });
    const rest = await store.fetchAndLock({ batchSize: 100, leaseDuration: 1000, ordering: "none" });
    expect(rest.messages.map((m) => m.text()).sort()).toEqual(
      numbered(10)
        .map((m) => m.value)
        .filter((value) => !deliveries.has(value))
        .sort(),
    );
    expect(rest.messages.every((m) => m.retries === 0)).toBe(true);
  });

  it("a claimed message past its retries dies without a send, and its claim counts as a batch", async () => {
    const { store, memory } = watchedStore();
    await commitMessages(store, numbered(1));
    // m0's lease runs out unrecorded (a crashed relay): claimed again, that is its second attempt.
    await store.fetchAndLock({ batchSize: 1, leaseDuration: 1, ordering: "none" });
    await sleep(20);
    const { sender, deliveries } = timedSender(2, 0);
    const outbox = new Outbox(store, sender, { batchSize: 10, maxRetries: 0 });
    // A claim of nothing but a message that dies unsent is still a batch, as in a batch pass.
    expect(await outbox.tick()).toMatchObject({ batches: 1, sent: 0, failed: 0, dead: 1 });
    expect(deliveries.size).toBe(0);
    expect(await memory.stats()).toMatchObject({ pending: 0, inFlight: 0, dead: 1 });
    const [dead] = await memory.listDead();
    expect(dead?.text()).toBe("m0");
  });
});
