/**
 * A relay pass's counts on a remote client (Hrana over HTTP to the stand-in in front of a real
 * file), where each statement of the sent mark has its own result: the older tombstone a sent
 * mark clears is not the mark's. Written against a mutation survivor (TESTING.md).
 */
import { createClient } from "@libsql/client";
import { afterAll, describe, expect, it } from "vitest";
import { LibsqlStore } from "../../adapters/libsql.ts";
import { commitMessages } from "../conformance/store-conformance.ts";
import { startHranaServer } from "../support/hrana-server.ts";
import { dbPath, tempDir } from "./helpers.ts";

const tmp = tempDir();
afterAll(() => tmp.cleanup());

const claim = { batchSize: 10, leaseDuration: 30_000, ordering: "none" } as const;

describe("LibsqlStore on a remote client: pass counts", () => {
  it("counts only the rows a pass marks, not the tombstone it clears, nor other marks as sent", async () => {
    const server = await startHranaServer(dbPath(tmp.dir));
    const client = createClient({ url: server.url });
    try {
      const store = new LibsqlStore(client);
      await store.migrate();
      await commitMessages(store, [{ key: "a", value: "a" }]);
      const first = await store.fetchAndLock(claim);
      // a is the newest row: it stays as a tombstone.
      const second = await store.recordAndFetch(
        { token: first.token, sent: [first.messages[0]!.id], retry: [], dead: [] },
        claim,
      );
      expect(second.recorded).toEqual({ sent: 1, failed: 0, dead: 0 });
      await commitMessages(
        store,
        ["b", "c", "d"].map((key) => ({ key, value: key })),
      );
      const third = await store.fetchAndLock(claim);
      const [b, c, d] = third.messages;
      // b's mark deletes a's tombstone on the way, which is not counted.
      const fourth = await store.recordAndFetch(
        {
          token: third.token,
          sent: [b!.id],
          retry: [{ id: c!.id, delay: 60_000, availableAt: new Date() }],
          dead: [],
        },
        claim,
      );
      expect(fourth.recorded).toEqual({ sent: 1, failed: 1, dead: 0 });
      const fifth = await store.recordAndFetch(
        { token: third.token, sent: [], retry: [], dead: [{ id: d!.id, error: "x" }] },
        claim,
      );
      expect(fifth.recorded).toEqual({ sent: 0, failed: 0, dead: 1 });
      const rows = await client.execute("SELECT key, status FROM outbox_messages ORDER BY id");
      expect(rows.rows.map((r) => [r.key, r.status])).toEqual([
        ["c", 0],
        ["d", 3],
      ]);
    } finally {
      client.close();
      await server.close();
    }
  });
});
