/**
 * D1Store's migrate() of a table whose version row went missing, on Miniflare's real D1 (a
 * database without `sqlite_sequence`, as every D1 database whose tables have no
 * AUTOINCREMENT). Regression test for the legacy bound's statement, which SQLite refused
 * ("misuse of aggregate function max()") there (/work/wt/mutsqlite.figures.md).
 */
import { describe, expect, it } from "vitest";
import { D1Store } from "../../adapters/d1.ts";
import { prepareMessage } from "../../mod.ts";
import { d1ForFile, freshTable } from "./helpers.ts";

const d1 = d1ForFile();
const claim = { batchSize: 10, leaseDuration: 30_000, ordering: "none" } as const;
const message = (key: string) => prepareMessage({ key, value: key }, { maxMessageBytes: 64 });

describe("D1Store migrate() of a table whose version row went missing", () => {
  it("succeeds; the rows keep bare ids, new rows get a namespace", { timeout: 60_000 }, async () => {
    const table = freshTable();
    const first = new D1Store(d1.db, { table });
    await first.migrate();
    await first.addMessage(d1.db, message("a"));
    await first.addMessage(d1.db, message("b"));
    const sequence = await d1.db
      .prepare("SELECT name FROM sqlite_schema WHERE name = 'sqlite_sequence'")
      .all();
    expect(sequence.results).toEqual([]);
    await d1.db.prepare("DELETE FROM edge_outbox_schema WHERE table_name = ?1").bind(table).run();

    const second = new D1Store(d1.db, { table });
    await second.migrate();
    await second.addMessage(d1.db, message("c"));
    const { messages } = await second.fetchAndLock(claim);
    const ids = messages.map((m) => [m.key, m.id]);
    expect(ids.slice(0, 2)).toEqual([
      ["a", "1"],
      ["b", "2"],
    ]);
    expect(ids[2]?.[0]).toBe("c");
    expect(ids[2]?.[1]).toMatch(/^msg_[0-9a-z]+_3$/);
  });
});
