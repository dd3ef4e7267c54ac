/**
 * A windowed relay on a store without `release` whose claims come back late: what it claimed
 * (only what its free slots start at once) is sent, as a batch pass sends its claim. Giving it
 * back instead would leave the rows to wait out their lease and the next claim would charge an
 * attempt for a send that never happened, until the messages died unsent. The same holds for a
 * claim that lands after the drain's signal aborted: sent, not given back to wait out its lease.
 */
import { describe, expect, it } from "vitest";
import { MemoryStore, type MemoryTransaction } from "../adapters/memory.ts";
import { type Message, Outbox, type Sender, type TransactionalStore } from "../mod.ts";

/** MemoryStore without `release`, whose claims answer `delay` ms after they took the rows. */
function slowClaimsWithoutRelease(store: MemoryStore, delay: number): TransactionalStore<MemoryTransaction> {
  const late = <T>(value: T) => new Promise<T>((resolve) => setTimeout(() => resolve(value), delay));
  return {
    addMessage: (tx, message) => store.addMessage(tx, message),
    withTransaction: (fn) => store.withTransaction(fn),
    fetchAndLock: async (options) => late(await store.fetchAndLock(options)),
    recordAndFetch: async (outcome, next) => late(await store.recordAndFetch(outcome, next)),
    updateRetryCount: (token, updates) => store.updateRetryCount(token, updates),
    markAsDead: (token, updates) => store.markAsDead(token, updates),
    markAsSent: (token, ids) => store.markAsSent(token, ids),
    stats: () => store.stats(),
    listDead: (options) => store.listDead(options),
    requeueDead: (ids) => store.requeueDead(ids),
  };
}

/**
 * A MemoryStore holding `count` committed messages (keys k0, k1, ...) and a window-4 sender that
 * notes each key it delivers and, as fetch does, fails a send whose signal has aborted.
 */
async function committedForWindow(count: number) {
  const memory = new MemoryStore();
  const given: string[] = [];
  const sender: Sender = {
    window: 4,
    async send(messages: Message[], signal: AbortSignal) {
      signal.throwIfAborted();
      for (const m of messages) {
        given.push(m.key);
        m.markAsSent();
      }
      return messages;
    },
  };
  await memory.transaction(async (tx) => {
    const writer = new Outbox(memory, sender);
    for (let i = 0; i < count; i++) await writer.addMessage(tx, { key: `k${i}`, value: `m${i}` });
  });
  return { memory, given, sender };
}

describe("send window: a store without release, claims slower than the recording margin", () => {
  it("sends what it claimed instead of charging attempts for sends that never happened", async () => {
    const { memory, given, sender } = await committedForWindow(5);
    // The minimum lease a windowed sender may have: sendTimeout + 1000; each claim takes 600 ms.
    const outbox = new Outbox(slowClaimsWithoutRelease(memory, 600), sender, {
      batchSize: 5,
      sendTimeout: 500,
      leaseDuration: 1500,
      maxRetries: 1,
    });
    let sent = 0;
    for (let round = 0; round < 10 && sent < 5; round++) sent += (await outbox.tick({ budgetMs: 3000 })).sent;
    expect(sent).toBe(5);
    expect(given.sort()).toEqual(["k0", "k1", "k2", "k3", "k4"]);
    expect(await memory.listDead()).toEqual([]);
    expect(await memory.stats()).toMatchObject({ pending: 0, inFlight: 0, dead: 0 });
  }, 60_000);

  it.each([
    ["with a long lease", 60_000, 1000, 300],
    // 600 ms of the minimum lease (sendTimeout + 1000) spent claiming: less than sendTimeout
    // + WINDOW_RECORD_MARGIN_MS is left, which a store with `release` would give back.
    ["with less lease left than a send and its write need", 1500, 500, 600],
  ])(
    "a claim that lands after the signal aborted, %s, is still sent and recorded, no attempt spent",
    async (_, leaseDuration, sendTimeout, claimMs) => {
      const { memory, given, sender } = await committedForWindow(3);
      // Each claim answers claimMs after it took the rows; the signal aborts 50 ms into the first.
      const outbox = new Outbox(slowClaimsWithoutRelease(memory, claimMs), sender, {
        batchSize: 10,
        sendTimeout,
        leaseDuration,
        maxRetries: 0,
      });
      const controller = new AbortController();
      setTimeout(() => controller.abort(), 50);
      const result = await outbox.tick({ signal: controller.signal });
      // Giving them back (no release) would leave them leased until the lease ends, then charge
      // an attempt; sending them under the aborted signal would fail them (and maxRetries 0 kills).
      expect(result).toMatchObject({ batches: 1, sent: 3, failed: 0, dead: 0 });
      expect(given.sort()).toEqual(["k0", "k1", "k2"]);
      expect(await memory.stats()).toMatchObject({ pending: 0, inFlight: 0, dead: 0 });
    },
    30_000,
  );
});
