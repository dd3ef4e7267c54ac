import { afterEach, describe, expect, it } from "vitest";
import { MemoryStore } from "../adapters/memory.ts";
import { Outbox, type OutboxOptions, type Sender, StoreError, ValidationError } from "../mod.ts";
import { gate, recordingSender, waitFor } from "./support/senders.ts";
import { failingClaims } from "./support/stores.ts";

const running: Outbox<unknown>[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((o) => o.stop()));
});

function setup(sender: Sender, options: OutboxOptions = {}, store = new MemoryStore()) {
  const errors: unknown[] = [];
  const outbox = new Outbox(store, sender, { onError: (e) => errors.push(e), ...options }) as Outbox<unknown>;
  running.push(outbox);
  return { store, outbox, errors };
}

async function seed(store: MemoryStore, outbox: Outbox<unknown>, count: number) {
  await store.transaction(async (tx) => {
    for (let i = 0; i < count; i++) await outbox.addMessage(tx, { key: `k${i}`, value: `v${i}` });
  });
}

describe("tick budget and abort", () => {
  it("starts no pass after budgetMs and leaves the rest pending", async () => {
    const sender: Sender = {
      async send(messages) {
        await new Promise((resolve) => setTimeout(resolve, 15));
        for (const m of messages) m.markAsSent();
        return messages;
      },
    };
    const { store, outbox } = setup(sender, { batchSize: 1 });
    await seed(store, outbox, 50);
    // A budget a loaded machine's first claim fits in (no pass starts once it is spent), well
    // short of the 750 ms or more the 50 sends take one after another.
    const result = await outbox.tick({ budgetMs: 300 });
    expect(result.batches).toBeGreaterThanOrEqual(1);
    expect(result.batches).toBeLessThan(50);
    expect((await store.stats()).pending).toBe(50 - result.sent);
  });

  it("does nothing with an already aborted signal", async () => {
    const sender = recordingSender();
    const { store, outbox } = setup(sender);
    await seed(store, outbox, 3);
    expect(await outbox.tick({ signal: AbortSignal.abort() })).toMatchObject({ batches: 0, sent: 0 });
    expect(sender.attempts).toEqual([]);
  });

  it("an abort mid-send aborts the sender, fails its batch and ends the tick", async () => {
    const controller = new AbortController();
    const sender: Sender = {
      send(_messages, signal) {
        controller.abort();
        return new Promise((_, reject) => signal.addEventListener("abort", () => reject(signal.reason)));
      },
    };
    const { store, outbox, errors } = setup(sender, {
      batchSize: 2,
      backoff: { initialDelay: 60_000, maxDelay: 60_000 },
    });
    await seed(store, outbox, 6);
    expect(await outbox.tick({ signal: controller.signal })).toMatchObject({ batches: 1, failed: 2 });
    expect(errors).toHaveLength(1);
    expect(await store.stats()).toMatchObject({ pending: 6, inFlight: 0 });
  });

  it("two overlapping ticks: the second's budget and signal bound its wait behind the first; passes never overlap", async () => {
    const release = gate();
    let inSend = 0;
    let maxInSend = 0;
    const sender: Sender = {
      async send(messages) {
        inSend += 1;
        maxInSend = Math.max(maxInSend, inSend);
        await release.promise;
        for (const m of messages) m.markAsSent();
        inSend -= 1;
        return messages;
      },
    };
    const { store, outbox } = setup(sender, { batchSize: 1 });
    await seed(store, outbox, 5);
    const first = outbox.tick();
    await waitFor(() => inSend === 1);

    const waitStarted = performance.now();
    expect(await outbox.tick({ budgetMs: 100 })).toMatchObject({ batches: 0, sent: 0, failed: 0, dead: 0 });
    // Generous: the point is that it did not wait for the first tick (which waits on the gate).
    expect(performance.now() - waitStarted).toBeLessThan(3000);
    const controller = new AbortController();
    const aborted = outbox.tick({ signal: controller.signal });
    controller.abort();
    expect(await aborted).toMatchObject({ batches: 0 });
    expect(await outbox.tick({ signal: AbortSignal.abort() })).toMatchObject({ batches: 0 });

    // stop() still waits for the first tick's batch in flight.
    let stopped = false;
    const stopping = outbox.stop().then(() => {
      stopped = true;
    });
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(stopped).toBe(false);
    release.open();
    expect(await first).toMatchObject({ batches: 5, sent: 5 });
    await stopping;
    expect(maxInSend).toBe(1);
    // The ticks that gave up ran nothing later either.
    expect(await store.stats()).toMatchObject({ pending: 0, inFlight: 0 });
    expect(await outbox.tick({ budgetMs: 100 })).toMatchObject({ batches: 0 });
  });

  it("refuses a negative or non-numeric budget", async () => {
    const { outbox } = setup(recordingSender());
    await expect(outbox.tick({ budgetMs: -1 })).rejects.toBeInstanceOf(ValidationError);
    await expect(outbox.tick({ budgetMs: "5" as never })).rejects.toBeInstanceOf(ValidationError);
  });
});

