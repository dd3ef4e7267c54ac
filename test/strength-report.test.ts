/**
 * What the default `onError` writes to the console, and what becomes of a throwing `onError`:
 * the failed-batch line's exact text, the rate limit's edges and its summary timer, and a
 * console or timers that throw. Written against mutants the older log tests let survive.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { MemoryStore } from "../adapters/memory.ts";
import { type Message, Outbox, type OutboxOptions, type Sender } from "../mod.ts";
import { RateLimitedLog } from "../src/report.ts";
import { recordingSender, waitFor } from "./support/senders.ts";

let consoleError: ReturnType<typeof vi.spyOn>;
const lines = () => consoleError.mock.calls.map((args: unknown[]) => args.map(String).join(" "));

beforeEach(() => {
  consoleError = vi.spyOn(console, "error").mockImplementation(() => {});
});
afterEach(() => {
  consoleError.mockRestore();
  vi.unstubAllGlobals();
});

const NO_RETRY_SOON: OutboxOptions = { backoff: { initialDelay: 60_000, maxDelay: 60_000 } };

/** An outbox over a MemoryStore holding `count` messages. */
async function seeded(sender: Sender, count: number, options: OutboxOptions = NO_RETRY_SOON) {
  const store = new MemoryStore();
  const outbox = new Outbox(store, sender, options);
  await store.transaction(async (tx) => {
    for (let i = 0; i < count; i++) await outbox.addMessage(tx, { key: `k${i}`, value: `v${i}` });
  });
  return { store, outbox };
}

/** A sender applying `marks[i]` to the i-th message of its batch; `ids` lists what it got. */
function verdicts(...marks: Array<(m: Message) => void>): Sender & { ids: string[] } {
  const ids: string[] = [];
  return {
    ids,
    async send(messages) {
      messages.forEach((m, i) => {
        ids.push(m.id);
        marks[i]?.(m);
      });
      return messages;
    },
  };
}

describe("the failed-batch line", () => {
  it("names the first three attempted failures (failed before dead), cuts reasons to 200 characters and counts the rest", async () => {
    const long = "x".repeat(250);
    const sender = verdicts(
      (m) => m.markAsSent(),
      (m) => m.markAsFailed({ attempted: false, error: "breaker open" }),
      (m) => m.markAsDead(),
      (m) => m.markAsFailed({ error: long }),
      (m) => m.markAsFailed({ error: "HTTP 503" }),
      (m) => m.markAsFailed(),
    );
    const { outbox } = await seeded(sender, 6);
    const { ids } = sender;
    await outbox.tick();
    expect(lines()).toEqual([
      `[edge-outbox] delivery failed for 4 of 6 message(s) (3 will be retried, 1 dead): ${ids[3]}: ${"x".repeat(200)}; ${ids[4]}: HTTP 503; ${ids[5]}: no reason given; and 1 more`,
    ]);
  });

  it("marks dead messages as such and adds no count when every failure is named", async () => {
    const sender = verdicts(
      (m) => m.markAsDead({ error: "HTTP 410" }),
      (m) => m.markAsFailed({ error: "HTTP 500" }),
      (m) => m.markAsDead({ error: "HTTP 404" }),
    );
    const { outbox } = await seeded(sender, 3);
    const { ids } = sender;
    await outbox.tick();
    expect(lines()).toEqual([
      `[edge-outbox] delivery failed for 3 of 3 message(s) (1 will be retried, 2 dead): ${ids[1]}: HTTP 500; ${ids[0]} (dead): HTTP 410; ${ids[2]} (dead): HTTP 404`,
    ]);
  });

  it("is written for a batch with as many dead as failed messages", async () => {
    const sender = verdicts(
      (m) => m.markAsFailed({ error: "HTTP 500" }),
      (m) => m.markAsDead({ error: "HTTP 410" }),
    );
    const { outbox } = await seeded(sender, 2);
    const { ids } = sender;
    await outbox.tick();
    expect(lines()).toEqual([
      `[edge-outbox] delivery failed for 2 of 2 message(s) (1 will be retried, 1 dead): ${ids[0]}: HTTP 500; ${ids[1]} (dead): HTTP 410`,
    ]);
  });

  it("is not written for a batch whose only failures were never attempted, nor for a delivered one", async () => {
    const { outbox } = await seeded(
      recordingSender((m) => m.markAsFailed({ attempted: false, retryAfter: 60_000 })),
      2,
    );
    await outbox.tick();
    const delivered = await seeded(recordingSender(), 2);
    await delivered.outbox.tick();
    await outbox.stop();
    await delivered.outbox.stop();
    expect(lines()).toEqual([]);
  });
});

