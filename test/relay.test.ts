import { describe, expect, it } from "vitest";
import { MemoryStore, type MemoryTransaction } from "../adapters/memory.ts";
import {
  type Message,
  Outbox,
  type OutboxOptions,
  SendError,
  type Sender,
  SendStatus,
  SendTimeoutError,
  type TransactionalStore,
} from "../mod.ts";
import { gate, recordingSender } from "./support/senders.ts";

/** Row numbers of public ids (`msg_<namespace>_<row>`), in order. */
const rows = (ids: readonly string[]) => ids.map((id) => id.slice(id.lastIndexOf("_") + 1));

const immediateRetry: OutboxOptions = { backoff: { initialDelay: 0, maxDelay: 0 } };

async function seed(
  store: MemoryStore,
  outbox: Outbox<unknown>,
  count: number,
  key = (i: number) => `k${i}`,
) {
  await store.transaction(async (tx) => {
    for (let i = 0; i < count; i++) await outbox.addMessage(tx, { key: key(i), value: `v${i}` });
  });
}

function setup(sender: Sender, options: OutboxOptions = {}) {
  const store = new MemoryStore();
  const errors: unknown[] = [];
  const outbox = new Outbox(store, sender, { onError: (e) => errors.push(e), ...options });
  return { store, outbox: outbox as Outbox<unknown>, errors };
}

describe("relay outcomes", () => {
  it("delivers everything committed, oldest first, and reports the counts", async () => {
    const sender = recordingSender();
    const { store, outbox, errors } = setup(sender, { batchSize: 3 });
    await seed(store, outbox, 8);
    const result = await outbox.tick();
    expect(result).toMatchObject({ batches: 3, sent: 8, failed: 0, dead: 0 });
    expect(result.durationMs).toBeGreaterThanOrEqual(0);
    expect(rows(sender.delivered)).toEqual(["1", "2", "3", "4", "5", "6", "7", "8"]);
    expect(errors).toEqual([]);
    expect(await store.stats()).toEqual({ pending: 0, inFlight: 0, dead: 0, oldestPendingAt: null });
  });

  for (const maxRetries of [0, 1, 3]) {
    it(`attempts a message that always fails exactly 1 + maxRetries times (maxRetries ${maxRetries})`, async () => {
      const sender = recordingSender((m) => m.markAsFailed({ error: "HTTP 503" }));
      const { store, outbox } = setup(sender, { ...immediateRetry, maxRetries });
      await seed(store, outbox, 1);
      const result = await outbox.tick();
      expect(sender.attempts).toHaveLength(1 + maxRetries);
      expect(result).toMatchObject({ sent: 0, failed: maxRetries, dead: 1 });
      const [dead] = await store.listDead();
      expect(dead).toMatchObject({ status: SendStatus.Dead, retries: maxRetries, lastError: "HTTP 503" });
      expect((await outbox.tick()).batches).toBe(0);
    });
  }

  it("kills a message at once when the sender says the failure is permanent", async () => {
    const sender = recordingSender((m) => m.markAsDead({ error: "HTTP 404" }));
    const { store, outbox } = setup(sender);
    await seed(store, outbox, 2);
    expect(await outbox.tick()).toMatchObject({ sent: 0, failed: 0, dead: 2 });
    expect(sender.attempts).toHaveLength(2);
    expect((await store.listDead()).map((m) => m.lastError)).toEqual(["HTTP 404", "HTTP 404"]);
  });

  it("succeeds on a later attempt after failures", async () => {
    const sender = recordingSender((m, attempt) => (attempt < 3 ? m.markAsFailed() : m.markAsSent()));
    const { store, outbox } = setup(sender, immediateRetry);
    await seed(store, outbox, 1);
    expect(await outbox.tick()).toMatchObject({ sent: 1, failed: 2, dead: 0 });
  });

  it("waits the sender's retryAfter before the next attempt", async () => {
    const sender = recordingSender((m) => m.markAsFailed({ retryAfter: 60_000 }));
    const { store, outbox } = setup(sender, immediateRetry);
    await seed(store, outbox, 1);
    expect(await outbox.tick()).toMatchObject({ batches: 1, failed: 1 });
    expect(await outbox.tick()).toMatchObject({ batches: 0 });
    expect(sender.attempts).toHaveLength(1);
    expect(await store.stats()).toMatchObject({ pending: 1, inFlight: 0 });
  });

  it("requeued dead messages are delivered again", async () => {
    let healthy = false;
    const sender = recordingSender((m) => (healthy ? m.markAsSent() : m.markAsDead()));
    const { store, outbox } = setup(sender);
    await seed(store, outbox, 3);
    await outbox.tick();
    healthy = true;
    expect(await store.requeueDead()).toBe(3);
    expect(await outbox.tick()).toMatchObject({ sent: 3 });
  });
});

