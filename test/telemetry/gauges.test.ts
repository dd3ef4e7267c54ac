import { describe, expect, it } from "vitest";
import { httpSender } from "../../adapters/http.ts";
import { MemoryStore } from "../../adapters/memory.ts";
import {
  Outbox,
  type OutboxOptions,
  type OutboxStats,
  prepareMessage,
  type Sender,
  StoreError,
  ValidationError,
} from "../../mod.ts";
import { oldestAgeSeconds } from "../../src/telemetry-stats.ts";
import { gate, recordingSender, waitFor } from "../support/senders.ts";
import { instrumented, onCleanup, pointValue, receiver, useCleanups } from "./support.ts";

useCleanups();

/** A MemoryStore that counts `stats()` reads and can be told to fail them. */
class CountingStore extends MemoryStore {
  reads = 0;
  failure: Error | undefined;
  override async stats(): Promise<OutboxStats> {
    this.reads += 1;
    if (this.failure) throw this.failure;
    return super.stats();
  }
}

function setup(sender: Sender, options: OutboxOptions = {}) {
  const { rig, store, outbox, errors } = instrumented(new CountingStore(), sender, options);
  /** The gauges of one collection. */
  async function gauges() {
    const metrics = await rig.collect();
    const count = metrics.get("outbox.message.count");
    const age = metrics.get("outbox.message.oldest_age");
    return {
      present: count !== undefined && count.dataPoints.length > 0,
      pending: pointValue(count, { "outbox.message.state": "pending" }),
      inFlight: pointValue(count, { "outbox.message.state": "in_flight" }),
      dead: pointValue(count, { "outbox.message.state": "dead" }),
      age: pointValue(age),
      ageUnit: age?.descriptor.unit,
    };
  }
  return { rig, store, outbox, errors, gauges };
}

/** Commits `count` messages stamped `ageMs` in the past. */
async function seedOld(store: MemoryStore, count: number, ageMs: number) {
  const now = new Date(Date.now() - ageMs);
  await store.transaction(async (tx) => {
    for (let i = 0; i < count; i++) {
      await store.addMessage(
        tx,
        prepareMessage({ key: `k${i}`, value: `v${i}` }, { maxMessageBytes: 1024, now }),
      );
    }
  });
}

describe("stats gauges", () => {
  it("show backlog, in-flight and the oldest age while pending, and zero after", async () => {
    const http = await receiver();
    onCleanup(http.close);
    const inside = gate();
    const release = gate();
    const forward = httpSender({ url: http.url, unsigned: true });
    const held: Sender = {
      async send(messages, signal) {
        inside.open();
        await release.promise;
        return forward.send(messages, signal);
      },
    };
    const { store, outbox, errors, gauges } = setup(held, { statsCacheTtl: 0, batchSize: 2 });
    await seedOld(store, 5, 90_000);

    const before = await gauges();
    expect(before).toMatchObject({ pending: 5, inFlight: 0, dead: 0, ageUnit: "s" });
    expect(before.age).toBeGreaterThanOrEqual(90);
    expect(before.age).toBeLessThan(3600);

    const ticking = outbox.tick();
    await inside.promise;
    const during = await gauges();
    expect(during).toMatchObject({ pending: 3, inFlight: 2, dead: 0 });
    expect(during.age).toBeGreaterThanOrEqual(90);
    release.open();
    expect(await ticking).toMatchObject({ sent: 5 });
    expect(http.received).toHaveLength(5);

    expect(await gauges()).toMatchObject({ present: true, pending: 0, inFlight: 0, dead: 0, age: 0 });
    expect(errors).toEqual([]);
  });

  it("count dead messages", async () => {
    const { store, outbox, gauges } = setup(
      recordingSender((m) => m.markAsDead({ error: "410" })),
      { statsCacheTtl: 0 },
    );
    await seedOld(store, 3, 0);
    await outbox.tick();
    expect(await gauges()).toMatchObject({ pending: 0, dead: 3, age: 0 });
  });

  it("read stats() at most once per statsCacheTtl, however often they are collected", async () => {
    const { store, gauges } = setup(recordingSender());
    await seedOld(store, 2, 1000);
    expect((await gauges()).pending).toBe(2);
    await seedOld(store, 1, 1000);
    // Within the default 10 s the cached result serves: no read, the old count.
    expect((await gauges()).pending).toBe(2);
    await Promise.all([gauges(), gauges()]);
    expect(store.reads).toBe(1);
  });

  it("read stats() on every collection with statsCacheTtl 0, sharing one read between concurrent ones", async () => {
    const { store, gauges } = setup(recordingSender(), { statsCacheTtl: 0 });
    await gauges();
    await gauges();
    expect(store.reads).toBe(2);
    await seedOld(store, 1, 0);
    expect((await gauges()).pending).toBe(1);
  });

  it("report nothing and call onError when stats() fails; the next collection reads again", async () => {
    const { store, errors, gauges } = setup(recordingSender(), { statsCacheTtl: 60_000 });
    store.failure = new StoreError("database is locked", { retryable: true });
    expect((await gauges()).present).toBe(false);
    expect(errors).toEqual([store.failure]);
    store.failure = undefined;
    await seedOld(store, 1, 0);
    expect((await gauges()).pending).toBe(1);
    expect(store.reads).toBe(2);
  });

  it("are unregistered when the outbox is disposed", async () => {
    const { store, outbox, gauges } = setup(recordingSender(), { statsCacheTtl: 0 });
    await seedOld(store, 1, 0);
    expect((await gauges()).pending).toBe(1);
    await outbox[Symbol.asyncDispose]();
    await outbox[Symbol.asyncDispose]();
    const reads = store.reads;
    await seedOld(store, 1, 0);
    // (A cumulative reader may repeat the last point; what matters is that nothing reads the store.)
    expect((await gauges()).pending).not.toBe(2);
    expect(store.reads).toBe(reads);
  });

  it("keep reporting while the start() loop runs and after stop()", async () => {
    const { store, outbox, gauges } = setup(recordingSender(), { statsCacheTtl: 0, period: 5 });
    await seedOld(store, 2, 0);
    outbox.start();
    await waitFor(async () => (await store.stats()).pending === 0);
    await outbox.stop();
    expect(await gauges()).toMatchObject({ present: true, pending: 0 });
  });
});

describe("statsCacheTtl option", () => {
  it("defaults to 10 s and accepts 0", () => {
    expect(new Outbox(new MemoryStore(), recordingSender()).options.statsCacheTtl).toBe(10_000);
    expect(new Outbox(new MemoryStore(), recordingSender(), { statsCacheTtl: 0 }).options.statsCacheTtl).toBe(
      0,
    );
  });

  it.each([-1, Number.NaN, "10" as unknown as number, 2 ** 31])("refuses %s", (value) => {
    expect(() => new Outbox(new MemoryStore(), recordingSender(), { statsCacheTtl: value })).toThrow(
      ValidationError,
    );
    expect(() => new Outbox(new MemoryStore(), recordingSender(), { statsCacheTtl: value })).toThrow(
      /statsCacheTtl must be a number of milliseconds between 0 and/,
    );
  });
});

describe("oldestAgeSeconds", () => {
  it("is 0 without a message, seconds otherwise, never negative", () => {
    expect(oldestAgeSeconds(null, 5000)).toBe(0);
    expect(oldestAgeSeconds(new Date(1000), 3500)).toBe(2.5);
    expect(oldestAgeSeconds(new Date(9000), 3500)).toBe(0);
  });
});
