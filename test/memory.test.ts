import { describe, expect, it } from "vitest";
import { MemoryStore, type MemoryTransaction } from "../adapters/memory.ts";
import { prepareMessage, ValidationError } from "../mod.ts";
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
