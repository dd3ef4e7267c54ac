/**
 * The store conformance suite: every semantic rule of DESIGN.md that a store must keep, as one
 * function any store's test file calls with a factory. MemoryStore and LibsqlStore both run it.
 */
import { afterEach, describe, expect, it } from "vitest";
import {
  type ClaimOptions,
  type Message,
  type NewMessage,
  prepareMessage,
  SendStatus,
  type TransactionalStore,
} from "../../mod.ts";
import { describeReleaseConformance } from "./release.ts";

/** What a store's test file provides: a fresh, empty store per test. */
export interface StoreFixture<T> {
  store: TransactionalStore<T>;
  close?: () => Promise<void>;
}

const claimDefaults: ClaimOptions = { batchSize: 10, leaseDuration: 30_000, ordering: "none" };
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Adds messages in one committed transaction, in order, with distinct timestamps. */
export async function commitMessages<T>(
  store: TransactionalStore<T>,
  messages: NewMessage[],
  start = Date.now() - messages.length,
): Promise<void> {
  await store.withTransaction(async (tx) => {
    let i = 0;
    for (const message of messages) {
      await store.addMessage(
        tx,
        prepareMessage(message, { maxMessageBytes: 1 << 20, now: new Date(start + i++) }),
      );
    }
  });
}

function keys(messages: readonly Message[]): string[] {
  return messages.map((m) => m.key);
}

/**
 * How long a store's test may take, for stores behind a slower round trip (D1 in Miniflare: each
 * call crosses into workerd). The defaults are every local store's.
 */
export interface ConformanceTiming {
  /**
   * Multiplies the short lease and retry delay (400 ms) and the waits for them to pass
   * (450 ms): the window in which a test checks that a message is NOT claimable must outlast
   * the store's round trips on a loaded machine. Default 1.
   */
  scale?: number;
  /** Per-test timeout in ms; default vitest's. */
  testTimeout?: number;
}

