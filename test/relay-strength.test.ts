/**
 * What a caller can see of one pass's verdicts: the errors `onError` gets for a misbehaving
 * sender (which error, naming what), the reason stored with a failed message, and the limits a
 * drain keeps (budget, signal). Written against mutants that the older suites let survive.
 */
import { describe, expect, it, vi } from "vitest";
import { MemoryStore } from "../adapters/memory.ts";
import {
  type Message,
  Outbox,
  type OutboxOptions,
  SendError,
  type Sender,
  SendTimeoutError,
  StoreError,
  ValidationError,
} from "../mod.ts";

function setup(sender: Sender, options: OutboxOptions = {}) {
  const store = new MemoryStore();
  const errors: unknown[] = [];
  const outbox = new Outbox(store, sender, { onError: (e) => errors.push(e), ...options }) as Outbox<unknown>;
  const seed = (count: number) =>
    store.transaction(async (tx) => {
      for (let i = 0; i < count; i++) await outbox.addMessage(tx, { key: `k${i}`, value: `v${i}` });
    });
  return { store, outbox, errors, seed };
}

/** A sender body: `visit` each message (after `first`), then return them. */
function each(messages: Message[], visit: (m: Message) => void, first: () => void = () => {}): Message[] {
  first();
  for (const m of messages) visit(m);
  return messages;
}

// One attempt only: a failed message is dead at once, so its stored reason can be read back.
const oneAttempt: OutboxOptions = { maxRetries: 0 };

describe("a sender's malformed result", () => {
  it("messages it was not given are reported even when it marked all of its own", async () => {
    const sender: Sender = {
      async send(messages) {
        for (const m of messages) m.markAsSent();
        return [...messages, { id: "forged" } as unknown as Message];
      },
    };
    const { outbox, errors, seed, store } = setup(sender);
    await seed(2);
    expect(await outbox.tick()).toMatchObject({ sent: 2, failed: 0, dead: 0 });
    expect(errors).toHaveLength(1);
    expect(errors[0]).toBeInstanceOf(SendError);
    expect((errors[0] as SendError).code).toBe("MALFORMED_SEND_RESULT");
    expect((errors[0] as SendError).message).toMatch(/1 message\(s\) it was not given/);
    expect(await store.stats()).toMatchObject({ pending: 0, inFlight: 0 });
  });

  it("its own messages returned in another order are accepted as they are marked", async () => {
    const sender: Sender = {
      async send(messages) {
        for (const m of messages) m.markAsSent();
        return messages.slice().reverse();
      },
    };
    const { outbox, errors, seed } = setup(sender);
    await seed(3);
    expect(await outbox.tick()).toMatchObject({ sent: 3 });
    expect(errors).toEqual([]);
  });

  it("null is named in the error", async () => {
    const { outbox, errors, seed } = setup({ send: async () => null as unknown as Message[] }, oneAttempt);
    await seed(1);
    await outbox.tick();
    expect((errors[0] as SendError).message).toMatch(/sender returned null, expected the array/);
  });

  it("unmarked messages: the error names their ids and the first one, the others keep their marks", async () => {
    const sender: Sender = {
      async send(messages) {
        messages[0]?.markAsSent();
        return messages;
      },
    };
    const { outbox, errors, seed, store } = setup(sender, oneAttempt);
    await seed(3);
    expect(await outbox.tick()).toMatchObject({ sent: 1, dead: 2 });
    const dead = await store.listDead();
    const deadIds = dead.map((m) => m.id);
    expect(errors).toHaveLength(1);
    const error = errors[0] as SendError;
    expect(error.code).toBe("MALFORMED_SEND_RESULT");
    expect(error.message).toContain(`sender left 2 message(s) unmarked (ids ${deadIds.join(", ")})`);
    expect(error.messageId).toBe(deadIds[0]);
    // The reason stored with each is the error itself.
    for (const m of dead) expect(m.lastError).toMatch(/sender left 2 message\(s\) unmarked/);
  });

  it("an error naming more than five unmarked messages lists the first five ids", async () => {
    const { outbox, errors, seed, store } = setup(
      { send: async (messages) => messages },
      {
        ...oneAttempt,
        batchSize: 7,
      },
    );
    await seed(7);
    await outbox.tick();
    const ids = (await store.listDead()).map((m) => m.id);
    expect(ids).toHaveLength(7);
    const message = (errors[0] as SendError).message;
    expect(message).toContain(`(ids ${ids.slice(0, 5).join(", ")})`);
    expect(message).not.toContain(ids[5] as string);
  });
});

