/**
 * The pipelined drain: with a store that has `recordAndFetch`, each pass records its outcome
 * and claims the next batch in one call. Same guarantees as separate marks and claims.
 */
import { describe, expect, it } from "vitest";
import { MemoryStore } from "../adapters/memory.ts";
import { type ClaimOptions, Outbox, type OutboxOptions, type PassOutcome, type Sender } from "../mod.ts";
import { gate, recordingSender } from "./support/senders.ts";

/** A MemoryStore that counts its write calls and runs `before` ahead of each recordAndFetch. */
class CountingStore extends MemoryStore {
  calls = { fetchAndLock: 0, recordAndFetch: 0, marks: 0 };
  #inner = false;
  before: (outcome: PassOutcome) => PassOutcome | Promise<PassOutcome> = (outcome) => outcome;

  override fetchAndLock(options: ClaimOptions) {
    if (!this.#inner) this.calls.fetchAndLock += 1;
    return super.fetchAndLock(options);
  }
  override async recordAndFetch(outcome: PassOutcome, next: ClaimOptions) {
    this.calls.recordAndFetch += 1;
    const changed = await this.before(outcome);
    // The marks and claim MemoryStore makes inside are part of this one write: not counted.
    this.#inner = true;
    try {
      return super.recordAndFetch(changed, next);
    } finally {
      this.#inner = false;
    }
  }
  override markAsSent(token: string, ids: readonly string[]) {
    if (ids.length > 0 && !this.#inner) this.calls.marks += 1;
    return super.markAsSent(token, ids);
  }
}

/** The same store with `recordAndFetch` hidden: the relay must fall back to separate writes. */
function withoutPipelining(store: CountingStore): CountingStore {
  Object.defineProperty(store, "recordAndFetch", { value: undefined });
  return store;
}

async function setup(
  count: number,
  sender: Sender,
  options: OutboxOptions = {},
  store = new CountingStore(),
) {
  const errors: unknown[] = [];
  const outbox = new Outbox(store, sender, { onError: (e) => errors.push(e), ...options });
  await store.transaction(async (tx) => {
    for (let i = 0; i < count; i++) await outbox.addMessage(tx, { key: `k${i}`, value: `v${i}` });
  });
  return { store, outbox, errors };
}

const idle = { pending: 0, inFlight: 0, dead: 0, oldestPendingAt: null };
/** Row numbers of public ids (`msg_<namespace>_<row>`), in order. */
const rows = (ids: readonly string[]) => ids.map((id) => id.slice(id.lastIndexOf("_") + 1));

describe("pipelined drain", () => {
  it("delivers everything exactly once with one write per pass", async () => {
    const sender = recordingSender();
    const { store, outbox, errors } = await setup(10, sender, { batchSize: 3 });
    expect(await outbox.tick()).toMatchObject({ batches: 4, sent: 10, failed: 0, dead: 0 });
    expect(rows(sender.delivered)).toEqual(["1", "2", "3", "4", "5", "6", "7", "8", "9", "10"]);
    // One claim to start, then one record-and-claim per batch (the last claims nothing).
    expect(store.calls).toEqual({ fetchAndLock: 1, recordAndFetch: 4, marks: 0 });
    expect(errors).toEqual([]);
    expect(await store.stats()).toEqual(idle);
  });

  it("falls back to separate marks and claims for a store without recordAndFetch", async () => {
    const sender = recordingSender();
    const { store, outbox } = await setup(
      10,
      sender,
      { batchSize: 3 },
      withoutPipelining(new CountingStore()),
    );
    expect(await outbox.tick()).toMatchObject({ batches: 4, sent: 10 });
    expect(sender.delivered).toHaveLength(10);
    expect(store.calls).toEqual({ fetchAndLock: 5, recordAndFetch: 0, marks: 4 });
  });

  it("claims no next batch once the budget is spent", async () => {
    const sender = recordingSender();
    const slow: Sender = {
      send: async (messages, signal) => {
        await new Promise((resolve) => setTimeout(resolve, 1_000));
        return sender.send(messages, signal);
      },
    };
    const { store, outbox } = await setup(6, slow, { batchSize: 2 });
    // A budget a loaded machine's first claim fits in (half a second of stalls), spent by the send.
    expect(await outbox.tick({ budgetMs: 500 })).toMatchObject({ batches: 1, sent: 2 });
    expect(store.calls).toMatchObject({ recordAndFetch: 0, marks: 1 });
    expect(await store.stats()).toMatchObject({ pending: 4, inFlight: 0 });
  });

  it("claims no next batch after an abort during the send", async () => {
    const controller = new AbortController();
    const sender = recordingSender((m) => {
      m.markAsSent();
      controller.abort();
    });
    const { store, outbox } = await setup(6, sender, { batchSize: 2 });
    expect(await outbox.tick({ signal: controller.signal })).toMatchObject({
      batches: 1,
      sent: 2,
      failed: 0,
    });
    expect(await store.stats()).toMatchObject({ pending: 4, inFlight: 0 });
  });

  it("gives back unsent, attempts kept, a batch claimed just before an abort, then stops", async () => {
    const controller = new AbortController();
    const sender = recordingSender();
    const { store, outbox } = await setup(6, sender, { batchSize: 2, maxRetries: 0 });
    store.before = (outcome) => {
      controller.abort();
      return outcome;
    };
    expect(await outbox.tick({ signal: controller.signal })).toMatchObject({
      batches: 1,
      sent: 2,
      failed: 0,
      dead: 0,
    });
    expect(rows(sender.delivered)).toEqual(["1", "2"]);
    // Claimable at once, never attempted: even with maxRetries 0 nothing died.
    expect(await store.stats()).toMatchObject({ pending: 4, inFlight: 0, dead: 0 });
    const next = await store.fetchAndLock({ batchSize: 10, leaseDuration: 30_000, ordering: "none" });
    expect(next.messages.map((m) => m.retries)).toEqual([0, 0, 0, 0]);
  });

  it("a store without release sends a batch claimed just before an abort, under sendTimeout only", async () => {
    const controller = new AbortController();
    const signals: boolean[] = [];
    const sender = recordingSender();
    const watching: Sender = {
      send: (messages, signal) => {
        signals.push(signal.aborted);
        return sender.send(messages, signal);
      },
    };
    const store = new CountingStore();
    Object.defineProperty(store, "release", { value: undefined });
    const { outbox } = await setup(6, watching, { batchSize: 2, maxRetries: 0 }, store);
    store.before = (outcome) => {
      controller.abort();
      return outcome;
    };
    expect(await outbox.tick({ signal: controller.signal })).toMatchObject({ batches: 2, sent: 4, dead: 0 });
    expect(signals).toEqual([false, false]);
    expect(rows(sender.delivered)).toEqual(["1", "2", "3", "4"]);
    expect(await store.stats()).toMatchObject({ pending: 2, inFlight: 0, dead: 0 });
  });

  it("stop() during a record-and-claim gives that batch back unsent before it resolves, and claims no more", async () => {
    const sender = recordingSender();
    const { store, outbox } = await setup(6, sender, { batchSize: 2, period: 60_000 });
    const stopped = gate();
    store.before = (outcome) => {
      if (store.calls.recordAndFetch === 1) void outbox.stop().then(stopped.open);
      return outcome;
    };
    outbox.start();
    await stopped.promise;
    expect(rows(sender.delivered)).toEqual(["1", "2"]);
    expect(store.calls.recordAndFetch).toBe(1);
    expect(await store.stats()).toMatchObject({ pending: 4, inFlight: 0 });
  });

  it("stop() during a send claims nothing more and leaves nothing in flight", async () => {
    const release = gate();
    const entered = gate();
    const sender = recordingSender();
    const held: Sender = {
      send: async (messages, signal) => {
        entered.open();
        await release.promise;
        return sender.send(messages, signal);
      },
    };
    const { store, outbox } = await setup(6, held, { batchSize: 2, period: 60_000 });
    outbox.start();
    await entered.promise;
    const stopping = outbox.stop();
    release.open();
    await stopping;
    expect(rows(sender.delivered)).toEqual(["1", "2"]);
    expect(store.calls.recordAndFetch).toBe(0);
    expect(await store.stats()).toMatchObject({ pending: 4, inFlight: 0 });
  });

  it("reports a lost lease on a pipelined record and still relays the next batch", async () => {
    const sender = recordingSender();
    const { store, outbox, errors } = await setup(4, sender, { batchSize: 2 });
    let first = true;
    store.before = (outcome) => {
      if (!first) return outcome;
      first = false;
      // Another relay took the batch over: this claim's token no longer holds the rows.
      return { ...outcome, token: "taken-over" };
    };
    const result = await outbox.tick();
    expect(result).toMatchObject({ batches: 2, sent: 2 });
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatchObject({ code: "LEASE_LOST" });
    expect(rows((errors[0] as { messageIds: string[] }).messageIds)).toEqual(["1", "2"]);
    expect(rows(sender.delivered)).toEqual(["1", "2", "3", "4"]);
    expect(await store.stats()).toMatchObject({ pending: 0, inFlight: 2 });
  });
});
