/**
 * MemoryStore as tests and demos rely on it: its refusals (texts and codes), the claim order by
 * message time, what `stats()` counts, a lease lost to a crash, and marks called directly with
 * only `availableAt`. Written against mutants that the older suites let survive.
 */
import { describe, expect, it } from "vitest";
import { MemoryStore } from "../adapters/memory.ts";
import { DEFAULT_MAX_MESSAGE_BYTES, prepareMessage, ValidationError } from "../mod.ts";

const claimOptions = { batchSize: 10, leaseDuration: 60_000, ordering: "none" as const };
const prepared = (key: string) =>
  prepareMessage({ key, value: key }, { maxMessageBytes: DEFAULT_MAX_MESSAGE_BYTES });
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe("MemoryStore", () => {
  it("refuses an empty name, a foreign or finished transaction, and non-array ids, saying why", async () => {
    expect(() => new MemoryStore({ name: "" })).toThrow('name must be a non-empty string, got ""');
    const store = new MemoryStore();
    const other = new MemoryStore();
    let foreign: unknown;
    await other.transaction(async (tx) => {
      foreign = await store.addMessage(tx, prepared("a")).catch((e: unknown) => e);
    });
    expect(foreign).toBeInstanceOf(ValidationError);
    expect(foreign).toMatchObject({
      code: "INVALID_MESSAGE",
      message: "tx must be a MemoryTransaction of this MemoryStore",
    });
    let kept: Parameters<MemoryStore["addMessage"]>[0] | undefined;
    await store.transaction(async (tx) => {
      kept = tx;
    });
    const finished = await store.addMessage(kept!, prepared("b")).catch((e: unknown) => e);
    expect(finished).toMatchObject({ code: "INVALID_MESSAGE" });
    expect((finished as Error).message).toMatch(/^tx is finished/);
    await expect(store.requeueDead("msg_x" as unknown as string[])).rejects.toThrow(
      "ids must be an array of message ids, got string",
    );
  });

  it("claims by message time, oldest first, whatever order the transactions committed in", async () => {
    const store = new MemoryStore();
    await store.transaction(async (early) => {
      await store.addMessage(early, prepared("older"));
      await sleep(5);
      await store.transaction((late) => store.addMessage(late, prepared("newer")));
    });
    const claim = await store.fetchAndLock(claimOptions);
    expect(claim.messages.map((m) => m.key)).toEqual(["older", "newer"]);
  });

  it("stats() counts claimed messages in flight and dates the oldest pending one", async () => {
    const store = new MemoryStore();
    await store.transaction((tx) => store.addMessage(tx, prepared("first")));
    await sleep(5);
    await store.transaction((tx) => store.addMessage(tx, prepared("second")));
    const first = (await store.stats()).oldestPendingAt;
    expect(await store.fetchAndLock({ ...claimOptions, batchSize: 1 })).toMatchObject({
      messages: [{ key: "first" }],
    });
    expect(await store.stats()).toMatchObject({ pending: 1, inFlight: 1, dead: 0, oldestPendingAt: first });
  });

  it("a message whose lease ran out is claimed again with the lost attempt counted and said", async () => {
    const store = new MemoryStore();
    await store.transaction((tx) => store.addMessage(tx, prepared("k")));
    // Long enough that the claim right after it falls inside it even on a loaded machine.
    await store.fetchAndLock({ ...claimOptions, leaseDuration: 500 });
    expect((await store.fetchAndLock(claimOptions)).messages).toHaveLength(0);
    await sleep(550);
    const [again] = (await store.fetchAndLock(claimOptions)).messages;
    expect(again).toMatchObject({ retries: 1, lastError: "lease expired before the outcome was recorded" });
  });

  it("release(token, ids, delay) keeps a message back that long; without delay it is ready at once", async () => {
    const store = new MemoryStore();
    await store.transaction(async (tx) => {
      await store.addMessage(tx, prepared("a"));
      await store.addMessage(tx, prepared("b"));
    });
    const claim = await store.fetchAndLock(claimOptions);
    const [a, b] = claim.messages;
    expect(await store.release(claim.token, [a!.id], 60_000)).toBe(1);
    expect(await store.release(claim.token, [b!.id])).toBe(1);
    expect((await store.fetchAndLock(claimOptions)).messages.map((m) => m.key)).toEqual(["b"]);
  });

  it("updateRetryCount without a usable delay waits until availableAt", async () => {
    const store = new MemoryStore();
    await store.transaction(async (tx) => {
      await store.addMessage(tx, prepared("later"));
      await store.addMessage(tx, prepared("now"));
    });
    const claim = await store.fetchAndLock(claimOptions);
    const [later, now] = claim.messages;
    const future = new Date(Date.now() + 60_000);
    const past = new Date(Date.now() - 60_000);
    expect(
      await store.updateRetryCount(claim.token, [
        { id: later!.id, availableAt: future, delay: Number.NaN },
        { id: now!.id, availableAt: past, delay: -1 },
      ]),
    ).toBe(2);
    expect((await store.fetchAndLock(claimOptions)).messages.map((m) => m.key)).toEqual(["now"]);
  });

  it("refuses a name that is not a string", () => {
    expect(() => new MemoryStore({ name: 5 as never })).toThrow("name must be a non-empty string, got 5");
  });

  it("claims messages of the same time in the order they were added", async () => {
    const store = new MemoryStore();
    const keys = ["a", "b", "c", "d", "e", "f"];
    const at = new Date(1_700_000_000_000);
    await store.transaction(async (tx) => {
      for (const key of keys) await store.addMessage(tx, { ...prepared(key), timestamp: at });
    });
    const claim = await store.fetchAndLock(claimOptions);
    expect(claim.messages.map((m) => m.key)).toEqual(keys);
  });

  it("stats(): a message whose lease ran out is pending again, not in flight", async () => {
    const store = new MemoryStore();
    await store.transaction((tx) => store.addMessage(tx, prepared("k")));
    expect(await store.stats()).toMatchObject({ pending: 1, inFlight: 0 });
    await store.fetchAndLock({ ...claimOptions, leaseDuration: 1 });
    await sleep(10);
    expect(await store.stats()).toMatchObject({ pending: 1, inFlight: 0, dead: 0 });
  });

  it("stats() dates the oldest pending message by its time, not by when it was added", async () => {
    const store = new MemoryStore();
    const older = new Date(1_600_000_000_000);
    await store.transaction(async (tx) => {
      await store.addMessage(tx, prepared("newer"));
      await store.addMessage(tx, { ...prepared("older"), timestamp: older });
    });
    expect((await store.stats()).oldestPendingAt).toEqual(older);
  });

  it("listDead() lists only dead messages, not pending or claimed ones", async () => {
    const store = new MemoryStore();
    await store.transaction(async (tx) => {
      for (const key of ["dead", "claimed", "pending"]) await store.addMessage(tx, prepared(key));
    });
    const claim = await store.fetchAndLock({ ...claimOptions, batchSize: 2 });
    expect(await store.markAsDead(claim.token, [{ id: claim.messages[0]!.id, error: "gone" }])).toBe(1);
    const dead = await store.listDead();
    expect(dead.map((m) => [m.key, m.lastError])).toEqual([["dead", "gone"]]);
  });

  it("a retry mark's usable delay wins over availableAt; an unusable one falls back to it", async () => {
    const store = new MemoryStore();
    const keys = ["zero", "negative", "none", "odd"];
    await store.transaction(async (tx) => {
      for (const key of keys) await store.addMessage(tx, prepared(key));
    });
    const claim = await store.fetchAndLock(claimOptions);
    const [zero, negative, none, odd] = claim.messages.map((m) => m.id);
    const future = new Date(Date.now() + 60_000);
    expect(
      await store.updateRetryCount(claim.token, [
        // delay 0 (retry at once) is usable: availableAt is not consulted.
        { id: zero!, delay: 0, availableAt: future, error: "e" },
        // A negative delay is not: the message waits until availableAt.
        { id: negative!, delay: -1, availableAt: future, error: "e" },
        // Neither given (a direct caller): ready at once, no error text made up.
        { id: none!, delay: undefined } as never,
        { id: odd!, delay: Number.NaN, availableAt: "soon" as never },
      ]),
    ).toBe(4);
    const again = await store.fetchAndLock(claimOptions);
    expect(again.messages.map((m) => [m.key, m.retries, m.lastError])).toEqual([
      ["zero", 1, "e"],
      ["none", 1, undefined],
      ["odd", 1, undefined],
    ]);
  });

  it("a retry mark with only availableAt waits that long, not longer", async () => {
    const store = new MemoryStore();
    await store.transaction((tx) => store.addMessage(tx, prepared("soon")));
    const claim = await store.fetchAndLock(claimOptions);
    const at = new Date(Date.now() + 30);
    await store.updateRetryCount(claim.token, [
      { id: claim.messages[0]!.id, delay: Number.NaN, availableAt: at },
    ]);
    expect((await store.fetchAndLock(claimOptions)).messages).toHaveLength(0);
    await sleep(60);
    expect((await store.fetchAndLock(claimOptions)).messages.map((m) => m.key)).toEqual(["soon"]);
  });
});