describe("misbehaving senders", () => {
  it("a throw fails the unmarked messages, keeps the marked ones, and goes to onError", async () => {
    const sender: Sender = {
      async send(messages) {
        messages[0]!.markAsSent();
        throw new Error("connection reset");
      },
    };
    const { store, outbox, errors } = setup(sender, { backoff: { initialDelay: 60_000, maxDelay: 60_000 } });
    await seed(store, outbox, 3);
    expect(await outbox.tick()).toMatchObject({ batches: 1, sent: 1, failed: 2, dead: 0 });
    expect(errors).toHaveLength(1);
    expect(errors[0]).toBeInstanceOf(SendError);
    expect((errors[0] as SendError).message).toMatch(/connection reset/);
    expect(await store.stats()).toMatchObject({ pending: 2, inFlight: 0 });
  });

  it("a sender that outlives sendTimeout fails its batch; the signal it got is aborted", async () => {
    let seen: AbortSignal | undefined;
    const sender: Sender = {
      send(_messages, signal) {
        seen = signal;
        return new Promise(() => {}); // never settles and ignores the signal
      },
    };
    const { store, outbox, errors } = setup(sender, {
      sendTimeout: 30,
      leaseDuration: 10_000,
      ...immediateRetry,
      maxRetries: 1,
    });
    await seed(store, outbox, 2);
    const result = await outbox.tick();
    expect(result).toMatchObject({ sent: 0, failed: 2, dead: 2 });
    expect(seen?.aborted).toBe(true);
    expect(errors.every((e) => e instanceof SendTimeoutError && e.code === "SEND_TIMEOUT")).toBe(true);
    expect((await store.listDead()).map((m) => m.lastError)).toEqual([
      "sender did not finish within sendTimeout (30 ms)",
      "sender did not finish within sendTimeout (30 ms)",
    ]);
  });

  it("marks made after the timeout change nothing", async () => {
    let late: Message[] = [];
    const sender: Sender = {
      send(messages) {
        late = messages;
        return new Promise(() => {});
      },
    };
    const { store, outbox } = setup(sender, {
      sendTimeout: 20,
      backoff: { initialDelay: 60_000, maxDelay: 60_000 },
    });
    await seed(store, outbox, 1);
    expect(await outbox.tick()).toMatchObject({ failed: 1 });
    late[0]!.markAsSent();
    expect(await store.stats()).toMatchObject({ pending: 1 });
  });

  const malformed: Array<[string, (messages: Message[]) => unknown]> = [
    ["undefined", () => undefined],
    ["not an array", () => ({ ok: true })],
    ["messages it was not given", (messages) => [...messages, { id: "999", status: SendStatus.Sent }]],
    ["unmarked messages", (messages) => messages],
  ];
  for (const [name, result] of malformed) {
    it(`a result of ${name} fails the unmarked messages and is reported`, async () => {
      const sender = { send: async (messages: Message[]) => result(messages) as Message[] };
      const { store, outbox, errors } = setup(sender, {
        backoff: { initialDelay: 60_000, maxDelay: 60_000 },
      });
      await seed(store, outbox, 2);
      expect(await outbox.tick()).toMatchObject({ sent: 0, failed: 2 });
      expect(errors).toHaveLength(1);
      expect((errors[0] as SendError).code).toBe("MALFORMED_SEND_RESULT");
    });
  }

  it("counts a message the sender marked as sent even if it left it out of the result", async () => {
    const sender: Sender = {
      async send(messages) {
        for (const m of messages) m.markAsSent();
        return [];
      },
    };
    const { store, outbox, errors } = setup(sender);
    await seed(store, outbox, 2);
    expect(await outbox.tick()).toMatchObject({ sent: 2 });
    expect(errors).toEqual([]);
  });
});