describe("start, wake and stop", () => {
  it("stop() resolves only after the batch in flight is recorded", async () => {
    const release = gate();
    const entered = gate();
    const sender: Sender = {
      async send(messages) {
        entered.open();
        await release.promise;
        for (const m of messages) m.markAsSent();
        return messages;
      },
    };
    const { store, outbox } = setup(sender, { period: 60_000 });
    await seed(store, outbox, 2);
    outbox.start();
    await entered.promise;
    let stopped = false;
    const stopping = outbox.stop().then(() => {
      stopped = true;
    });
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(stopped).toBe(false);
    release.open();
    await stopping;
    expect(await store.stats()).toMatchObject({ pending: 0, inFlight: 0 });
  });

  it("wake() makes a sleeping loop deliver now instead of after period", async () => {
    const sender = recordingSender();
    const { store, outbox } = setup(sender, { period: 600_000 });
    outbox.start();
    outbox.start(); // idempotent
    await waitFor(async () => (await store.stats()).pending === 0);
    await seed(store, outbox, 3);
    outbox.wake();
    await waitFor(() => sender.delivered.length === 3);
    // Wakes during a pass coalesce into one more pass, never a parallel one.
    await seed(store, outbox, 2);
    outbox.wake();
    outbox.wake();
    outbox.wake();
    await waitFor(() => sender.delivered.length === 5);
    expect(new Set(sender.delivered).size).toBe(5);
  });

  it("survives store errors: they go to onError and the loop keeps delivering", async () => {
    const store = new MemoryStore();
    const flaky = failingClaims(store, 2);
    const sender = recordingSender();
    const { outbox, errors } = setup(sender, { period: 10 }, flaky);
    await seed(store, outbox, 4);
    outbox.start();
    await waitFor(() => sender.delivered.length === 4);
    expect(errors).toHaveLength(2);
    expect((errors[0] as StoreError).retryable).toBe(true);
  });

  it("a tick() rejects on a store error, so a cron handler can report it", async () => {
    const store = new MemoryStore();
    const broken = new Proxy(store, {
      get(target, name, receiver) {
        if (name === "fetchAndLock")
          return async () => Promise.reject(new StoreError("disk I/O error", { retryable: false }));
        const value = Reflect.get(target, name, receiver);
        return typeof value === "function" ? value.bind(target) : value;
      },
    });
    const { outbox } = setup(recordingSender(), {}, broken);
    await expect(outbox.tick()).rejects.toMatchObject({ code: "STORE_ERROR" });
  });

  it("await using stops the loop on scope exit", async () => {
    const sender = recordingSender();
    const store = new MemoryStore();
    {
      await using outbox = new Outbox(store, sender, { period: 5 });
      outbox.start();
      await seed(store, outbox as Outbox<unknown>, 1);
      await waitFor(() => sender.delivered.length === 1);
    }
    await seed(store, new Outbox(store, sender) as Outbox<unknown>, 1);
    await new Promise((resolve) => setTimeout(resolve, 30));
    expect(sender.delivered).toHaveLength(1);
  });
});

describe("tick() input", () => {
  it("rejects (never throws) a signal that is not an AbortSignal and bad options, sending nothing", async () => {
    const sender = recordingSender();
    const { store, outbox } = setup(sender);
    await seed(store, outbox, 1);
    const fake = { aborted: false } as unknown as AbortSignal;
    await expect(outbox.tick({ signal: fake })).rejects.toBeInstanceOf(ValidationError);
    await expect(outbox.tick(null as never)).resolves.toMatchObject({ sent: 1 });
    expect(await store.stats()).toMatchObject({ pending: 0, inFlight: 0 });
  });
});
