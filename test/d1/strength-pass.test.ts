/**
 * D1Store's pass, case by case, on Miniflare's real D1: what a failed read of a claim's large
 * values says, and the counts a pass's marks report. Written against mutation survivors of
 * adapters/d1/pass.ts (TESTING.md).
 */
import { describe, expect, it } from "vitest";
import { type D1Database, D1Store } from "../../adapters/d1.ts";
import { type ClaimOptions, type PreparedMessage, prepareMessage, StoreError } from "../../mod.ts";
import { d1ForFile, freshTable } from "./helpers.ts";

const claim: ClaimOptions = { batchSize: 10, leaseDuration: 30_000, ordering: "none" };
const message = (
  key: string,
  value: string | Uint8Array = "{}",
  headers?: Record<string, string>,
): PreparedMessage => prepareMessage({ key, value, headers }, { maxMessageBytes: 4 << 20 });

const d1 = d1ForFile();

/** The binding, running `after` (once) when a batch has committed and before it returns. */
function afterBatch(db: D1Database): { db: D1Database; after: (fn: () => Promise<unknown>) => void } {
  let next: (() => Promise<unknown>) | undefined;
  return {
    db: {
      prepare: (query) => db.prepare(query),
      batch: async <T = Record<string, unknown>>(statements: Parameters<D1Database["batch"]>[0]) => {
        const results = await db.batch<T>(statements);
        const fn = next;
        next = undefined;
        await fn?.();
        return results;
      },
    },
    after: (fn) => {
      next = fn;
    },
  };
}

describe("D1Store: a claim's large values", () => {
  it("reads values too big for the claim's read by id, more than one group of them, each intact", async () => {
    const table = freshTable();
    const store = new D1Store(d1.db, { table });
    await store.migrate();
    // A batch of 10 carries values up to 100 KB in its read: these six are read by id, 5 at a time.
    const values = Array.from({ length: 6 }, (_, i) => new Uint8Array(150_000).fill(i + 1));
    await store.withTransaction(async (tx) => {
      for (const [i, value] of values.entries()) await store.addMessage(tx, message(`big${i}`, value));
      await store.addMessage(tx, message("small", "{}"));
    });
    const { messages } = await store.fetchAndLock(claim);
    expect(messages.map((m) => m.key)).toEqual([...values.map((_, i) => `big${i}`), "small"]);
    for (const [i, value] of values.entries())
      expect(Buffer.from(messages[i]!.value).equals(Buffer.from(value))).toBe(true);
    expect(new TextDecoder().decode(messages[6]!.value)).toBe("{}");
  });

  it("names the read of large values after the claim when that read fails", async () => {
    const table = freshTable();
    await new D1Store(d1.db, { table }).migrate();
    const watched = afterBatch(d1.db);
    const store = new D1Store(watched.db, { table });
    // A batch of 10 carries values up to 100 KB in its read: this one is read by id after it.
    await store.addMessage(d1.db, message("big", new Uint8Array(150_000).fill(7)));
    await store.stats();
    // The claim's batch commits; the table is gone before the large value is read.
    watched.after(() => d1.db.prepare(`ALTER TABLE "${table}" RENAME TO "${table}_gone"`).run());
    const failure = await store.fetchAndLock(claim).catch((error: unknown) => error);
    expect(failure, String(failure)).toBeInstanceOf(StoreError);
    expect((failure as Error).message).toContain("reading claimed values");
    expect((failure as Error).message).toContain("no such table");
  });
});

describe("D1Store: a claim too big to read", () => {
  it("is halved rounding up: of three whose read is too big, it claims the two that fit", {
    timeout: 120_000,
  }, async () => {
    const store = new D1Store(d1.db, { table: freshTable() });
    await store.migrate();
    // 800 KB headers each: a read of three is 2.4 MB, over D1's 2 MB string limit; two fit.
    await store.withTransaction(async (tx) => {
      for (let i = 0; i < 3; i++)
        await store.addMessage(tx, message(`k${i}`, "{}", { "x-pad": "a".repeat(800_000) }));
    });
    const first = await store.fetchAndLock({ ...claim, batchSize: 3 });
    expect(first.messages.map((m) => m.key)).toEqual(["k0", "k1"]);
    const rest = await store.fetchAndLock({ ...claim, batchSize: 3 });
    expect(rest.messages.map((m) => m.key)).toEqual(["k2"]);
  });
});