describe("leases", () => {
  it("a relay stalled past its lease cannot overwrite the new owner's outcome", async () => {
    const store = new MemoryStore();
    const stall = gate();
    let stalled = true;
    // A relay whose process froze between sending and recording (GC pause, suspended VM).
    const slowStore: TransactionalStore<MemoryTransaction> = {
      fetchAndLock: (options) => store.fetchAndLock(options),
      markAsSent: async (token, ids) => {
        if (stalled) await stall.promise;
        return store.markAsSent(token, ids);
      },
      updateRetryCount: (token, updates) => store.updateRetryCount(token, updates),
      markAsDead: (token, updates) => store.markAsDead(token, updates),
      stats: () => store.stats(),
      listDead: (options) => store.listDead(options),
      requeueDead: (ids) => store.requeueDead(ids),
      addMessage: (tx, message) => store.addMessage(tx, message),
      withTransaction: (fn) => store.withTransaction(fn),
    };
    const first = recordingSender();
    const second = recordingSender();
    const errorsA: unknown[] = [];
    const relayA = new Outbox(slowStore, first, {
      sendTimeout: 10,
      leaseDuration: 40,
      onError: (e) => errorsA.push(e),
    });
    const relayB = new Outbox(store, second, { sendTimeout: 10, leaseDuration: 40 });
    await seed(store, relayA as Outbox<unknown>, 1);

    const tickA = relayA.tick();
    await new Promise((resolve) => setTimeout(resolve, 80));
    stalled = false;
    const resultB = await relayB.tick();
    expect(resultB).toMatchObject({ sent: 1 });
    stall.open();
    const resultA = await tickA;
    expect(resultA).toMatchObject({ sent: 0 });
    expect(errorsA).toHaveLength(1);
    expect((errorsA[0] as { code: string }).code).toBe("LEASE_LOST");
    expect(rows(first.delivered)).toEqual(["1"]);
    expect(second.delivered).toEqual(first.delivered);
    expect(await store.stats()).toEqual({ pending: 0, inFlight: 0, dead: 0, oldestPendingAt: null });
  });

  it("a message whose attempts all ended in lost leases dies instead of being sent again", async () => {
    const store = new MemoryStore();
    const sender = recordingSender();
    const outbox = new Outbox(store, sender, { maxRetries: 1, sendTimeout: 5, leaseDuration: 10 });
    await seed(store, outbox as Outbox<unknown>, 1);
    // Two relays that crashed after claiming: the claims are never recorded.
    for (let i = 0; i < 2; i++) {
      await store.fetchAndLock({ batchSize: 10, leaseDuration: 10, ordering: "none" });
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    expect(await outbox.tick()).toMatchObject({ sent: 0, dead: 1 });
    expect(sender.attempts).toEqual([]);
    expect((await store.listDead())[0]!.lastError).toMatch(/attempts exhausted/);
  });

  it("overlapping ticks on one instance never send a message twice", async () => {
    const sender: Sender & { ids: string[] } = {
      ids: [],
      async send(messages) {
        await new Promise((resolve) => setTimeout(resolve, 1));
        for (const m of messages) {
          this.ids.push(m.id);
          m.markAsSent();
        }
        return messages;
      },
    };
    const { store, outbox } = setup(sender, { batchSize: 4 });
    await seed(store, outbox, 100);
    const results = await Promise.all([outbox.tick(), outbox.tick(), outbox.tick()]);
    expect(results.reduce((sum, r) => sum + r.sent, 0)).toBe(100);
    expect(sender.ids).toHaveLength(100);
    expect(new Set(sender.ids).size).toBe(100);
  });
});

describe('ordering: "key"', () => {
  it("keeps per-key order through failures and retries", async () => {
    const order: string[] = [];
    const failedOnce = new Set<string>();
    const sender = recordingSender((m) => {
      const value = new TextDecoder().decode(m.value);
      if (value.endsWith("1") && !failedOnce.has(value)) {
        failedOnce.add(value);
        return m.markAsFailed({ retryAfter: 0 });
      }
      order.push(value);
      m.markAsSent();
    });
    const { store, outbox } = setup(sender, { ordering: "key", batchSize: 10 });
    await store.transaction(async (tx) => {
      for (const value of ["a1", "b1", "a2", "a3", "b2", "c1"]) {
        await outbox.addMessage(tx, { key: value[0]!, value });
      }
    });
    await outbox.tick();
    const per = (key: string) => order.filter((v) => v.startsWith(key));
    expect(per("a")).toEqual(["a1", "a2", "a3"]);
    expect(per("b")).toEqual(["b1", "b2"]);
    expect(per("c")).toEqual(["c1"]);
  });
});
