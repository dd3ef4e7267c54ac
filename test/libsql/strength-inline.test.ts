/**
 * A relay pass whose sent mark cannot be written into SQL (a claim token edited by hand to one
 * with quotes) still records it, in both retention modes: with sent rows kept the mark is one
 * statement, and it must then run prepared. Written against a mutation survivor (TESTING.md).
 */
import { afterAll, describe, expect, it } from "vitest";
import { commitMessages } from "../conformance/store-conformance.ts";
import { dbPath, openStore, rowId, tempDir } from "./helpers.ts";

const tmp = tempDir();
afterAll(() => tmp.cleanup());

const claim = { batchSize: 10, leaseDuration: 30_000, ordering: "none" } as const;

describe("LibsqlStore sent mark with a token that cannot be inlined", () => {
  for (const sent of ["keep", "delete"] as const) {
    it(`records it with sent rows ${sent === "keep" ? "kept" : "deleted"}`, async () => {
      const { client, store, close } = await openStore(`file:${dbPath(tmp.dir)}`, {
        retention: sent === "keep" ? { sent: "keep", keepFor: 60_000 } : { sent: "delete" },
      });
      try {
        await commitMessages(store, [
          { key: "a", value: "a" },
          { key: "b", value: "b" },
        ]);
        const { messages } = await store.fetchAndLock(claim);
        const odd = "it's mine; --";
        await client.execute({
          sql: `UPDATE "${store.table}" SET claim_token = ?1`,
          args: [odd],
        });
        const next = await store.recordAndFetch(
          { token: odd, sent: messages.map((m) => m.id), retry: [], dead: [] },
          claim,
        );
        expect(next.recorded).toEqual({ sent: 2, failed: 0, dead: 0 });
        expect(next.claim.messages).toEqual([]);
        expect(await store.stats()).toMatchObject({ pending: 0, inFlight: 0, dead: 0 });
        const rows = await client.execute(`SELECT id, status FROM "${store.table}" ORDER BY id`);
        const last = rowId(messages[1]!.id);
        // Kept: both rows stay as sent; deleted: only the newest stays, as a tombstone.
        expect(rows.rows.map((r) => String(r.id))).toEqual(
          sent === "keep" ? [rowId(messages[0]!.id), last] : [last],
        );
      } finally {
        await close();
      }
    });
  }
});
