/**
 * What a caller reads off a tick and `onError` that the relay family's older suites left open
 * (written against its surviving mutants): a tick's `durationMs` is its own wall time, and a
 * store without `release` records a message the sender did not attempt as a failed attempt
 * without reporting any error.
 */
import { describe, expect, it } from "vitest";
import { MemoryStore } from "../adapters/memory.ts";
import { type Message, Outbox, type OutboxOptions, type Sender } from "../mod.ts";
import { gate } from "./support/senders.ts";

function setup(sender: Sender, options: OutboxOptions = {}, store: MemoryStore = new MemoryStore()) {
  const errors: unknown[] = [];
  const outbox = new Outbox(store, sender, { onError: (e) => errors.push(e), ...options }) as Outbox<unknown>;
  const seed = (count: number) =>
    store.transaction(async (tx) => {
      for (let i = 0; i < count; i++) await outbox.addMessage(tx, { key: `k${i}`, value: `v${i}` });
    });
  return { store, outbox, errors, seed };
}

const delivering = (window?: number): Sender => ({
  ...(window === undefined ? {} : { window }),
  async send(messages: Message[]) {
    await new Promise((resolve) => setTimeout(resolve, 5));
    for (const m of messages) m.markAsSent();
    return messages;
  },
});

/** The wall time of `run`, around it, in ms. */
async function timed<T>(run: () => Promise<T>): Promise<{ value: T; wall: number }> {
  const before = performance.now();
  const value = await run();
  return { value, wall: performance.now() - before };
}

describe("a tick's durationMs", () => {
  it("is the batch drain's own wall time", async () => {
    const { outbox, seed } = setup(delivering(), { batchSize: 2 });
    await seed(4);
    const { value, wall } = await timed(() => outbox.tick());
    expect(value).toMatchObject({ batches: 2, sent: 4 });
    expect(value.durationMs).toBeGreaterThanOrEqual(8);
    expect(value.durationMs).toBeLessThanOrEqual(wall);
  });

  it("is the window's own wall time", async () => {
    const { outbox, seed } = setup(delivering(2), { batchSize: 2 });
    await seed(4);
    const { value, wall } = await timed(() => outbox.tick());
    expect(value).toMatchObject({ sent: 4 });
    expect(value.durationMs).toBeGreaterThanOrEqual(4);
    expect(value.durationMs).toBeLessThanOrEqual(wall);
  });

  it("of a tick that gave up waiting behind a running drain counts only that wait", async () => {
    const held = gate();
    const sender: Sender = {
      async send(messages) {
        await held.promise;
        for (const m of messages) m.markAsSent();
        return messages;
      },
    };
    const { outbox, seed } = setup(sender);
    await seed(1);
    const first = outbox.tick();
    const { value, wall } = await timed(() => outbox.tick({ budgetMs: 20 }));
    expect(value).toMatchObject({ batches: 0, sent: 0 });
    // Timers may fire up to a millisecond early against performance.now(): slack, not a bound.
    expect(value.durationMs).toBeGreaterThanOrEqual(15);
    expect(value.durationMs).toBeLessThanOrEqual(wall);
    held.open();
    expect(await first).toMatchObject({ sent: 1 });
  });
});

describe("a message the sender did not attempt, on a store without release", () => {
  it("is recorded as a failed attempt with no error reported", async () => {
    const memory = new MemoryStore();
    // The same store with no `release` method: the relay must not try to call it.
    const withoutRelease = new Proxy(memory, {
      get: (target, name) => {
        if (name === "release") return undefined;
        const value = Reflect.get(target, name);
        return typeof value === "function" ? value.bind(target) : value;
      },
    });
    const sender: Sender = {
      async send(messages) {
        for (const m of messages) m.markAsFailed({ attempted: false, error: "circuit open" });
        return messages;
      },
    };
    const errors: unknown[] = [];
    const outbox = new Outbox(withoutRelease, sender, { onError: (e) => errors.push(e) });
    await memory.transaction(async (tx) => {
      await outbox.addMessage(tx, { key: "a", value: "1" });
      await outbox.addMessage(tx, { key: "b", value: "2" });
    });
    expect(await outbox.tick()).toMatchObject({ batches: 1, sent: 0, failed: 2, dead: 0 });
    expect(errors).toEqual([]);
    expect(await memory.stats()).toMatchObject({ pending: 2, inFlight: 0 });
  });
});

describe("a release that fails for one delay", () => {
  // Both ways of recording the outcome: with the next claim (recordAndFetch) and with plain marks.
  it.each([
    ["a store with recordAndFetch", true],
    ["a store without recordAndFetch", false],
  ])(
    "records only that delay's messages as failed attempts; the others are released (%s)",
    async (_, combined) => {
      const memory = new MemoryStore();
      // `release` fails for the 200 ms group only.
      const store = new Proxy(memory, {
        get: (target, name) => {
          if (name === "recordAndFetch" && !combined) return undefined;
          const value = Reflect.get(target, name);
          if (typeof value !== "function") return value;
          if (name !== "release") return value.bind(target);
          return (token: string, ids: readonly string[], delay?: number) =>
            delay === 200 ? Promise.reject(new Error("release down")) : value.call(target, token, ids, delay);
        },
      });
      const sender: Sender = {
        async send(messages) {
          for (const m of messages)
            m.markAsFailed({ attempted: false, retryAfter: m.key === "a" ? 200 : 300 });
          return messages;
        },
      };
      const errors: unknown[] = [];
      const outbox = new Outbox(store, sender, { onError: (e) => errors.push(e) });
      await memory.transaction(async (tx) => {
        await outbox.addMessage(tx, { key: "a", value: "1" });
        await outbox.addMessage(tx, { key: "b", value: "2" });
      });
      // Only "a" is recorded as a failed attempt; "b" goes back with its attempts untouched.
      expect(await outbox.tick()).toMatchObject({ batches: 1, sent: 0, failed: 1, dead: 0 });
      expect(errors).toEqual([expect.objectContaining({ message: "release down" })]);
      await new Promise((resolve) => setTimeout(resolve, 350));
      const claim = await memory.fetchAndLock({ batchSize: 10, leaseDuration: 10_000, ordering: "none" });
      const retries = Object.fromEntries(claim.messages.map((m) => [m.key, m.retries]));
      expect(retries).toEqual({ a: 1, b: 0 });
    },
  );
});

describe("messages the sender did not attempt, with one delay", () => {
  it("all go back together, none held by the claim until its lease ends", async () => {
    const sender: Sender = {
      async send(messages) {
        for (const m of messages) m.markAsFailed({ attempted: false, retryAfter: 150 });
        return messages;
      },
    };
    const { outbox, store, seed, errors } = setup(sender, { leaseDuration: 60_000 });
    await seed(3);
    expect(await outbox.tick()).toMatchObject({ batches: 1, sent: 0, failed: 0, dead: 0 });
    expect(await store.stats()).toMatchObject({ pending: 3, inFlight: 0 });
    await new Promise((resolve) => setTimeout(resolve, 200));
    const claim = await store.fetchAndLock({ batchSize: 10, leaseDuration: 10_000, ordering: "none" });
    expect(claim.messages.map((m) => m.retries)).toEqual([0, 0, 0]);
    expect(errors).toEqual([]);
  });
});
