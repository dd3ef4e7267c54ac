import { describe, expect, it } from "vitest";
import { MemoryStore, type MemoryTransaction } from "../adapters/memory.ts";
import { MAX_ERROR_LENGTH, prepareMessage, ValidationError, wellFormedText } from "../mod.ts";
import { describeStoreConformance } from "./conformance/store-conformance.ts";

describeStoreConformance("MemoryStore", async () => ({ store: new MemoryStore() }));

describe("MemoryStore transactions", () => {
  const message = prepareMessage({ key: "k", value: "v" }, { maxMessageBytes: 10 });

  it("refuses a transaction of another store and one already finished", async () => {
    const a = new MemoryStore();
    const b = new MemoryStore();
    await expect(a.transaction((tx) => b.addMessage(tx, message))).rejects.toBeInstanceOf(ValidationError);
    let leaked: MemoryTransaction | undefined;
    await a.transaction(async (tx) => {
      leaked = tx;
    });
    await expect(a.addMessage(leaked!, message)).rejects.toThrow(/finished/);
    expect((await a.stats()).pending).toBe(0);
  });

  it("returns the callback's value", async () => {
    const store = new MemoryStore();
    expect(await store.transaction(async () => 42)).toBe(42);
  });
});

describe("MemoryStore ids, texts and clock", () => {
  const claim = { batchSize: 10, leaseDuration: 30_000, ordering: "none" } as const;
  const add = (store: MemoryStore, value: string | Uint8Array = "v") =>
    store.transaction(async (tx) =>
      store.addMessage(tx, prepareMessage({ key: "k", value }, { maxMessageBytes: 100 })),
    );

  it("hands out msg_<namespace>_<row> ids, a namespace per store, and accepts them back", async () => {
    const a = new MemoryStore();
    const b = new MemoryStore();
    await add(a);
    await add(a);
    await add(b);
    const fromA = await a.fetchAndLock(claim);
    const fromB = await b.fetchAndLock(claim);
    const [a1, a2] = fromA.messages.map((m) => m.id);
    expect(a1).toMatch(/^msg_[0-9a-z]{16}_1$/);
    expect(a2).toBe(`${a1!.slice(0, -1)}2`);
    // Two outboxes never hand a receiver the same id for different messages.
    expect(fromB.messages[0]!.id).toMatch(/^msg_[0-9a-z]{16}_1$/);
    expect(fromB.messages[0]!.id).not.toBe(a1);
    // Another store's id names nothing here; this store's own ids (or bare row ids) do.
    expect(await a.markAsSent(fromA.token, [fromB.messages[0]!.id])).toBe(0);
    expect(await a.markAsSent(fromA.token, [a1!])).toBe(1);
    expect(await a.markAsDead(fromA.token, [{ id: "2" }])).toBe(1);
    expect(await a.requeueDead([fromB.messages[0]!.id])).toBe(0);
    expect(await a.requeueDead([a2!])).toBe(1);
  });

  it("keeps errors well-formed and at most MAX_ERROR_LENGTH units, cut on a code point", async () => {
    const store = new MemoryStore();
    await add(store);
    await add(store);
    const { token, messages } = await store.fetchAndLock(claim);
    const long = `${"x".repeat(MAX_ERROR_LENGTH - 2)}😀tail`;
    await store.markAsDead(token, [
      { id: messages[0]!.id, error: "bad \uD800 surrogate" },
      { id: messages[1]!.id, error: long },
    ]);
    const [lone, cut] = await store.listDead();
    expect(lone!.lastError).toBe("bad \uFFFD surrogate");
    expect(cut!.lastError!.length).toBeLessThanOrEqual(MAX_ERROR_LENGTH);
    expect(cut!.lastError).toBe(`${"x".repeat(MAX_ERROR_LENGTH - 2)}…`);
    expect(wellFormedText(cut!.lastError!)).toBe(cut!.lastError);
  });

  it("waits a retry's delay on its own clock (availableAt is only the relay's view)", async () => {
    const store = new MemoryStore();
    await add(store);
    const first = await store.fetchAndLock(claim);
    const id = first.messages[0]!.id;
    // A relay whose clock runs an hour ahead: its availableAt is far off, its delay is not.
    const availableAt = new Date(Date.now() + 3_600_000);
    await store.updateRetryCount(first.token, [{ id, availableAt, delay: 150 }]);
    expect((await store.fetchAndLock(claim)).messages).toEqual([]);
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect((await store.fetchAndLock(claim)).messages.map((m) => m.id)).toEqual([id]);
  });

  it("hands every claim its own bytes: a sender writing into value changes nothing stored", async () => {
    const store = new MemoryStore();
    const caller = new Uint8Array([1, 2, 3]);
    await add(store, caller);
    caller[0] = 99;
    const first = await store.fetchAndLock(claim);
    first.messages[0]!.value[1] = 99;
    await store.updateRetryCount(first.token, [
      { id: first.messages[0]!.id, availableAt: new Date(), delay: 0 },
    ]);
    const second = await store.fetchAndLock(claim);
    expect(Array.from(second.messages[0]!.value)).toEqual([1, 2, 3]);
  });

  it("names itself for metrics: `name`, default memory", () => {
    expect(new MemoryStore().name).toBe("memory");
    expect(new MemoryStore({ name: "billing" }).name).toBe("billing");
    expect(() => new MemoryStore({ name: "" })).toThrow(ValidationError);
  });
});
