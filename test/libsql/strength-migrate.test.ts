/**
 * What migrate() and a store's first use say about a table they cannot use (the SQLite dialect's
 * checks, `adapters/sqlite/migrate-checks.ts`): a version from a newer edge-outbox, a damaged
 * id namespace, a missing version row, an application's table of that name. Written against
 * mutation survivors (TESTING.md).
 */
import { createClient } from "@libsql/client";
import { afterAll, describe, expect, it } from "vitest";
import { LibsqlStore } from "../../adapters/libsql.ts";
import { StoreError } from "../../mod.ts";
import { dbPath, openStore, tempDir } from "./helpers.ts";

const tmp = tempDir();
afterAll(() => tmp.cleanup());

const claim = { batchSize: 10, leaseDuration: 30_000, ordering: "none" } as const;

/** Runs `use` on a fresh store of the same file (no cached namespace); returns its error. */
async function failure(url: string, use: (store: LibsqlStore) => Promise<unknown>): Promise<StoreError> {
  const client = createClient({ url });
  try {
    const error = await use(new LibsqlStore(client)).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(StoreError);
    expect((error as StoreError).retryable).toBe(false);
    return error as StoreError;
  } finally {
    client.close();
  }
}

describe("LibsqlStore on a table it cannot use", () => {
  it("refuses a table migrated by a newer edge-outbox, in migrate() and on first use", async () => {
    const url = `file:${dbPath(tmp.dir)}`;
    const { client, close } = await openStore(url);
    await client.execute("UPDATE edge_outbox_schema SET version = 4 WHERE table_name = 'outbox_messages'");
    await close();
    const text =
      'table "outbox_messages" has schema version 4, newer than this edge-outbox supports (3); upgrade edge-outbox';
    expect((await failure(url, (store) => store.migrate())).message).toBe(text);
    expect((await failure(url, (store) => store.fetchAndLock(claim))).message).toBe(text);
  });

  it("refuses a damaged id namespace rather than hand out ids receivers cannot deduplicate", async () => {
    const url = `file:${dbPath(tmp.dir)}`;
    const { client, close } = await openStore(url);
    await client.execute(
      "UPDATE edge_outbox_schema SET id_namespace = 'Not-Valid' WHERE table_name = 'outbox_messages'",
    );
    await close();
    for (const use of [(s: LibsqlStore) => s.migrate(), (s: LibsqlStore) => s.fetchAndLock(claim)]) {
      const error = await failure(url, use);
      expect(error.message).toBe(
        'table "outbox_messages" has a damaged id namespace in edge_outbox_schema ("Not-Valid"); restore it: the ids receivers deduplicate on depend on it',
      );
      expect(error.cause).toBeDefined();
    }
  });

  it("tells to run migrate() when the version row is missing or older", async () => {
    const url = `file:${dbPath(tmp.dir)}`;
    const { client, close } = await openStore(url);
    const text =
      'table "outbox_messages" is not migrated to schema version 3 (its version row is missing or older); run `await store.migrate()` once (it upgrades older tables in place)';
    for (const older of [1, 2]) {
      await client.execute({
        sql: "UPDATE edge_outbox_schema SET version = ? WHERE table_name = 'outbox_messages'",
        args: [older],
      });
      expect((await failure(url, (store) => store.fetchAndLock(claim))).message).toBe(text);
    }
    await client.execute("DELETE FROM edge_outbox_schema");
    expect((await failure(url, (store) => store.stats().then(() => store.fetchAndLock(claim)))).message).toBe(
      text,
    );
    await close();
  });

  it("names every column an application's table of that name lacks", async () => {
    const url = `file:${dbPath(tmp.dir)}`;
    const client = createClient({ url });
    await client.execute(
      "CREATE TABLE outbox_messages (ID INTEGER PRIMARY KEY, Key TEXT, value BLOB, note TEXT)",
    );
    client.close();
    expect((await failure(url, (store) => store.migrate())).message).toBe(
      'table "outbox_messages" already exists and is not an edge-outbox table (it lacks headers, created_at, available_at, lease_until, claim_token, retries, status, last_error, sent_at); choose another outbox table name',
    );
  });

  it("names the object that holds an index name it needs", async () => {
    const url = `file:${dbPath(tmp.dir)}`;
    const client = createClient({ url });
    await client.execute("CREATE TABLE other (x)");
    await client.execute("CREATE INDEX edge_outbox_outbox_messages_state ON other (x)");
    client.close();
    expect((await failure(url, (store) => store.migrate())).message).toBe(
      'the name "edge_outbox_outbox_messages_state" that the outbox table "outbox_messages" needs for its index is taken by the index on "other"; rename that object or choose another outbox table name',
    );
  });

  it("names a trigger on the outbox table itself that holds an index name", async () => {
    const url = `file:${dbPath(tmp.dir)}`;
    const { client, close } = await openStore(url);
    await client.execute("DROP INDEX edge_outbox_outbox_messages_state");
    // Without its version row the table is checked again, as one made by an older release.
    await client.execute("DELETE FROM edge_outbox_schema");
    await client.execute(
      "CREATE TRIGGER edge_outbox_outbox_messages_state AFTER INSERT ON outbox_messages BEGIN SELECT 1; END",
    );
    await close();
    expect((await failure(url, (store) => store.migrate())).message).toBe(
      'the name "edge_outbox_outbox_messages_state" that the outbox table "outbox_messages" needs for its index is taken by the trigger on "outbox_messages"; rename that object or choose another outbox table name',
    );
  });
});
