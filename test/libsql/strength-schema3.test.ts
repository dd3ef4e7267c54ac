/**
 * LibsqlStore's migrate() and first use around schema version 3, on real database files:
 * a table whose version row went missing in a database that never had AUTOINCREMENT (no
 * `sqlite_sequence`), and a failure to read the namespace that is not a missing table. Written
 * against mutation survivors of `adapters/libsql/migrate.ts` (/work/wt/mutsqlite.figures.md).
 */
import { createClient } from "@libsql/client";
import { afterAll, describe, expect, it } from "vitest";
import { LibsqlStore } from "../../adapters/libsql.ts";
import { prepareMessage, StoreError } from "../../mod.ts";
import { dbPath, openStore, tempDir } from "./helpers.ts";

const tmp = tempDir();
afterAll(() => tmp.cleanup());

const claim = { batchSize: 10, leaseDuration: 30_000, ordering: "none" } as const;
const message = (key: string) => prepareMessage({ key, value: key }, { maxMessageBytes: 64 });

describe("LibsqlStore migrate() of a table whose version row went missing", () => {
  it("succeeds in a database without sqlite_sequence; the rows keep bare ids, new rows get a namespace", async () => {
    const url = `file:${dbPath(tmp.dir)}`;
    const first = await openStore(url);
    await first.store.addMessage(first.client, message("a"));
    await first.store.addMessage(first.client, message("b"));
    // Schema version 3 has no AUTOINCREMENT, so this database never had sqlite_sequence.
    const sequence = await first.client.execute(
      "SELECT name FROM sqlite_schema WHERE name = 'sqlite_sequence'",
    );
    expect(sequence.rows).toEqual([]);
    await first.client.execute("DELETE FROM edge_outbox_schema");
    await first.close();

    const second = await openStore(url);
    try {
      await second.store.addMessage(second.client, message("c"));
      const { messages } = await second.store.fetchAndLock(claim);
      const ids = messages.map((m) => [m.key, m.id]);
      // Receivers saw "a" and "b" under some id before; rows up to the recorded bound keep
      // their bare ids, the row added after the migration is namespaced.
      expect(ids.slice(0, 2)).toEqual([
        ["a", "1"],
        ["b", "2"],
      ]);
      expect(ids[2]?.[0]).toBe("c");
      expect(ids[2]?.[1]).toMatch(/^msg_[0-9a-z]+_3$/);
      const version = await second.client.execute("SELECT version, legacy_max_id FROM edge_outbox_schema");
      expect(version.rows.map((r) => [Number(r.version), Number(r.legacy_max_id)])).toEqual([[3, 2]]);
    } finally {
      await second.close();
    }
  });
});

describe("LibsqlStore first use that cannot read the namespace", () => {
  it("fails with the read's own error, not a request to run migrate()", async () => {
    const url = `file:${dbPath(tmp.dir)}`;
    const opened = await openStore(url);
    await opened.close();
    const closed = createClient({ url });
    closed.close();
    const error = await new LibsqlStore(closed, { wal: false }).fetchAndLock(claim).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(StoreError);
    expect((error as StoreError).message).not.toMatch(/migrate/);
    expect((error as StoreError).message).toMatch(/reading the id namespace/);
  });
});

describe("LibsqlStore migrate() when the state index's name is a table's", () => {
  it("fails with a StoreError that names the taken name and what to do, nothing made", async () => {
    const url = `file:${dbPath(tmp.dir)}`;
    const client = createClient({ url });
    try {
      await client.execute("CREATE TABLE edge_outbox_shadow_state (x)");
      const error = await new LibsqlStore(client, { table: "shadow", wal: false }).migrate().then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(StoreError);
      const stored = error as StoreError;
      expect(stored.retryable).toBe(false);
      expect(stored.cause).toBeDefined();
      expect(stored.message).toMatch(/^libSQL failed while migrating table "shadow"/);
      expect(stored.message).toMatch(/edge_outbox_shadow_state/);
      expect(stored.message).toMatch(
        /; a name the outbox table "shadow" needs is taken by another object in this database: rename that object or choose another outbox table name$/,
      );
      const made = await client.execute("SELECT name FROM sqlite_schema WHERE name = 'shadow'");
      expect(made.rows).toEqual([]);
    } finally {
      client.close();
    }
  });
});