describe("a sender that throws", () => {
  it("a plain error becomes a SendError naming it, kept as cause, stored as the reason", async () => {
    const boom = new TypeError("socket closed");
    const { outbox, errors, seed, store } = setup(
      {
        send: async () => {
          throw boom;
        },
      },
      oneAttempt,
    );
    await seed(1);
    expect(await outbox.tick()).toMatchObject({ dead: 1 });
    expect(errors).toHaveLength(1);
    const error = errors[0] as SendError;
    expect(error).toBeInstanceOf(SendError);
    expect(error.code).toBe("SEND_FAILED");
    expect(error.message).toMatch(/^sender threw: .*socket closed/);
    expect(error.cause).toBe(boom);
    expect((await store.listDead())[0]?.lastError).toMatch(/socket closed/);
  });

  it("one of the library's own errors is reported as it is", async () => {
    const own = new StoreError("disk full", { retryable: false });
    const { outbox, errors, seed } = setup({
      send: async () => {
        throw own;
      },
    });
    await seed(1);
    expect(await outbox.tick()).toMatchObject({ failed: 1 });
    expect(errors).toEqual([own]);
  });

  it("a message the sender did not mark gets a reason even with no batch error", async () => {
    // The sender marks one failed itself and one sent: the failed one keeps its own reason.
    const sender: Sender = {
      async send(messages) {
        messages[0]?.markAsFailed({ error: "receiver said 503" });
        messages[1]?.markAsSent();
        return messages;
      },
    };
    const { outbox, errors, seed, store } = setup(sender, oneAttempt);
    await seed(2);
    expect(await outbox.tick()).toMatchObject({ sent: 1, dead: 1 });
    expect(errors).toEqual([]);
    expect((await store.listDead())[0]?.lastError).toBe("receiver said 503");
  });
});

