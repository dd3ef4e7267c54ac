/**
 * Work that never happened must not count: a batch claimed when the drain has to end (the
 * signal aborted, the budget ran out, stop() was called) before its send starts is never handed
 * to the sender with an aborted signal, spends no attempt, and (with `store.release`) is
 * claimable again at once. Run against MemoryStore and a real libSQL file; a store without
 * `release` sends such a batch under `sendTimeout` instead, which the same assertions accept.
 */
import { afterAll, describe, expect, it } from "vitest";
import { type ClaimOptions, Outbox, type OutboxOptions, type Sender } from "../mod.ts";
import { commitMessages } from "./conformance/store-conformance.ts";
import { tempDir } from "./libsql/helpers.ts";
import { gate } from "./support/senders.ts";
import { type AnyStore, everyStore } from "./support/stores.ts";

const temp = tempDir();
afterAll(() => temp.cleanup());

const stores = everyStore(temp.dir);

/** `store` with `after` run once a named call has resolved (and before the relay sees its result). */
function hooked(
  store: AnyStore,
  name: "fetchAndLock" | "recordAndFetch",
  after: () => void | Promise<void>,
): AnyStore {
  return new Proxy(store, {
    get(target, property, receiver) {
      const value = Reflect.get(target, property, receiver);
      if (typeof value !== "function") return value;
      if (property !== name) return value.bind(target);
      return async (...args: unknown[]) => {
        const result = await value.apply(target, args);
        await after();
        return result;
      };
    },
  });
}

/** A sender that records whether its signal was already aborted when it was called. */
function watchingSender() {
  const calls: { ids: string[]; abortedAtStart: boolean }[] = [];
  const sender: Sender = {
    async send(messages, signal) {
      calls.push({ ids: messages.map((m) => m.id), abortedAtStart: signal.aborted });
      for (const m of messages) m.markAsSent();
      return messages;
    },
  };
  return { sender, calls };
}

const claim: ClaimOptions = { batchSize: 100, leaseDuration: 30_000, ordering: "none" };
const strict: OutboxOptions = { maxRetries: 0, onError: () => {} };
const values = (n: number) => Array.from({ length: n }, (_, i) => ({ key: `k${i}`, value: `v${i}` }));

/** What every scenario must end with: no aborted send, nothing dead, nothing left leased, no attempt spent. */
async function expectNothingCounted(
  store: AnyStore,
  calls: { ids: string[]; abortedAtStart: boolean }[],
  total: number,
) {
  expect(calls.every((c) => !c.abortedAtStart)).toBe(true);
  const delivered = calls.flatMap((c) => c.ids);
  const stats = await store.stats();
  expect(stats).toMatchObject({ inFlight: 0, dead: 0, pending: total - delivered.length });
  if (store.release !== undefined) {
    // Given back: claimable at once, and no attempt was spent on it.
    const again = await store.fetchAndLock(claim);
    expect(again.messages).toHaveLength(total - delivered.length);
    expect(again.messages.every((m) => m.retries === 0)).toBe(true);
  }
}

for (const [name, open] of stores) {
  describe(`${name}: a batch never handed to the sender`, () => {
    it("tick({ signal }) aborting during the claim: no aborted send, no attempt, no death at maxRetries 0", async () => {
      const { store, close } = await open();
      try {
        await commitMessages(store, values(3));
        const controller = new AbortController();
        const { sender, calls } = watchingSender();
        const outbox = new Outbox(
          hooked(store, "fetchAndLock", () => controller.abort()),
          sender,
          strict,
        );
        const result = await outbox.tick({ signal: controller.signal });
        expect(result.dead).toBe(0);
        expect(result.failed).toBe(0);
        if (store.release !== undefined) expect(result).toMatchObject({ batches: 0, sent: 0 });
        await expectNothingCounted(store, calls, 3);
      } finally {
        await close();
      }
    });

    it("the budget running out during a slow claim: the batch goes back unsent", async () => {
      const { store, close } = await open();
      try {
        await commitMessages(store, values(3));
        const { sender, calls } = watchingSender();
        const slowClaim = hooked(
          store,
          "fetchAndLock",
          () => new Promise((resolve) => setTimeout(resolve, 40)),
        );
        const outbox = new Outbox(slowClaim, sender, strict);
        const result = await outbox.tick({ budgetMs: 10 });
        expect(result.dead).toBe(0);
        await expectNothingCounted(store, calls, 3);
      } finally {
        await close();
      }
    });

    it("a pipelined claim the drain does not relay (abort during the record-and-claim) goes back unsent", async () => {
      const { store, close } = await open();
      try {
        if (store.recordAndFetch === undefined) return;
        await commitMessages(store, values(4));
        const controller = new AbortController();
        const { sender, calls } = watchingSender();
        const outbox = new Outbox(
          hooked(store, "recordAndFetch", () => controller.abort()),
          sender,
          { ...strict, batchSize: 2 },
        );
        const result = await outbox.tick({ signal: controller.signal });
        expect(result).toMatchObject({ sent: store.release === undefined ? 4 : 2, dead: 0 });
        await expectNothingCounted(store, calls, 4);
      } finally {
        await close();
      }
    });

    it("release() throwing: the claim is sent at once (signal-free), never left to expire and die unsent", async () => {
      const { store, close } = await open();
      try {
        if (store.release === undefined) return;
        await commitMessages(store, values(2));
        const controller = new AbortController();
        const { sender, calls } = watchingSender();
        const errors: unknown[] = [];
        const failingRelease = new Proxy(
          hooked(store, "fetchAndLock", () => controller.abort()),
          {
            get(target, property, receiver) {
              if (property === "release") {
                return async () => {
                  throw new Error("SQLITE_BUSY (transient)");
                };
              }
              return Reflect.get(target, property, receiver);
            },
          },
        );
        const outbox = new Outbox(failingRelease, sender, {
          maxRetries: 0,
          sendTimeout: 50,
          leaseDuration: 100,
          onError: (e) => errors.push(e),
        });
        const result = await outbox.tick({ signal: controller.signal });
        expect(result).toMatchObject({ batches: 1, sent: 2, failed: 0, dead: 0 });
        expect(errors.map(String)).toEqual(["Error: SQLITE_BUSY (transient)"]);
        expect(calls).toHaveLength(1);
        expect(calls[0]?.abortedAtStart).toBe(false);
        // Long after the lease would have ended: nothing comes back, nothing died.
        await new Promise((resolve) => setTimeout(resolve, 150));
        expect(await store.stats()).toMatchObject({ pending: 0, inFlight: 0, dead: 0 });
      } finally {
        await close();
      }
    });

    it("stop() during the loop's claim: resolves with nothing leased, the batch unsent and unspent", async () => {
      const { store, close } = await open();
      try {
        await commitMessages(store, values(3));
        const { sender, calls } = watchingSender();
        const claimed = gate();
        const proceed = gate();
        const outbox = new Outbox(
          hooked(store, "fetchAndLock", async () => {
            claimed.open();
            await proceed.promise;
          }),
          sender,
          { ...strict, period: 60_000 },
        );
        outbox.start();
        await claimed.promise;
        const stopped = outbox.stop();
        proceed.open();
        await stopped;
        await expectNothingCounted(store, calls, 3);
      } finally {
        await close();
      }
    });
  });
}