describe("the default onError", () => {
  it("logs an error that is not the outbox's own (a loop's store failure) as the value itself, stack and all", async () => {
    const memory = new MemoryStore();
    const failure = new TypeError("store exploded");
    const store = new Proxy(memory, {
      get(target, property, receiver) {
        if (property === "fetchAndLock") {
          return async () => {
            throw failure;
          };
        }
        const value = Reflect.get(target, property, receiver);
        return typeof value === "function" ? value.bind(target) : value;
      },
    });
    const outbox = new Outbox(store, recordingSender(), { period: 5 });
    outbox.start();
    await waitFor(() => consoleError.mock.calls.length > 0);
    await outbox.stop();
    const logged = consoleError.mock.calls[0];
    expect(logged).toEqual(["[edge-outbox]", failure]);
  });
});

describe("RateLimitedLog", () => {
  it("writes again once exactly intervalMs has passed", () => {
    let now = 5_000;
    const log = new RateLimitedLog(1_000, () => now);
    expect(log.write("a")).toBe(true);
    now += 999;
    expect(log.write("b")).toBe(false);
    now += 1;
    expect(log.write("c")).toBe(true);
    expect(lines()).toEqual([
      "[edge-outbox] a",
      "[edge-outbox] c (1 more line(s) held back in the last 1 s)",
    ]);
  });

  it("writes the summary when the interval ends, not before", async () => {
    let now = 1_000_000;
    // On its own clock, the second line comes 50 ms into a 100 ms interval: the summary is due
    // 50 ms later.
    const log = new RateLimitedLog(100, () => now);
    log.write("first");
    now += 50;
    log.write("second");
    await new Promise((resolve) => setTimeout(resolve, 15));
    expect(lines()).toEqual(["[edge-outbox] first"]);
    await waitFor(() => lines().length === 2, 2_000);
    expect(lines()[1]).toBe("[edge-outbox] (1 more line(s) held back in the last 0.1 s)");
  });

  it("flush writes nothing when nothing was held back, and the summary once when something was", async () => {
    const log = new RateLimitedLog(60_000);
    log.flush();
    expect(lines()).toEqual([]);
    log.write("one");
    log.write("two");
    log.write("three");
    log.flush();
    log.flush();
    expect(lines()).toEqual([
      "[edge-outbox] one",
      "[edge-outbox] (2 more line(s) held back in the last 60 s)",
    ]);
  });

  it("swallows a console.error that throws", () => {
    consoleError.mockImplementation(() => {
      throw new Error("console is gone");
    });
    const log = new RateLimitedLog(60_000);
    expect(log.write("a")).toBe(true);
    expect(log.write("b")).toBe(false);
    expect(() => log.flush()).not.toThrow();
  });

  it("without working timers, the next line written carries the count", () => {
    vi.stubGlobal("setTimeout", () => {
      throw new Error("no timers here");
    });
    let now = 0;
    const log = new RateLimitedLog(1_000, () => now);
    log.write("a");
    now = 10;
    expect(log.write("b")).toBe(false);
    now = 2_000;
    expect(log.write("c")).toBe(true);
    expect(lines()).toEqual([
      "[edge-outbox] a",
      "[edge-outbox] c (1 more line(s) held back in the last 1 s)",
    ]);
  });
});

describe("an onError that throws or rejects", () => {
  it("is reported on the console with the error it was reporting; the tick goes on", async () => {
    for (const onError of [
      () => {
        throw new Error("handler broke");
      },
      async () => {
        throw new Error("handler broke");
      },
    ]) {
      consoleError.mockClear();
      const { outbox } = await seeded(
        {
          async send() {
            throw new Error("receiver exploded");
          },
        },
        1,
        { ...NO_RETRY_SOON, onError },
      );
      expect(await outbox.tick()).toMatchObject({ failed: 1 });
      await waitFor(() => lines().length > 0);
      expect(lines()[0]).toMatch(
        /^\[edge-outbox\] onError threw \(handler broke\) while reporting: .*receiver exploded/,
      );
      await outbox.stop();
    }
  });

  it("stop() writes what the fallback log held back", async () => {
    let reports = 0;
    const onError = () => {
      reports += 1;
      throw new Error("handler broke");
    };
    const { outbox } = await seeded(
      {
        async send() {
          throw new Error("receiver exploded");
        },
      },
      3,
      { batchSize: 1, backoff: { initialDelay: 60_000, maxDelay: 60_000 }, onError },
    );
    await outbox.tick();
    expect(reports).toBe(3);
    expect(lines()).toHaveLength(1);
    await outbox.stop();
    expect(lines()).toHaveLength(2);
    expect(lines()[1]).toBe("[edge-outbox] (2 more line(s) held back in the last 10 s)");
  });
});