describe("an aborted send", () => {
  it("the caller's signal is named as the reason, not the timeout, with its reason as cause", async () => {
    const controller = new AbortController();
    const sender: Sender = {
      send: (_messages, signal) =>
        new Promise((_resolve, reject) => {
          signal.addEventListener("abort", () => reject(new Error("fetch aborted")), { once: true });
          setTimeout(() => controller.abort("shutting down"), 20);
        }),
    };
    const { outbox, errors, seed, store } = setup(sender, { ...oneAttempt, sendTimeout: 10_000 });
    await seed(1);
    expect(await outbox.tick({ signal: controller.signal })).toMatchObject({ dead: 1 });
    expect(errors).toHaveLength(1);
    const error = errors[0] as SendError;
    expect(error).not.toBeInstanceOf(SendTimeoutError);
    expect(error.message).toBe("send aborted by the caller's signal");
    expect(error.cause).toBe("shutting down");
    expect((await store.listDead())[0]?.lastError).toMatch(/send aborted by the caller's signal/);
  });

  it("a sender ignoring its signal past sendTimeout fails with a SendTimeoutError", async () => {
    const { outbox, errors, seed, store } = setup(
      { send: () => new Promise(() => {}) },
      {
        ...oneAttempt,
        sendTimeout: 30,
      },
    );
    await seed(1);
    expect(await outbox.tick()).toMatchObject({ dead: 1 });
    expect(errors).toHaveLength(1);
    expect(errors[0]).toBeInstanceOf(SendTimeoutError);
    expect((await store.listDead())[0]?.lastError).toMatch(/sendTimeout \(30 ms\)/);
  });
});

describe("a drain's limits", () => {
  it("budgetMs 0 starts no pass: nothing is claimed or attempted", async () => {
    const sent: string[] = [];
    const { outbox, seed, store } = setup({
      async send(messages) {
        for (const m of messages) {
          sent.push(m.id);
          m.markAsSent();
        }
        return messages;
      },
    });
    await seed(2);
    expect(await outbox.tick({ budgetMs: 0 })).toMatchObject({ batches: 0, sent: 0 });
    expect(sent).toEqual([]);
    expect(await store.stats()).toMatchObject({ pending: 2, inFlight: 0 });
  });

  it("a signal that is not an AbortSignal is refused, naming what it got", async () => {
    const { outbox } = setup({ send: async (m) => m });
    await expect(outbox.tick({ signal: "stop" as never })).rejects.toThrow(
      new ValidationError("signal must be an AbortSignal, got string"),
    );
    await expect(outbox.tick({ signal: null as never })).rejects.toThrow(/got null/);
  });

  it("an already aborted signal starts no pass", async () => {
    const attempts: string[] = [];
    const { outbox, seed, store } = setup({
      async send(messages) {
        for (const m of messages) attempts.push(m.id);
        return messages;
      },
    });
    await seed(1);
    expect(await outbox.tick({ signal: AbortSignal.abort() })).toMatchObject({ batches: 0 });
    expect(attempts).toEqual([]);
    expect(await store.stats()).toMatchObject({ pending: 1, inFlight: 0 });
  });
});

describe("what a pass reports and never does", () => {
  it("a store error rejects the tick with that error", async () => {
    const store = new MemoryStore();
    const failing = new Proxy(store, {
      get(target, property) {
        if (property === "fetchAndLock") {
          return async () => {
            throw new StoreError("disk I/O error", { retryable: false });
          };
        }
        const value = Reflect.get(target, property, target);
        return typeof value === "function" ? value.bind(target) : value;
      },
    });
    const outbox = new Outbox(failing, { send: async (m) => m });
    await expect(outbox.tick()).rejects.toThrow(/disk I\/O error/);
  });

  it("a lost lease names how many of the group's outcomes were lost", async () => {
    const store = new MemoryStore();
    // The database stalls before the sent mark long enough for the lease to end and another
    // relay to claim the rows: the mark then changes nothing.
    const stalling = new Proxy(store, {
      get(target, property) {
        // The separate marks (no record-and-claim in one write), so the stall sits before the mark.
        if (property === "recordAndFetch") return undefined;
        if (property === "markAsSent") {
          return async (token: string, ids: readonly string[]) => {
            await new Promise((resolve) => setTimeout(resolve, 40));
            await target.fetchAndLock({ batchSize: 1, leaseDuration: 60_000, ordering: "none" });
            return target.markAsSent(token, ids);
          };
        }
        const value = Reflect.get(target, property, target);
        return typeof value === "function" ? value.bind(target) : value;
      },
    });
    const errors: unknown[] = [];
    const outbox = new Outbox(
      stalling,
      { send: async (ms) => each(ms, (m) => m.markAsSent()) },
      {
        onError: (e) => errors.push(e),
        sendTimeout: 5,
        leaseDuration: 10,
      },
    ) as Outbox<unknown>;
    await store.transaction(async (tx) => {
      await outbox.addMessage(tx, { key: "a", value: "1" });
      await outbox.addMessage(tx, { key: "b", value: "2" });
    });
    expect(await outbox.tick()).toMatchObject({ sent: 1 });
    expect(errors).toHaveLength(1);
    expect((errors[0] as Error).message).toMatch(/outcome of 1 of 2 message\(s\)/);
  });

  it("a batch of only spent messages dies without calling the sender, even with an empty batch", async () => {
    const store = new MemoryStore();
    const batches: number[] = [];
    const outbox = new Outbox(
      store,
      {
        send: async (ms) =>
          each(
            ms,
            () => {},
            () => batches.push(ms.length),
          ),
      },
      { maxRetries: 0, sendTimeout: 5, leaseDuration: 10 },
    ) as Outbox<unknown>;
    await store.transaction((tx) => outbox.addMessage(tx, { key: "a", value: "1" }));
    // A relay that crashed after claiming: the claim is never recorded.
    await store.fetchAndLock({ batchSize: 10, leaseDuration: 10, ordering: "none" });
    await new Promise((resolve) => setTimeout(resolve, 30));
    expect(await outbox.tick()).toMatchObject({ dead: 1 });
    expect(batches).toEqual([]);
  });

  it("a number returned by the sender is named as such", async () => {
    const errors: unknown[] = [];
    const store = new MemoryStore();
    const outbox = new Outbox(
      store,
      { send: async () => 42 as unknown as Message[] },
      {
        onError: (e) => errors.push(e),
      },
    ) as Outbox<unknown>;
    await store.transaction((tx) => outbox.addMessage(tx, { key: "a", value: "1" }));
    await outbox.tick();
    expect((errors[0] as Error).message).toMatch(/sender returned number, expected/);
  });
});

describe("a claim given back unsent", () => {
  it("a release that fails is reported, and the batch is sent rather than left to wait out its lease", async () => {
    const store = new MemoryStore();
    const controller = new AbortController();
    const broken = new StoreError("connection reset", { retryable: true });
    // The caller aborts while the claim is in flight: the batch must go back unsent.
    const aborting = new Proxy(store, {
      get(target, property) {
        if (property === "fetchAndLock") {
          return async (options: Parameters<MemoryStore["fetchAndLock"]>[0]) => {
            const claim = await target.fetchAndLock(options);
            controller.abort();
            return claim;
          };
        }
        if (property === "release") {
          return async () => {
            throw broken;
          };
        }
        const value = Reflect.get(target, property, target);
        return typeof value === "function" ? value.bind(target) : value;
      },
    });
    const errors: unknown[] = [];
    const attempts: string[] = [];
    const outbox = new Outbox(
      aborting,
      {
        send: async (ms) =>
          each(ms, (m) => {
            attempts.push(m.id);
            m.markAsSent();
          }),
      },
      { onError: (e) => errors.push(e) },
    ) as Outbox<unknown>;
    await store.transaction((tx) => outbox.addMessage(tx, { key: "a", value: "1" }));
    // Not handed back, the batch would expire and its next claim would count a lost attempt:
    // it goes to the sender under sendTimeout alone (not the aborted signal).
    expect(await outbox.tick({ signal: controller.signal })).toMatchObject({ batches: 1, sent: 1 });
    expect(attempts).toHaveLength(1);
    expect(errors).toEqual([broken]);
    expect(await store.stats()).toMatchObject({ inFlight: 0, pending: 0 });
  });
});

describe("the default onError's log", () => {
  it("writes nothing for a batch that was all delivered, one line for one with failures", async () => {
    const lines: unknown[][] = [];
    const spy = vi.spyOn(console, "error").mockImplementation((...parts: unknown[]) => {
      lines.push(parts);
    });
    try {
      const store = new MemoryStore();
      let fail = false;
      const outbox = new Outbox(store, {
        async send(messages) {
          for (const m of messages) {
            if (fail) m.markAsFailed({ error: "receiver said 503" });
            else m.markAsSent();
          }
          return messages;
        },
      }) as Outbox<unknown>;
      await store.transaction((tx) => outbox.addMessage(tx, { key: "a", value: "1" }));
      expect(await outbox.tick()).toMatchObject({ sent: 1 });
      expect(lines).toEqual([]);
      fail = true;
      await store.transaction((tx) => outbox.addMessage(tx, { key: "b", value: "2" }));
      expect(await outbox.tick()).toMatchObject({ failed: 1 });
      expect(lines).toHaveLength(1);
      expect(String(lines[0]?.[1])).toMatch(/delivery failed for 1 of 1 message\(s\).*receiver said 503/);
    } finally {
      spy.mockRestore();
    }
  });
});
