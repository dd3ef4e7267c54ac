/**
 * The loop's lifecycle under any order of start/stop/wake/tick/dispose calls: passes of one
 * outbox never overlap, every stop() resolves only after the batches in flight recorded their
 * outcome, and no message is handed to the sender with a signal already aborted.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { MemoryStore } from "../adapters/memory.ts";
import type { Claim, ClaimOptions, DeadUpdate, PassOutcome, RetryUpdate, Sender } from "../mod.ts";
import { Outbox } from "../mod.ts";
import { gate, waitFor } from "./support/senders.ts";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A MemoryStore that knows which non-empty claims have not recorded an outcome yet. */
class WatchedStore extends MemoryStore {
  readonly open = new Set<string>();
  #opened(claim: Claim): Claim {
    if (claim.messages.length > 0) this.open.add(claim.token);
    return claim;
  }
  override async fetchAndLock(options: ClaimOptions) {
    return this.#opened(await super.fetchAndLock(options));
  }
  override async markAsSent(token: string, ids: readonly string[]) {
    const changed = await super.markAsSent(token, ids);
    this.open.delete(token);
    return changed;
  }
  override async updateRetryCount(token: string, updates: readonly RetryUpdate[]) {
    const changed = await super.updateRetryCount(token, updates);
    this.open.delete(token);
    return changed;
  }
  override async markAsDead(token: string, updates: readonly DeadUpdate[]) {
    const changed = await super.markAsDead(token, updates);
    this.open.delete(token);
    return changed;
  }
  override async release(token: string, ids: readonly string[]) {
    const changed = await super.release(token, ids);
    this.open.delete(token);
    return changed;
  }
  override async recordAndFetch(outcome: PassOutcome, next: ClaimOptions) {
    const result = await super.recordAndFetch(outcome, next);
    this.open.delete(outcome.token);
    this.#opened(result.claim);
    return result;
  }
}

/** Sends take a few ms, honour their signal, and record concurrency and what they were given. */
function watchedSender() {
  const state = { active: 0, maxActive: 0, abortedAtStart: 0, delivered: [] as string[] };
  const sender: Sender = {
    async send(messages, signal) {
      state.active += 1;
      state.maxActive = Math.max(state.maxActive, state.active);
      if (signal.aborted) state.abortedAtStart += 1;
      try {
        await new Promise<void>((resolve, reject) => {
          const timer = setTimeout(resolve, 1 + (messages.length % 3));
          signal.addEventListener("abort", () => {
            clearTimeout(timer);
            reject(signal.reason);
          });
        });
        for (const m of messages) {
          state.delivered.push(m.id);
          m.markAsSent();
        }
        return messages;
      } finally {
        state.active -= 1;
      }
    },
  };
  return { sender, state };
}

type Command =
  | { kind: "start" }
  | { kind: "stop" }
  | { kind: "wake" }
  | { kind: "tick"; abortAfterMs: number | undefined; budgetMs: number | undefined }
  | { kind: "dispose" }
  | { kind: "add"; count: number }
  | { kind: "sleep"; ms: number };

const command: fc.Arbitrary<Command> = fc.oneof(
  fc.constant({ kind: "start" as const }),
  fc.constant({ kind: "stop" as const }),
  fc.constant({ kind: "wake" as const }),
  fc.record({
    kind: fc.constant("tick" as const),
    abortAfterMs: fc.option(fc.integer({ min: 0, max: 6 }), { nil: undefined }),
    budgetMs: fc.option(fc.integer({ min: 0, max: 8 }), { nil: undefined }),
  }),
  fc.constant({ kind: "dispose" as const }),
  fc.record({ kind: fc.constant("add" as const), count: fc.integer({ min: 1, max: 4 }) }),
  fc.record({ kind: fc.constant("sleep" as const), ms: fc.integer({ min: 0, max: 6 }) }),
);

