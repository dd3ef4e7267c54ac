/**
 * What a caller of `Outbox` can see at its edges: the sender window it accepts and how it words
 * a refusal, and a tick with bad options behind a drain already running (it rejects, never
 * passes for an idle tick). Written against mutants that the older suites let survive.
 */
import { describe, expect, it } from "vitest";
import { MemoryStore } from "../adapters/memory.ts";
import { type Message, Outbox, type Sender, ValidationError } from "../mod.ts";
import { gate, recordingSender, waitFor } from "./support/senders.ts";

const send = async (messages: Message[]) => messages;

describe("the sender's window", () => {
  it("accepts 1 and 10000, the ends of its range, and relays through them", async () => {
    for (const window of [1, 10_000]) {
      const store = new MemoryStore();
      const inner = recordingSender();
      const sender: Sender = { window, send: (messages, signal) => inner.send(messages, signal) };
      const outbox = new Outbox(store, sender);
      await store.transaction((tx) => outbox.addMessage(tx, { key: "k", value: "v" }));
      expect(await outbox.tick()).toMatchObject({ sent: 1 });
    }
  });

  it("names the value or the type it refuses", () => {
    const refuse = (window: unknown) => () =>
      new Outbox(new MemoryStore(), { window, send } as unknown as Sender);
    expect(refuse(0)).toThrow(
      "the sender's window (Sender.window; httpSender's concurrency) must be an integer from 1 to 10000, got 0",
    );
    expect(refuse(10_001)).toThrow(/must be an integer from 1 to 10000, got 10001$/);
    expect(refuse("8")).toThrow(/must be an integer from 1 to 10000, got string$/);
    expect(refuse(null)).toThrow(/got object$/);
    // A number that is not a whole number of slots.
    expect(refuse(1.5)).toThrow(/must be an integer from 1 to 10000, got 1.5$/);
  });

  it("a window getter that throws is refused with the getter's error as the cause", () => {
    const boom = new Error("no window here");
    const sender = {
      send,
      get window(): number {
        throw boom;
      },
    };
    let caught: unknown;
    try {
      new Outbox(new MemoryStore(), sender);
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(ValidationError);
    expect((caught as ValidationError).message).toBe(
      "the sender's window (Sender.window; httpSender's concurrency) threw when read",
    );
    expect((caught as ValidationError).cause).toBe(boom);
  });
});

describe("a tick behind a drain already running", () => {
  it("with bad options rejects once its turn comes, never resolves as an idle tick", async () => {
    const release = gate();
    let inSend = false;
    const sender: Sender = {
      async send(messages) {
        inSend = true;
        await release.promise;
        for (const m of messages) m.markAsSent();
        return messages;
      },
    };
    const store = new MemoryStore();
    const outbox = new Outbox(store, sender, { onError: () => {} });
    await store.transaction((tx) => outbox.addMessage(tx, { key: "k", value: "v" }));
    const first = outbox.tick();
    await waitFor(() => inSend);
    const badBudget = outbox.tick({ budgetMs: -1 });
    const nanBudget = outbox.tick({ budgetMs: Number.NaN });
    const infiniteBudget = outbox.tick({ budgetMs: Number.POSITIVE_INFINITY });
    const badSignal = outbox.tick({ signal: "stop" as unknown as AbortSignal });
    const badSignalGoodBudget = outbox.tick({ signal: {} as AbortSignal, budgetMs: 60_000 });
    const goodSignalBadBudget = outbox.tick({ signal: new AbortController().signal, budgetMs: -5 });
    release.open();
    expect(await first).toMatchObject({ batches: 1, sent: 1 });
    await expect(badBudget).rejects.toBeInstanceOf(ValidationError);
    await expect(nanBudget).rejects.toBeInstanceOf(ValidationError);
    // An infinite budget is valid: no bound on the wait, so it waited its turn.
    expect(await infiniteBudget).toMatchObject({ batches: 0 });
    await expect(badSignal).rejects.toBeInstanceOf(ValidationError);
    await expect(badSignalGoodBudget).rejects.toBeInstanceOf(ValidationError);
    await expect(goodSignalBadBudget).rejects.toBeInstanceOf(ValidationError);
  });

  it("with a budget of 0 gives up at once and runs no pass later", async () => {
    const release = gate();
    const sends: number[] = [];
    const sender: Sender = {
      async send(messages) {
        sends.push(messages.length);
        await release.promise;
        for (const m of messages) m.markAsSent();
        return messages;
      },
    };
    const store = new MemoryStore();
    const outbox = new Outbox(store, sender, { batchSize: 1 });
    await store.transaction((tx) => outbox.addMessage(tx, { key: "a", value: "1" }));
    const first = outbox.tick({ budgetMs: 60_000 });
    await waitFor(() => sends.length === 1);
    const zero = await outbox.tick({ budgetMs: 0 });
    expect(zero).toMatchObject({ batches: 0, sent: 0 });
    await store.transaction((tx) => outbox.addMessage(tx, { key: "b", value: "2" }));
    release.open();
    expect(await first).toMatchObject({ batches: 2, sent: 2 });
    expect(sends).toEqual([1, 1]);
  });
});

describe("a tick's budget beyond what one timer can hold, behind a drain already running", () => {
  // The first tick's budget: its first claim must come within it (no pass starts after it), so
  // it leaves room for a loaded machine; the tests wait past it before releasing that tick.
  const FIRST_BUDGET = 250;
  const pastFirstBudget = () => new Promise((resolve) => setTimeout(resolve, FIRST_BUDGET + 50));

  /**
   * An outbox whose first tick holds its send until `release.open()`; its budget
   * ({@link FIRST_BUDGET} ms) is spent by then, so it relays only that one message.
   */
  async function held() {
    const release = gate();
    const sends: string[] = [];
    const sender: Sender = {
      async send(messages) {
        sends.push(...messages.map((m) => m.key));
        if (sends.length === 1) await release.promise;
        for (const m of messages) m.markAsSent();
        return messages;
      },
    };
    const store = new MemoryStore();
    // sendTimeout well past the tests' waits: the held send ends only when released.
    const outbox = new Outbox(store, sender, { batchSize: 1, sendTimeout: 10_000 });
    const add = (key: string) => store.transaction((tx) => outbox.addMessage(tx, { key, value: key }));
    await add("a");
    const first = outbox.tick({ budgetMs: FIRST_BUDGET });
    await waitFor(() => sends.length === 1);
    return { release, sends, add, first, outbox };
  }

  // setTimeout runs a delay above 2^31 - 1 ms after 1 ms: such a budget must not end the wait.
  it.each([
    ["2^32 ms", { budgetMs: 2 ** 32 }],
    ["60 s", { budgetMs: 60_000 }],
    ["a signal alone", { signal: new AbortController().signal }],
  ])("%s, not yet spent: waits its turn and then relays", async (_, options) => {
    const { release, sends, add, first, outbox } = await held();
    const second = outbox.tick(options);
    await add("b");
    await pastFirstBudget();
    release.open();
    expect(await first).toMatchObject({ batches: 1, sent: 1 });
    expect(await second).toMatchObject({ batches: 1, sent: 1 });
    expect(sends).toEqual(["a", "b"]);
  });

  it("an infinite budget leaves the signal in force: its abort ends the wait at once", async () => {
    const { release, add, first, outbox } = await held();
    const abort = new AbortController();
    let settled = false;
    const second = outbox.tick({ signal: abort.signal, budgetMs: Number.POSITIVE_INFINITY });
    void second.then(() => {
      settled = true;
    });
    await add("b");
    abort.abort();
    await waitFor(() => settled, 2_000);
    expect(await second).toMatchObject({ batches: 0, sent: 0 });
    await pastFirstBudget();
    release.open();
    expect(await first).toMatchObject({ batches: 1, sent: 1 });
  });
});

describe("a tick with bad options behind a drain already running", () => {
  async function running() {
    const release = gate();
    let inSend = false;
    const sender: Sender = {
      async send(messages) {
        inSend = true;
        await release.promise;
        for (const m of messages) m.markAsSent();
        return messages;
      },
    };
    const store = new MemoryStore();
    const outbox = new Outbox(store, sender, { onError: () => {}, sendTimeout: 10_000 });
    await store.transaction((tx) => outbox.addMessage(tx, { key: "k", value: "v" }));
    const first = outbox.tick();
    await waitFor(() => inSend);
    return { release, first, outbox };
  }

  // The good half of bad options must not bound the wait: the tick rejects, never gives up.
  it("rejects even when its signal aborts or its budget ends first", async () => {
    const { release, first, outbox } = await running();
    const abort = new AbortController();
    const ticks = [
      outbox.tick({ signal: abort.signal, budgetMs: -1 }),
      outbox.tick({ signal: abort.signal, budgetMs: "5" as unknown as number }),
      outbox.tick({ signal: {} as AbortSignal, budgetMs: 5 }),
    ];
    abort.abort();
    await new Promise((resolve) => setTimeout(resolve, 30));
    release.open();
    expect(await first).toMatchObject({ sent: 1 });
    for (const tick of ticks) await expect(tick).rejects.toBeInstanceOf(ValidationError);
  });

  it("options whose getter throws reject with that error", async () => {
    const { release, first, outbox } = await running();
    const boom = new Error("no options here");
    const options = {
      get signal(): AbortSignal {
        throw boom;
      },
    };
    const tick = outbox.tick(options);
    release.open();
    expect(await first).toMatchObject({ sent: 1 });
    await expect(tick).rejects.toBe(boom);
  });
});

describe("maxMessageBytes", () => {
  it("is the Outbox's own limit for addMessage, not the default", async () => {
    const store = new MemoryStore();
    const outbox = new Outbox(store, { send: async (m) => m }, { maxMessageBytes: 1024 }) as Outbox<unknown>;
    const write = (value: string) => store.transaction((tx) => outbox.addMessage(tx, { key: "k", value }));
    await expect(write("x".repeat(2000))).rejects.toThrow(ValidationError);
    await write("x".repeat(100));
    // The Outbox's stats are its store's.
    expect(await outbox.stats()).toEqual(await store.stats());
    expect(await outbox.stats()).toMatchObject({ pending: 1, dead: 0 });
  });
});
