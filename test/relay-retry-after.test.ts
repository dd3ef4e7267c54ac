/**
 * One clamp in the relay for any sender's retryAfter: NaN, negative, Infinity, or beyond what a
 * Date can hold never makes a NaN attempt time, never burns retries, never reports a false
 * LeaseLostError. On MemoryStore and a real libSQL file.
 */
import { afterAll, describe, expect, it } from "vitest";
import { MemoryStore } from "../adapters/memory.ts";
import {
  DEFAULT_OPTIONS,
  Outbox,
  type RetryUpdate,
  retryDelay,
  type Sender,
  ValidationError,
} from "../mod.ts";
import { tempDir } from "./libsql/helpers.ts";
import { type AnyStore, everyStore } from "./support/stores.ts";

const temp = tempDir();
afterAll(() => temp.cleanup());

const stores = everyStore(temp.dir);

/** `store` recording every retry mark the relay makes. */
function recordingRetries(store: AnyStore, updates: RetryUpdate[]): AnyStore {
  return new Proxy(store, {
    get(target, property, receiver) {
      const value = Reflect.get(target, property, receiver);
      if (typeof value !== "function") return value;
      if (property === "updateRetryCount") {
        return (token: string, batch: RetryUpdate[]) => {
          updates.push(...batch);
          return value.call(target, token, batch);
        };
      }
      if (property === "recordAndFetch") {
        return (outcome: { retry: RetryUpdate[] }, next: unknown) => {
          updates.push(...outcome.retry);
          return value.call(target, outcome, next);
        };
      }
      return value.bind(target);
    },
  });
}

const hour = 3_600_000;
const cases: Array<[string, number, (delay: number) => boolean]> = [
  ["beyond what a Date can hold (1e300)", 1e300, (d) => d === hour],
  ["Number.MAX_VALUE", Number.MAX_VALUE, (d) => d === hour],
  ["Infinity", Number.POSITIVE_INFINITY, (d) => d === hour],
  ["NaN (the backoff decides)", Number.NaN, (d) => d >= 0 && d <= 60_000],
  ["negative (the backoff decides)", -5, (d) => d >= 0 && d <= 60_000],
  ["fractional (rounded up)", 1500.2, (d) => d === 1501],
];

for (const [name, open] of stores) {
  describe(`${name}: a sender's retryAfter`, () => {
    for (const [label, retryAfter, expected] of cases) {
      it(`${label} waits a clamped whole number of ms: no lost lease, no burnt retries`, async () => {
        const { store, close } = await open();
        try {
          const updates: RetryUpdate[] = [];
          const errors: unknown[] = [];
          let attempts = 0;
          const sender: Sender = {
            async send(messages) {
              attempts += 1;
              for (const m of messages) m.markAsFailed({ retryAfter, error: "HTTP 429" });
              return messages;
            },
          };
          const outbox = new Outbox(recordingRetries(store, updates), sender, {
            backoff: { initialDelay: 60_000, maxDelay: 60_000, maxRetryAfter: hour },
            onError: (e) => errors.push(e),
          });
          await store.withTransaction((tx) => outbox.addMessage(tx, { key: "k", value: "v" }));
          const before = Date.now();
          expect(await outbox.tick()).toMatchObject({ batches: 1, failed: 1, dead: 0 });
          expect(attempts).toBe(1);
          expect(errors).toEqual([]);
          expect(updates).toHaveLength(1);
          const [update] = updates;
          expect(Number.isSafeInteger(update!.delay)).toBe(true);
          expect(expected(update!.delay)).toBe(true);
          expect(update!.availableAt.getTime() - before).toBeGreaterThanOrEqual(update!.delay - 1);
          expect(await store.stats()).toMatchObject({ pending: 1, inFlight: 0, dead: 0 });
          // Waiting, not burnt: the next tick finds nothing ready.
          expect(await outbox.tick()).toMatchObject({ batches: 0 });
        } finally {
          await close();
        }
      });
    }
  });
}

describe("retryDelay and backoff.maxRetryAfter", () => {
  const backoff = { ...DEFAULT_OPTIONS.backoff };

  it("defaults to one day and refuses values out of range", () => {
    expect(DEFAULT_OPTIONS.backoff.maxRetryAfter).toBe(86_400_000);
    expect(retryDelay(0, Number.POSITIVE_INFINITY, backoff)).toBe(86_400_000);
    const store = new MemoryStore();
    const sender: Sender = { send: async (m) => m };
    for (const bad of [-1, Number.NaN, Number.POSITIVE_INFINITY, "1000", 2 ** 31]) {
      expect(() => new Outbox(store, sender, { backoff: { maxRetryAfter: bad as number } })).toThrow(
        ValidationError,
      );
    }
    expect(new Outbox(store, sender, { backoff: { maxRetryAfter: 0 } }).options.backoff.maxRetryAfter).toBe(
      0,
    );
  });

  it("never returns NaN, whatever the retry count or curve", () => {
    const curves = [backoff, { ...backoff, initialDelay: 0 }, { ...backoff, factor: 10 }];
    for (const curve of curves) {
      for (const retries of [0, 1, 50, 1100, 10_000, Number.NaN]) {
        const delay = retryDelay(retries, undefined, curve);
        expect(Number.isSafeInteger(delay)).toBe(true);
        expect(delay).toBeGreaterThanOrEqual(0);
        expect(delay).toBeLessThanOrEqual(curve.maxDelay);
      }
    }
  });
});
