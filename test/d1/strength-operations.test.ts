/**
 * What each D1Store operation says when D1 fails it, on Miniflare's real D1: the operator reads
 * which operation failed ("D1 failed while recording sent messages: ...") and the migrate()
 * hint of a missing table. The table is dropped under a store that has used it, so every
 * statement fails for real. Written against mutation survivors of adapters/d1.ts (TESTING.md).
 */
import { describe, expect, it } from "vitest";
import { type D1Database, D1Store } from "../../adapters/d1.ts";
import { type ClaimOptions, prepareMessage, StoreError, ValidationError } from "../../mod.ts";
import { d1ForFile, freshTable } from "./helpers.ts";

const d1 = d1ForFile();
const none: ClaimOptions = { batchSize: 10, leaseDuration: 30_000, ordering: "none" };
const message = (key: string) => prepareMessage({ key, value: "{}" }, { maxMessageBytes: 1 << 20 });

/** A store whose table held a claimed message, then was dropped: its token and that id. */
async function droppedUnder(db: D1Database) {
  const store = new D1Store(db, { table: freshTable() });
  await store.migrate();
  await store.addMessage(db, message("k"));
  const claim = await store.fetchAndLock(none);
  const id = claim.messages[0]!.id;
  await db.prepare(`DROP TABLE ${store.table}`).run();
  return { store, token: claim.token, id };
}

describe("D1Store's failures name the operation", () => {
  it("each operation on a dropped table fails with a StoreError naming it and the migrate() hint", async () => {
    const { db } = d1;
    const { store, token, id } = await droppedUnder(db);
    const retry = { id, availableAt: new Date(), delay: 0, error: "HTTP 503" };
    const operations: [string, () => Promise<unknown>][] = [
      ["adding a message", () => store.addMessage(db, message("a"))],
      ["committing a transaction", () => store.withTransaction((tx) => store.addMessage(tx, message("b")))],
      ["claiming messages", () => store.fetchAndLock(none)],
      ["creating the per-key index", () => store.fetchAndLock({ ...none, ordering: "key" })],
      [
        "recording outcomes and claiming",
        () => store.recordAndFetch({ token, sent: [id], retry: [], dead: [] }, none),
      ],
      ["recording sent messages", () => store.markAsSent(token, [id])],
      ["recording failed messages", () => store.updateRetryCount(token, [retry])],
      ["recording dead messages", () => store.markAsDead(token, [{ id, error: "HTTP 410" }])],
      ["releasing claimed messages", () => store.release(token, [id])],
      ["reading stats", () => store.stats()],
      ["listing dead messages", () => store.listDead()],
      ["requeueing dead messages", () => store.requeueDead()],
      ["requeueing dead messages", () => store.requeueDead([id])],
      ["purging sent messages", () => store.purgeSent()],
      ["purging sent messages", () => store.purgeSent(new Date())],
    ];
    for (const [doing, operation] of operations) {
      const error = await operation().then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error, doing).toBeInstanceOf(StoreError);
      expect((error as Error).message, doing).toMatch(
        new RegExp(
          `^D1 failed while ${doing}: .*no such table.*\\(did you run \`await store\\.migrate\\(\\)\`\\?\\)$`,
        ),
      );
    }
  });

  it("purgeSent refuses an invalid Date before it reaches D1", async () => {
    const store = new D1Store(d1.db, { table: freshTable() });
    await store.migrate();
    await expect(store.purgeSent(new Date(Number.NaN))).rejects.toThrow(
      new ValidationError("olderThan must be a valid Date, got Invalid Date"),
    );
    await expect(store.purgeSent("yesterday" as unknown as Date)).rejects.toThrow(
      "olderThan must be a valid Date, got yesterday",
    );
  });

  it("a sent row is deleted at once by default and kept for purgeSent with sent: keep", async () => {
    const { db } = d1;
    for (const [retention, kept] of [
      [undefined, 0],
      [{ sent: "keep", keepFor: 3_600_000 }, 2],
    ] as const) {
      const store = new D1Store(db, { table: freshTable(), retention });
      await store.migrate();
      for (const key of ["a", "b", "c"]) await store.addMessage(db, message(key));
      const claim = await store.fetchAndLock(none);
      expect(
        await store.markAsSent(
          claim.token,
          claim.messages.map((m) => m.id),
        ),
      ).toBe(3);
      // Kept rows are what a purge up to a moment past now deletes (all but the newest row,
      // which a purge always leaves).
      expect(await store.purgeSent(new Date(Date.now() + 60_000))).toBe(kept);
    }
  });

  it("insertStatement gives a statement that writes the message in the caller's own db.batch", async () => {
    const { db } = d1;
    const store = new D1Store(db, { table: freshTable() });
    await store.migrate();
    const order = db.prepare("SELECT 1");
    await db.batch([order, store.insertStatement(message("order:1"))]);
    const claim = await store.fetchAndLock(none);
    expect(claim.messages.map((m) => [m.key, m.text()])).toEqual([["order:1", "{}"]]);
  });
});