/** Runs the conformance suite against fresh stores from `makeStore`. */
export function describeStoreConformance<T>(
  name: string,
  makeStore: () => Promise<StoreFixture<T>>,
  timing: ConformanceTiming = {},
): void {
  const scale = timing.scale ?? 1;
  // A lease or delay that must still hold while the test checks; and a wait past it.
  const window = 400 * scale;
  const pastWindow = 450 * scale;
  const options = timing.testTimeout === undefined ? {} : { timeout: timing.testTimeout };
  describe(`${name}: store conformance`, options, () => {
    let fixture: StoreFixture<T> | undefined;
    const open = async () => {
      fixture = await makeStore();
      return fixture.store;
    };
    afterEach(async () => {
      await fixture?.close?.();
      fixture = undefined;
    });

    it("keeps a committed message exactly: key, bytes, headers, timestamp, exact string id", async () => {
      const store = await open();
      const bytes = new Uint8Array([0, 1, 2, 255, 254, 0, 10, 13]);
      const at = new Date("2026-01-02T03:04:05.678Z");
      await store.withTransaction(async (tx) => {
        await store.addMessage(tx, {
          key: "k:1",
          value: bytes,
          headers: { "content-type": "application/octet-stream", traceparent: "00-abc" },
          timestamp: at,
        });
      });
      const { messages, token } = await store.fetchAndLock(claimDefaults);
      expect(token).toEqual(expect.any(String));
      expect(messages).toHaveLength(1);
      const m = messages[0]!;
      // Public ids are msg_<namespace>_<row> (src/ids.ts), unique beyond one outbox.
      expect(m.id).toMatch(/^msg_[0-9a-z]{16}_[1-9][0-9]*$/);
      expect(m.key).toBe("k:1");
      expect(Array.from(m.value)).toEqual(Array.from(bytes));
      expect(m.headers).toEqual({ "content-type": "application/octet-stream", traceparent: "00-abc" });
      expect(m.timestamp.toISOString()).toBe(at.toISOString());
      expect(m.retries).toBe(0);
      expect(m.status).toBe(SendStatus.None);
    });

    it("never shows a message whose transaction rolled back, and rethrows the error", async () => {
      const store = await open();
      const boom = new Error("business rule failed");
      await expect(
        store.withTransaction(async (tx) => {
          await store.addMessage(tx, prepareMessage({ key: "a", value: "x" }, { maxMessageBytes: 100 }));
          throw boom;
        }),
      ).rejects.toBe(boom);
      expect((await store.fetchAndLock(claimDefaults)).messages).toEqual([]);
      expect(await store.stats()).toEqual({ pending: 0, inFlight: 0, dead: 0, oldestPendingAt: null });
    });

    it("claims oldest first and at most batchSize", async () => {
      const store = await open();
      await commitMessages(
        store,
        ["a", "b", "c", "d", "e"].map((key) => ({ key, value: key })),
      );
      const first = await store.fetchAndLock({ ...claimDefaults, batchSize: 3 });
      expect(keys(first.messages)).toEqual(["a", "b", "c"]);
      const second = await store.fetchAndLock({ ...claimDefaults, batchSize: 3 });
      expect(keys(second.messages)).toEqual(["d", "e"]);
      expect(new Set([...first.messages, ...second.messages].map((m) => m.id)).size).toBe(5);
      expect((await store.fetchAndLock(claimDefaults)).messages).toEqual([]);
    });

    it("gives concurrent claims disjoint messages", async () => {
      const store = await open();
      await commitMessages(
        store,
        Array.from({ length: 40 }, (_, i) => ({ key: `k${i}`, value: String(i) })),
      );
      const claims = await Promise.all(
        Array.from({ length: 8 }, () => store.fetchAndLock({ ...claimDefaults, batchSize: 7 })),
      );
      const ids = claims.flatMap((c) => c.messages.map((m) => m.id));
      expect(ids).toHaveLength(40);
      expect(new Set(ids).size).toBe(40);
      expect(new Set(claims.map((c) => c.token)).size).toBe(8);
    });

    it("never claims a sent message again and drops it from the stats", async () => {
      const store = await open();
      await commitMessages(store, [{ key: "a", value: "1" }]);
      const claim = await store.fetchAndLock(claimDefaults);
      expect(
        await store.markAsSent(
          claim.token,
          claim.messages.map((m) => m.id),
        ),
      ).toBe(1);
      expect((await store.fetchAndLock({ ...claimDefaults, leaseDuration: 1 })).messages).toEqual([]);
      await sleep(5);
      expect((await store.fetchAndLock(claimDefaults)).messages).toEqual([]);
      expect(await store.stats()).toEqual({ pending: 0, inFlight: 0, dead: 0, oldestPendingAt: null });
    });

    it("reclaims after the lease expires, counts the lost attempt, and ignores the stale holder", async () => {
      const store = await open();
      await commitMessages(store, [{ key: "a", value: "1" }]);
      // Leases long enough that a slow fsync on a loaded machine cannot end one early.
      const stale = await store.fetchAndLock({ ...claimDefaults, leaseDuration: window });
      expect((await store.fetchAndLock(claimDefaults)).messages).toEqual([]);
      await sleep(pastWindow);
      const fresh = await store.fetchAndLock(claimDefaults);
      expect(fresh.messages.map((m) => m.id)).toEqual(stale.messages.map((m) => m.id));
      expect(fresh.messages[0]!.retries).toBe(1);
      expect(fresh.token).not.toBe(stale.token);

      const id = fresh.messages[0]!.id;
      expect(await store.markAsSent(stale.token, [id])).toBe(0);
      expect(await store.markAsDead(stale.token, [{ id, error: "stale" }])).toBe(0);
      expect(await store.updateRetryCount(stale.token, [{ id, availableAt: new Date(), delay: 0 }])).toBe(0);
      expect((await store.stats()).inFlight).toBe(1);
      expect(await store.markAsSent(fresh.token, [id])).toBe(1);
      expect((await store.stats()).inFlight).toBe(0);
    });

    it("retries a failed message only after its availableAt, with retries + 1 and the error kept", async () => {
      const store = await open();
      await commitMessages(store, [{ key: "a", value: "1" }]);
      const claim = await store.fetchAndLock(claimDefaults);
      const id = claim.messages[0]!.id;
      const availableAt = new Date(Date.now() + window);
      expect(
        await store.updateRetryCount(claim.token, [{ id, availableAt, delay: window, error: "HTTP 503" }]),
      ).toBe(1);
      expect((await store.fetchAndLock(claimDefaults)).messages).toEqual([]);
      expect(await store.stats()).toMatchObject({ pending: 1, inFlight: 0 });
      await sleep(pastWindow);
      const again = await store.fetchAndLock(claimDefaults);
      expect(again.messages).toHaveLength(1);
      expect(again.messages[0]!.retries).toBe(1);
      expect(again.messages[0]!.lastError).toBe("HTTP 503");
    });

    it("keeps dead messages queryable and requeues them (all, or by id)", async () => {
      const store = await open();
      await commitMessages(store, [
        { key: "a", value: "1" },
        { key: "b", value: "2" },
        { key: "c", value: "3" },
      ]);
      const claim = await store.fetchAndLock(claimDefaults);
      const [a, b, c] = claim.messages.map((m) => m.id);
      expect(
        await store.markAsDead(claim.token, [
          { id: a!, error: "HTTP 404" },
          { id: b!, error: "HTTP 410" },
          { id: c! },
        ]),
      ).toBe(3);
      expect(await store.stats()).toMatchObject({ pending: 0, inFlight: 0, dead: 3, oldestPendingAt: null });
      const dead = await store.listDead();
      expect(dead.map((m) => m.key)).toEqual(["a", "b", "c"]);
      expect(dead.map((m) => m.status)).toEqual([SendStatus.Dead, SendStatus.Dead, SendStatus.Dead]);
      expect(dead[0]!.lastError).toBe("HTTP 404");
      expect(await store.listDead({ limit: 2 })).toHaveLength(2);
      expect((await store.fetchAndLock(claimDefaults)).messages).toEqual([]);

      expect(await store.requeueDead([b!])).toBe(1);
      expect(await store.requeueDead(["999999"])).toBe(0);
      const requeued = await store.fetchAndLock(claimDefaults);
      expect(requeued.messages.map((m) => m.id)).toEqual([b]);
      expect(requeued.messages[0]!.retries).toBe(0);
      expect(await store.requeueDead()).toBe(2);
      expect((await store.stats()).dead).toBe(0);
    });

    it("reports pending, in-flight, dead and the oldest pending timestamp", async () => {
      const store = await open();
      const start = Date.parse("2026-03-01T00:00:00.000Z");
      await commitMessages(
        store,
        ["a", "b", "c", "d"].map((key) => ({ key, value: key })),
        start,
      );
      const claim = await store.fetchAndLock({ ...claimDefaults, batchSize: 2 });
      await store.markAsDead(claim.token, [{ id: claim.messages[1]!.id }]);
      const stats = await store.stats();
      expect(stats).toEqual({ pending: 2, inFlight: 1, dead: 1, oldestPendingAt: new Date(start) });
    });

    it('with ordering "key" never claims a message before an older one of its key is done', async () => {
      const store = await open();
      await commitMessages(store, [
        { key: "x", value: "x1" },
        { key: "y", value: "y1" },
        { key: "x", value: "x2" },
        { key: "x", value: "x3" },
        { key: "y", value: "y2" },
      ]);
      const keyed = { ...claimDefaults, ordering: "key" as const };
      const first = await store.fetchAndLock(keyed);
      expect(first.messages.map((m) => new TextDecoder().decode(m.value))).toEqual(["x1", "y1"]);
      // x1 and y1 in flight: their successors wait.
      expect((await store.fetchAndLock(keyed)).messages).toEqual([]);
      const [x1, y1] = first.messages;
      await store.markAsSent(first.token, [x1!.id]);
      // y1 failed and waits for its retry: y2 must keep waiting behind it.
      await store.updateRetryCount(first.token, [
        { id: y1!.id, availableAt: new Date(Date.now() + 60_000), delay: 60_000 },
      ]);
      const second = await store.fetchAndLock(keyed);
      expect(second.messages.map((m) => new TextDecoder().decode(m.value))).toEqual(["x2"]);
      await store.markAsDead(second.token, [{ id: second.messages[0]!.id }]);
      // A dead predecessor no longer blocks its key.
      const third = await store.fetchAndLock(keyed);
      expect(third.messages.map((m) => new TextDecoder().decode(m.value))).toEqual(["x3"]);
    });

    it('with ordering "none" claims later messages of a key while an older one is in flight', async () => {
      const store = await open();
      await commitMessages(store, [
        { key: "x", value: "x1" },
        { key: "x", value: "x2" },
      ]);
      const first = await store.fetchAndLock({ ...claimDefaults, batchSize: 1 });
      const second = await store.fetchAndLock({ ...claimDefaults, batchSize: 1 });
      expect(first.messages).toHaveLength(1);
      expect(second.messages).toHaveLength(1);
    });

    it("applies marks only to the given ids of the claim and counts what changed", async () => {
      const store = await open();
      await commitMessages(store, [
        { key: "a", value: "1" },
        { key: "b", value: "2" },
      ]);
      const claim = await store.fetchAndLock(claimDefaults);
      const [a, b] = claim.messages.map((m) => m.id);
      expect(await store.markAsSent(claim.token, [a!, "123456789"])).toBe(1);
      expect(await store.markAsSent(claim.token, [a!])).toBe(0);
      expect(await store.markAsSent("not-a-token", [b!])).toBe(0);
      expect(await store.markAsSent(claim.token, [])).toBe(0);
      expect((await store.stats()).inFlight).toBe(1);
    });

    it("recordAndFetch (if present) records and claims in one call, the claim seeing the outcome", async () => {
      const store = await open();
      if (store.recordAndFetch === undefined) return;
      await commitMessages(store, [
        { key: "a", value: "1" },
        { key: "b", value: "2" },
        { key: "c", value: "3" },
        { key: "d", value: "4" },
      ]);
      const first = await store.fetchAndLock({ ...claimDefaults, batchSize: 3 });
      const [a, b, c] = first.messages.map((m) => m.id);
      const result = await store.recordAndFetch(
        {
          token: first.token,
          sent: [a!],
          retry: [{ id: b!, availableAt: new Date(Date.now() + 60_000), delay: 60_000, error: "HTTP 503" }],
          dead: [{ id: c!, error: "HTTP 400" }],
        },
        claimDefaults,
      );
      expect(result.recorded).toEqual({ sent: 1, failed: 1, dead: 1 });
      expect(keys(result.claim.messages)).toEqual(["d"]);
      expect(result.claim.token).not.toBe(first.token);
      expect(await store.markAsSent(result.claim.token, [result.claim.messages[0]!.id])).toBe(1);
      expect(await store.stats()).toMatchObject({ pending: 1, inFlight: 0, dead: 1 });
      const empty = await store.recordAndFetch(
        { token: first.token, sent: [], retry: [], dead: [] },
        claimDefaults,
      );
      expect(empty).toMatchObject({ recorded: { sent: 0, failed: 0, dead: 0 }, claim: { messages: [] } });
    });

    it("recordAndFetch (if present): one claim recorded in several writes counts each message once", async () => {
      // The streaming window records a claim's messages as they finish, in several writes under
      // one token; the newest row delivered first must not count again in the later writes.
      const store = await open();
      if (store.recordAndFetch === undefined) return;
      await commitMessages(store, [
        { key: "a", value: "1" },
        { key: "b", value: "2" },
        { key: "c", value: "3" },
      ]);
      const claim = await store.fetchAndLock(claimDefaults);
      const [a, b, c] = claim.messages.map((m) => m.id);
      const nothing = { retry: [], dead: [] };
      const counts: number[] = [];
      for (const id of [c!, a!, b!]) {
        const result = await store.recordAndFetch(
          { token: claim.token, sent: [id], ...nothing },
          claimDefaults,
        );
        counts.push(result.recorded.sent);
      }
      expect(counts).toEqual([1, 1, 1]);
      expect(
        (await store.recordAndFetch({ token: claim.token, sent: [c!], ...nothing }, claimDefaults)).recorded,
      ).toEqual({ sent: 0, failed: 0, dead: 0 });
      expect(await store.stats()).toMatchObject({ pending: 0, inFlight: 0, dead: 0 });
    });

    it("recordAndFetch (if present) with a stale token records nothing but still claims", async () => {
      const store = await open();
      if (store.recordAndFetch === undefined) return;
      await commitMessages(store, [
        { key: "a", value: "1" },
        { key: "b", value: "2" },
      ]);
      const first = await store.fetchAndLock({ ...claimDefaults, batchSize: 1 });
      const id = first.messages[0]!.id;
      const result = await store.recordAndFetch(
        { token: "not-a-token", sent: [id], retry: [], dead: [{ id, error: "x" }] },
        claimDefaults,
      );
      expect(result.recorded).toEqual({ sent: 0, failed: 0, dead: 0 });
      expect(keys(result.claim.messages)).toEqual(["b"]);
      expect(await store.stats()).toMatchObject({ pending: 0, inFlight: 2, dead: 0 });
    });

    it('recordAndFetch (if present) with ordering "key" frees the next message of a key it records', async () => {
      const store = await open();
      if (store.recordAndFetch === undefined) return;
      await commitMessages(store, [
        { key: "x", value: "1" },
        { key: "x", value: "2" },
        { key: "x", value: "3" },
      ]);
      const keyed: ClaimOptions = { ...claimDefaults, ordering: "key" };
      const first = await store.fetchAndLock(keyed);
      expect(first.messages.map((m) => m.value[0])).toEqual([49]);
      const result = await store.recordAndFetch(
        { token: first.token, sent: [first.messages[0]!.id], retry: [], dead: [] },
        keyed,
      );
      expect(result.recorded.sent).toBe(1);
      expect(result.claim.messages.map((m) => m.value[0])).toEqual([50]);
    });

    it("delivers each of many messages exactly once to racing claimers", async () => {
      const store = await open();
      const total = 300;
      await commitMessages(
        store,
        Array.from({ length: total }, (_, i) => ({ key: `k${i % 7}`, value: String(i) })),
      );
      const seen: string[] = [];
      const worker = async () => {
        for (let pass = 0; pass < total; pass++) {
          const claim = await store.fetchAndLock({ ...claimDefaults, batchSize: 9 });
          if (claim.messages.length === 0) return;
          seen.push(...claim.messages.map((m) => m.id));
          await store.markAsSent(
            claim.token,
            claim.messages.map((m) => m.id),
          );
        }
      };
      await Promise.all([worker(), worker(), worker(), worker()]);
      expect(seen).toHaveLength(total);
      expect(new Set(seen).size).toBe(total);
      expect((await store.stats()).pending).toBe(0);
    });
  });
  describeReleaseConformance(name, makeStore);
}