describe("loop lifecycle", () => {
  it("stop() then start() while a pass is in flight never runs two passes at once", async () => {
    const store = new WatchedStore();
    const { sender, state } = watchedSender();
    const held = gate();
    const entered = gate();
    const slow: Sender = {
      async send(messages, signal) {
        entered.open();
        await held.promise;
        return sender.send(messages, signal);
      },
    };
    const outbox = new Outbox(store, slow, { batchSize: 1, period: 1, onError: () => {} });
    await store.transaction(async (tx) => {
      for (let i = 0; i < 4; i++) await outbox.addMessage(tx, { key: `k${i}`, value: `v${i}` });
    });
    outbox.start();
    await entered.promise;
    const first = outbox.stop();
    outbox.start();
    await sleep(20);
    let stopped = false;
    const second = outbox.stop().then(() => {
      stopped = true;
    });
    await sleep(20);
    // The pass in flight has not recorded its outcome: neither stop() may resolve.
    expect(stopped).toBe(false);
    held.open();
    await Promise.all([first, second]);
    expect(store.open.size).toBe(0);
    expect(state.active).toBe(0);
    expect(state.maxActive).toBe(1);
    await outbox[Symbol.asyncDispose]();
  });

  it("holds for random sequences of start, stop, wake, tick, abort, budget and dispose", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(command, { minLength: 1, maxLength: 20 }), async (commands) => {
        const store = new WatchedStore();
        const { sender, state } = watchedSender();
        const errors: unknown[] = [];
        const outbox = new Outbox(store, sender, {
          batchSize: 2,
          period: 3,
          maxRetries: 1000,
          backoff: { initialDelay: 0, maxDelay: 0 },
          onError: (e) => errors.push(e),
        });
        let added = 0;
        const add = async (count: number) => {
          await store.transaction(async (tx) => {
            for (let i = 0; i < count; i++) await outbox.addMessage(tx, { key: `k${added++}`, value: "v" });
          });
        };
        await add(5);
        const pending: Promise<unknown>[] = [];
        // Calls after which a stop() may see a new pass: it then owes only what preceded it.
        let calls = 0;
        const violations: string[] = [];
        for (const c of commands) {
          switch (c.kind) {
            case "start":
            case "wake":
              calls += 1;
              outbox[c.kind]();
              break;
            case "stop":
            case "dispose": {
              const at = calls;
              const done = c.kind === "stop" ? outbox.stop() : outbox[Symbol.asyncDispose]();
              pending.push(
                done.then(() => {
                  if (calls !== at) return;
                  if (store.open.size > 0) violations.push(`${c.kind} resolved with a claim unrecorded`);
                  if (state.active > 0) violations.push(`${c.kind} resolved with a send in flight`);
                }),
              );
              break;
            }
            case "tick": {
              calls += 1;
              const controller = new AbortController();
              if (c.abortAfterMs !== undefined) setTimeout(() => controller.abort(), c.abortAfterMs);
              pending.push(outbox.tick({ signal: controller.signal, budgetMs: c.budgetMs }));
              break;
            }
            case "add":
              await add(c.count);
              break;
            case "sleep":
              await sleep(c.ms);
              break;
          }
        }
        await Promise.all(pending);
        await outbox.stop();
        expect(violations).toEqual([]);
        expect(store.open.size).toBe(0);
        expect(state.maxActive).toBeLessThanOrEqual(1);
        expect(state.abortedAtStart).toBe(0);
        // Whatever was left is delivered by one more tick, each message exactly once.
        await outbox.tick();
        expect(state.delivered).toHaveLength(added);
        expect(new Set(state.delivered).size).toBe(added);
        expect(await store.stats()).toMatchObject({ pending: 0, inFlight: 0, dead: 0 });
        expect(errors.every((e) => (e as { code?: string }).code === "SEND_FAILED")).toBe(true);
        await outbox[Symbol.asyncDispose]();
      }),
      { seed: 20_261_202, numRuns: 40 },
    );
  }, 60_000);

  it("a sender that awaits stop() or tick() of its own outbox holds nothing past sendTimeout", async () => {
    const store = new WatchedStore();
    let outbox: Outbox<unknown> | undefined;
    const inner: Promise<unknown>[] = [];
    const sender: Sender = {
      async send(messages) {
        const waiting = Promise.all([outbox!.stop(), outbox!.tick()]);
        inner.push(waiting);
        await waiting;
        for (const m of messages) m.markAsSent();
        return messages;
      },
    };
    outbox = new Outbox(store, sender, {
      sendTimeout: 100,
      backoff: { initialDelay: 60_000, maxDelay: 60_000 },
      onError: () => {},
    }) as Outbox<unknown>;
    await store.transaction(async (tx) => outbox!.addMessage(tx, { key: "k", value: "v" }));
    expect(await outbox.tick()).toMatchObject({ failed: 1 });
    await Promise.all(inner);
    expect(store.open.size).toBe(0);
  });

  it("a stopped loop makes no more passes; a restarted one does", async () => {
    const store = new WatchedStore();
    const { sender, state } = watchedSender();
    const outbox = new Outbox(store, sender, { period: 2, onError: () => {} });
    outbox.start();
    await outbox.stop();
    await store.transaction(async (tx) => outbox.addMessage(tx, { key: "k", value: "v" }));
    outbox.wake();
    await sleep(30);
    expect(state.delivered).toEqual([]);
    outbox.start();
    await waitFor(() => state.delivered.length === 1);
    await outbox[Symbol.asyncDispose]();
  });
});
