/**
 * The schema: names that cannot collide with what users plausibly have, migrate() failing only
 * with OutboxErrors, the upgrade of a database made by schema version 1, ids unique beyond one
 * table, and ids never handed out twice.
 */
import type { Client } from "@libsql/client";
import { createClient } from "@libsql/client";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { LibsqlStore, SCHEMA_VERSION } from "../../adapters/libsql.ts";
import { Outbox, OutboxError, StoreError } from "../../mod.ts";
import { commitMessages } from "../conformance/store-conformance.ts";
import { recordingSender } from "../support/senders.ts";
import { V2_NAMESPACE, v2Rows, v2Schema } from "../support/sqlite-v2.ts";
import { dbPath, openStore, rowId, tempDir } from "./helpers.ts";

const tmp = tempDir();
afterAll(() => tmp.cleanup());

const claim = { batchSize: 10, leaseDuration: 30_000, ordering: "none" } as const;
const ID = /^msg_[0-9a-z]{16}_[1-9][0-9]*$/;

const clients: Client[] = [];
afterEach(() => {
  for (const client of clients.splice(0)) client.close();
});
function newClient(path = dbPath(tmp.dir)): Client {
  const client = createClient({ url: `file:${path}` });
  clients.push(client);
  return client;
}

async function migrateError(store: LibsqlStore): Promise<StoreError> {
  const error = await store.migrate().then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(OutboxError);
  expect(error).toBeInstanceOf(StoreError);
  return error as StoreError;
}

/** Delivers everything ready through a fresh Outbox; returns the keys delivered. */
async function drain(store: LibsqlStore): Promise<string[]> {
  const keys: string[] = [];
  const sender = recordingSender((m) => {
    keys.push(m.key);
    m.markAsSent();
  });
  await new Outbox(store, sender).tick();
  return keys;
}

describe("LibsqlStore per-key index", () => {
  const byKey = { ...claim, ordering: "key" } as const;
  const keyIndexes = async (client: Client) =>
    (
      await client.execute(
        "SELECT name FROM sqlite_schema WHERE type = 'index' AND name = 'edge_outbox_outbox_messages_key'",
      )
    ).rows.length;

  it("is made by the first claim with ordering key of any store, not by migrate()", async () => {
    const path = dbPath(tmp.dir);
    const client = newClient(path);
    const store = new LibsqlStore(client);
    await store.migrate();
    expect(await keyIndexes(client)).toBe(0);
    await commitMessages(store, [
      { key: "a", value: "1" },
      { key: "a", value: "2" },
      { key: "b", value: "3" },
    ]);
    // Claims without key order leave it out: inserts do not pay for an index nobody reads.
    const none = await store.fetchAndLock(claim);
    await store.release(
      none.token,
      none.messages.map((m) => m.id),
    );
    expect(await keyIndexes(client)).toBe(0);
    // Another process's store, which never ran migrate(), makes it on its first claim by key.
    const other = new LibsqlStore(newClient(path));
    const first = await other.fetchAndLock(byKey);
    expect(first.messages.map((m) => m.text())).toEqual(["1", "3"]);
    expect(await keyIndexes(client)).toBe(1);
    // The index serves the claim's predecessor lookups (a search, not a scan of the table).
    const plan = await client.execute({
      sql: "EXPLAIN QUERY PLAN SELECT 1 FROM outbox_messages AS o WHERE o.status = 0 AND o.key = ?1 AND o.id < ?2",
      args: ["a", 5],
    });
    expect(plan.rows.map((r) => String(r.detail)).join(" | ")).toMatch(
      /USING COVERING INDEX edge_outbox_outbox_messages_key \(key=\? AND rowid<\?\)/,
    );
    // A store that finds it made already claims by key as before; migrate() keeps it.
    await other.markAsSent(
      first.token,
      first.messages.map((m) => m.id),
    );
    const second = await store.fetchAndLock(byKey);
    expect(second.messages.map((m) => m.key)).toEqual(["a"]);
    await store.migrate();
    expect(await keyIndexes(client)).toBe(1);
  });

  it("fails a claim by key with a StoreError when its name is taken after migrate()", async () => {
    const client = newClient();
    const store = new LibsqlStore(client);
    await store.migrate();
    await client.execute("CREATE TABLE edge_outbox_outbox_messages_key (x)");
    const error = await store.fetchAndLock(byKey).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StoreError);
    expect((error as StoreError).message).toMatch(/per-key index/);
    // Claims without key order go on.
    expect((await store.fetchAndLock(claim)).messages).toEqual([]);
  });

  it("is made again when another process drops the table and migrates it again", async () => {
    const path = dbPath(tmp.dir);
    const client = newClient(path);
    const store = new LibsqlStore(client);
    await store.migrate();
    await store.fetchAndLock(byKey);
    expect(await keyIndexes(client)).toBe(1);
    // Another process remakes the table: a new namespace, and no per-key index (migrate() makes none).
    const admin = newClient(path);
    await admin.execute("DROP TABLE outbox_messages");
    await new LibsqlStore(admin).migrate();
    expect(await keyIndexes(client)).toBe(0);
    await commitMessages(new LibsqlStore(admin), [
      { key: "a", value: "1" },
      { key: "a", value: "2" },
    ]);
    // The long-lived store's first claim finds the new namespace; its next claim by key makes the
    // index again (before, it kept believing in the dropped one: every claim scanned the table).
    const first = await store.fetchAndLock(byKey);
    expect(first.messages.map((m) => m.text())).toEqual(["1"]);
    await store.markAsSent(
      first.token,
      first.messages.map((m) => m.id),
    );
    expect((await store.fetchAndLock(byKey)).messages.map((m) => m.text())).toEqual(["2"]);
    expect(await keyIndexes(client)).toBe(1);
    const plan = await client.execute({
      sql: "EXPLAIN QUERY PLAN SELECT 1 FROM outbox_messages AS o WHERE o.status = 0 AND o.key = ?1 AND o.id < ?2",
      args: ["a", 5],
    });
    expect(plan.rows.map((r) => String(r.detail)).join(" | ")).toMatch(
      /USING COVERING INDEX edge_outbox_outbox_messages_key/,
    );
  });

  it("is not made on a table that is not a migrated outbox table; the claim says to run migrate()", async () => {
    const client = newClient();
    // An application's own table, of a name the store was (wrongly) pointed at.
    await client.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY, key TEXT, status INTEGER)");
    for (const table of ["orders", "missing"]) {
      const error = await new LibsqlStore(client, { table }).fetchAndLock(byKey).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(StoreError);
      expect((error as StoreError).message).toMatch(/is not migrated.*store\.migrate\(\)/);
    }
    const indexes = await client.execute("SELECT name FROM sqlite_schema WHERE type = 'index'");
    expect(indexes.rows).toEqual([]);
  });
});

describe("LibsqlStore schema names", () => {
  it.each([
    ["events", "events_key"],
    ["events_key", "events"],
    ["a_ready", "a"],
    ["a_state", "a"],
  ])("keeps outboxes %s and %s apart in one database", async (first, second) => {
    const client = newClient();
    for (const table of [first, second]) await new LibsqlStore(client, { table }).migrate();
    for (const table of [first, second]) {
      const store = new LibsqlStore(client, { table });
      await commitMessages(store, [{ key: table, value: "x" }]);
      expect(await drain(store)).toEqual([table]);
    }
    const indexes = await client.execute(
      "SELECT name, tbl_name FROM sqlite_schema WHERE type = 'index' AND name LIKE 'edge_outbox_%' ORDER BY name",
    );
    // One each: the per-key index comes with the first claim by key (see "per-key index").
    expect(indexes.rows).toHaveLength(2);
    for (const row of indexes.rows)
      expect(String(row.name)).toBe(`edge_outbox_${row.tbl_name}_${String(row.name).split("_").at(-1)}`);
  });

  it("lives beside application tables named like version 1's indexes (orders_sent, orders_key)", async () => {
    const client = newClient();
    await client.executeMultiple(
      "CREATE TABLE orders_sent (id INTEGER PRIMARY KEY); CREATE TABLE orders_key (k TEXT); CREATE INDEX orders_ready ON orders_key (k)",
    );
    const store = new LibsqlStore(client, { table: "orders" });
    await store.migrate();
    await commitMessages(store, [{ key: "o", value: "x" }]);
    expect(await drain(store)).toEqual(["o"]);
    // The application's objects are untouched.
    const theirs = await client.execute(
      "SELECT name FROM sqlite_schema WHERE name IN ('orders_sent', 'orders_key', 'orders_ready') ORDER BY name",
    );
    expect(theirs.rows.map((r) => r.name)).toEqual(["orders_key", "orders_ready", "orders_sent"]);
  });

  it("fails with a StoreError, never a raw libSQL error, when a name it needs is taken", async () => {
    const client = newClient();
    await client.executeMultiple(`
      CREATE TABLE invoices (id INTEGER PRIMARY KEY, total INTEGER);
      CREATE TABLE other (x);
      CREATE INDEX edge_outbox_taken_state ON other (x);
      CREATE TABLE edge_outbox_blocked_key (x);
      CREATE VIEW a_view AS SELECT 1 AS x;`);
    const appTable = await migrateError(new LibsqlStore(client, { table: "invoices" }));
    expect(appTable.message).toMatch(/"invoices" already exists and is not an edge-outbox table/);
    const index = await migrateError(new LibsqlStore(client, { table: "taken" }));
    expect(index.message).toMatch(/"edge_outbox_taken_state".*taken by the index on "other"/);
    const table = await migrateError(new LibsqlStore(client, { table: "blocked" }));
    expect(table.message).toMatch(/edge_outbox_blocked_key/);
    expect(table.message).toMatch(/choose another outbox table name/);
    const view = await migrateError(new LibsqlStore(client, { table: "a_view" }));
    expect(view.message).toMatch(/a_view/);
    // Nothing half-made: no table of the refused ones was created, and no version recorded.
    const versions = await client.execute("SELECT table_name FROM edge_outbox_schema");
    expect(versions.rows).toEqual([]);
    const closed = createClient({ url: `file:${dbPath(tmp.dir)}` });
    closed.close();
    expect((await migrateError(new LibsqlStore(closed))).code).toBe("STORE_ERROR");
  });
});

/**
 * Version 1's DDL, verbatim as edge-outbox ran it before schema version 2 (kept here, not in
 * the library, so that the upgrade is tested against what old code really made).
 */
function v1Schema(t: string): string {
  return `
CREATE TABLE IF NOT EXISTS edge_outbox_schema (
  table_name TEXT PRIMARY KEY,
  version INTEGER NOT NULL,
  migrated_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS "${t}" (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  key TEXT NOT NULL,
  value BLOB NOT NULL,
  headers TEXT NOT NULL DEFAULT '{}',
  created_at INTEGER NOT NULL,
  available_at INTEGER NOT NULL,
  lease_until INTEGER,
  claim_token TEXT,
  retries INTEGER NOT NULL DEFAULT 0,
  status INTEGER NOT NULL DEFAULT 0,
  last_error TEXT,
  sent_at INTEGER
);
CREATE INDEX IF NOT EXISTS "${t}_ready" ON "${t}" (created_at, id) WHERE status = 0;
CREATE INDEX IF NOT EXISTS "${t}_key" ON "${t}" (key, id) WHERE status = 0;
CREATE INDEX IF NOT EXISTS "${t}_dead" ON "${t}" (status) WHERE status = 3;
CREATE INDEX IF NOT EXISTS "${t}_sent" ON "${t}" (sent_at) WHERE status = 1;
INSERT INTO edge_outbox_schema (table_name, version, migrated_at) VALUES ('${t}', 1, 0);`;
}

/** A version-1 database with rows in every state, as version 1's code wrote them. */
async function v1Database(client: Client, t = "outbox_messages"): Promise<void> {
  const now = Date.now();
  await client.executeMultiple(`PRAGMA journal_mode = WAL; ${v1Schema(t)}`);
  const insert = (
    id: number,
    key: string,
    extra: { status?: number; retries?: number; lease?: number | null; error?: string; sentAt?: number } = {},
  ) =>
    client.execute({
      sql: `INSERT INTO "${t}" (id, key, value, headers, created_at, available_at, lease_until, claim_token, retries, status, last_error, sent_at)
VALUES (?1, ?2, CAST(?2 AS BLOB), '{"h":"1"}', ?3, ?3, ?4, ?5, ?6, ?7, ?8, ?9)`,
      args: [
        id,
        key,
        now - 1000 + id,
        extra.lease ?? null,
        extra.lease ? "old-token" : null,
        extra.retries ?? 0,
        extra.status ?? 0,
        extra.error ?? null,
        extra.sentAt ?? null,
      ],
    });
  await insert(1, "pending");
  await insert(2, "retried", { retries: 1, error: "HTTP 503" });
  await insert(3, "leased", { lease: now + 1_500 });
  await insert(4, "dead", { status: 3, retries: 4, error: "HTTP 404" });
  await insert(5, "kept-sent", { status: 1, sentAt: now - 500 });
  await insert(6, "dead-too", { status: 3, retries: 4, error: "HTTP 410" });
  // Row 7 was delivered and deleted: AUTOINCREMENT remembers it.
  await insert(7, "deleted");
  await client.execute(`DELETE FROM "${t}" WHERE id = 7`);
}

describe("LibsqlStore upgrade from schema version 1", () => {
  it("upgrades in place: rows, states and ids kept, pending delivered, dead listed and requeued", {
    timeout: 60_000,
  }, async () => {
    const path = dbPath(tmp.dir);
    const client = newClient(path);
    await v1Database(client);
    // A relay of the new version that never ran migrate() is told to.
    const early = await new LibsqlStore(newClient(path)).fetchAndLock(claim).catch((e: unknown) => e);
    expect(early).toBeInstanceOf(StoreError);
    expect((early as StoreError).message).toMatch(/run `await store.migrate\(\)`/);

    const store = new LibsqlStore(client);
    // Several migrators at once, as several processes starting together.
    await Promise.all([store.migrate(), new LibsqlStore(newClient(path)).migrate(), store.migrate()]);
    const version = await client.execute("SELECT version, id_namespace FROM edge_outbox_schema");
    expect(version.rows).toHaveLength(1);
    expect(version.rows[0]?.version).toBe(SCHEMA_VERSION);
    const namespace = String(version.rows[0]?.id_namespace);
    expect(namespace).toMatch(/^[0-9a-z]{16}$/);
    const indexes = await client.execute(
      "SELECT name FROM sqlite_schema WHERE type = 'index' AND tbl_name = 'outbox_messages' AND name NOT LIKE 'sqlite_%' ORDER BY name",
    );
    // Version 1's per-key index is gone with its name; a claim by key makes the new one.
    expect(indexes.rows.map((r) => r.name)).toEqual(["edge_outbox_outbox_messages_state"]);
    // Rows from before the upgrade keep the bare ids receivers and QStash already saw (a
    // redelivery under a new id would not be deduplicated); new rows get namespaced ids.
    const legacy = await client.execute("SELECT legacy_max_id FROM edge_outbox_schema");
    expect(Number(legacy.rows[0]?.legacy_max_id)).toBe(7);
    const id = (row: number) => (row <= 7 ? String(row) : `msg_${namespace}_${row}`);

    expect((await store.listDead()).map((m) => [m.id, m.key, m.lastError])).toEqual([
      [id(4), "dead", "HTTP 404"],
      [id(6), "dead-too", "HTTP 410"],
    ]);
    expect(await store.stats()).toMatchObject({ pending: 2, inFlight: 1, dead: 2 });
    const first = await store.fetchAndLock(claim);
    expect(first.messages.map((m) => [m.id, m.key, m.retries, m.headers])).toEqual([
      [id(1), "pending", 0, { h: "1" }],
      [id(2), "retried", 1, { h: "1" }],
    ]);
    expect(await store.markAsSent(first.token, [id(1), id(2)])).toBe(2);
    // requeueDead takes the bare row ids saved before the upgrade, and the namespaced form.
    expect(await store.requeueDead([`msg_${namespace}_4`])).toBe(1);
    expect(await store.requeueDead(["6"])).toBe(1);
    // A new message continues after the highest id version 1 ever used (7, deleted).
    await commitMessages(store, [{ key: "new", value: "x" }]);
    const second = await store.fetchAndLock(claim);
    expect(second.messages.map((m) => [m.id, m.key])).toEqual([
      [id(4), "dead"],
      [id(6), "dead-too"],
      [id(8), "new"],
    ]);
    await store.markAsSent(
      second.token,
      second.messages.map((m) => m.id),
    );
    // The lease version 1 took still holds until it ends; then the row is claimed, its lost
    // attempt counted.
    await new Promise((resolve) => setTimeout(resolve, 1_600));
    const third = await store.fetchAndLock(claim);
    expect(third.messages.map((m) => [m.id, m.key, m.retries])).toEqual([[id(3), "leased", 1]]);
    await store.markAsSent(third.token, [id(3)]);
    expect(await store.stats()).toEqual({ pending: 0, inFlight: 0, dead: 0, oldestPendingAt: null });
    // Ran again: nothing changes, the namespace stays.
    await store.migrate();
    const again = await client.execute("SELECT id_namespace, legacy_max_id FROM edge_outbox_schema");
    expect(again.rows[0]?.id_namespace).toBe(namespace);
    expect(Number(again.rows[0]?.legacy_max_id)).toBe(7);
  });

  it("gives a table recreated after the upgrade no bare ids: its rows are not the old rows", async () => {
    const client = newClient();
    await v1Database(client);
    const store = new LibsqlStore(client);
    await store.migrate();
    await client.execute('DROP TABLE "outbox_messages"');
    await store.migrate();
    const row = (await client.execute("SELECT id_namespace, legacy_max_id FROM edge_outbox_schema")).rows[0];
    expect(row?.legacy_max_id).toBeNull();
    await commitMessages(store, [{ key: "after", value: "x" }]);
    const claimed = await store.fetchAndLock(claim);
    expect(claimed.messages.map((m) => m.id)).toEqual([`msg_${String(row?.id_namespace)}_1`]);
  });

  it("upgrades each table of a version-1 file, beside an application index named like a version-1 index", async () => {
    const client = newClient();
    await v1Database(client, "a");
    await client.executeMultiple(`${v1Schema("b")}; CREATE TABLE app (x); CREATE INDEX b_sent_by ON app (x)`);
    await new LibsqlStore(client, { table: "a" }).migrate();
    await new LibsqlStore(client, { table: "b" }).migrate();
    const rows = await client.execute(
      "SELECT table_name, version, id_namespace FROM edge_outbox_schema ORDER BY 1",
    );
    expect(rows.rows.map((r) => [r.table_name, r.version])).toEqual([
      ["a", SCHEMA_VERSION],
      ["b", SCHEMA_VERSION],
    ]);
    expect(rows.rows[0]?.id_namespace).not.toBe(rows.rows[1]?.id_namespace);
    const app = await client.execute(
      "SELECT name FROM sqlite_schema WHERE tbl_name = 'app' AND type = 'index'",
    );
    expect(app.rows.map((r) => r.name)).toEqual(["b_sent_by"]);
  });
});

describe("LibsqlStore upgrade from schema version 2", () => {
  const indexesOf = async (client: Client, t = "outbox_messages") =>
    (
      await client.execute({
        sql: "SELECT name FROM sqlite_schema WHERE type = 'index' AND tbl_name = ? AND name NOT LIKE 'sqlite_%' ORDER BY name",
        args: [t],
      })
    ).rows.map((r) => r.name);

  it("upgrades in place from several processes at once: every row, id and the namespace kept", {
    timeout: 60_000,
  }, async () => {
    const path = dbPath(tmp.dir);
    const client = newClient(path);
    const now = Date.now();
    await client.execute("PRAGMA journal_mode = WAL");
    for (const sql of [
      ...v2Schema("outbox_messages", { keyIndex: true }),
      ...v2Rows("outbox_messages", now, 1_500),
    ])
      await client.execute(sql);
    const before = await client.execute("SELECT * FROM outbox_messages ORDER BY id");
    // A store of this version on a version-2 table is told to migrate.
    const early = await new LibsqlStore(newClient(path)).fetchAndLock(claim).catch((e: unknown) => e);
    expect((early as StoreError).message).toMatch(
      /not migrated to schema version 3.*run `await store.migrate\(\)`/,
    );

    const store = new LibsqlStore(client);
    await Promise.all([store.migrate(), new LibsqlStore(newClient(path)).migrate(), store.migrate()]);
    const version = await client.execute(
      "SELECT version, id_namespace, legacy_max_id FROM edge_outbox_schema",
    );
    expect(version.rows.map((r) => [r.version, r.id_namespace, r.legacy_max_id])).toEqual([
      [SCHEMA_VERSION, V2_NAMESPACE, null],
    ]);
    // Version 2's three partial indexes are gone; its per-key index stays (same definition).
    expect(await indexesOf(client)).toEqual([
      "edge_outbox_outbox_messages_key",
      "edge_outbox_outbox_messages_state",
    ]);
    // Every row, byte for byte.
    expect((await client.execute("SELECT * FROM outbox_messages ORDER BY id")).rows).toEqual(before.rows);
    const id = (row: number) => `msg_${V2_NAMESPACE}_${row}`;

    // Dead rows listed in id order (6 was created before 4), the tombstone kept by purges.
    expect((await store.listDead()).map((m) => [m.id, m.lastError])).toEqual([
      [id(4), "HTTP 404"],
      [id(6), "HTTP 410"],
    ]);
    expect(await store.stats()).toMatchObject({
      pending: 2,
      inFlight: 1,
      dead: 2,
      oldestPendingAt: new Date(now - 10_000),
    });
    expect(await store.purgeSent(new Date(now))).toBe(1);
    expect(
      (await client.execute("SELECT id FROM outbox_messages WHERE status = 1")).rows.map((r) => Number(r.id)),
    ).toEqual([7]);
    // Oldest first: 2 was created before 1.
    const first = await store.fetchAndLock(claim);
    expect(first.messages.map((m) => [m.id, m.key, m.retries, m.headers])).toEqual([
      [id(2), "retried", 1, { h: "2" }],
      [id(1), "pending", 0, { h: "2" }],
    ]);
    expect(await store.markAsSent(first.token, [id(1), id(2)])).toBe(2);
    expect(await store.requeueDead([id(6)])).toBe(1);
    // New rows continue after the tombstone's id: 7 never comes back.
    await commitMessages(store, [{ key: "new", value: "x" }]);
    const second = await store.fetchAndLock(claim);
    expect(second.messages.map((m) => [m.id, m.key])).toEqual([
      [id(6), "dead-too"],
      [id(8), "new"],
    ]);
    // Ordering "key" finds its index where version 2 made it.
    await store.markAsSent(second.token, [id(6), id(8)]);
    await new Promise((resolve) => setTimeout(resolve, 1_600));
    const third = await store.fetchAndLock({ ...claim, ordering: "key" });
    expect(third.messages.map((m) => [m.id, m.retries])).toEqual([[id(3), 1]]);
    // Ran again: nothing changes.
    await store.migrate();
    const again = await client.execute("SELECT version, id_namespace, legacy_max_id FROM edge_outbox_schema");
    expect(again.rows).toEqual(version.rows);
    expect(await indexesOf(client)).toEqual([
      "edge_outbox_outbox_messages_key",
      "edge_outbox_outbox_messages_state",
    ]);
  });

  it("keeps the bare ids of a table that came from version 1 through version 2", async () => {
    const client = newClient();
    for (const sql of v2Schema("outbox_messages")) await client.execute(sql);
    await client.execute("UPDATE edge_outbox_schema SET legacy_max_id = 5");
    for (const sql of v2Rows("outbox_messages", Date.now(), 0)) await client.execute(sql);
    await new LibsqlStore(client).migrate();
    const row = (await client.execute("SELECT id_namespace, legacy_max_id FROM edge_outbox_schema")).rows[0];
    expect([row?.id_namespace, Number(row?.legacy_max_id)]).toEqual([V2_NAMESPACE, 5]);
    expect((await new LibsqlStore(client).listDead()).map((m) => m.id)).toEqual([
      "4",
      `msg_${V2_NAMESPACE}_6`,
    ]);
  });

  it("gives a table whose version-2 row outlived it (dropped by hand) a new namespace", async () => {
    const client = newClient();
    for (const sql of v2Schema("outbox_messages")) await client.execute(sql);
    await client.execute("DROP TABLE outbox_messages");
    const store = new LibsqlStore(client);
    await store.migrate();
    await commitMessages(store, [{ key: "after", value: "x" }]);
    const [claimed] = (await store.fetchAndLock(claim)).messages;
    expect(rowId(claimed!.id)).toBe("1");
    expect(claimed!.id).not.toBe(`msg_${V2_NAMESPACE}_1`);
  });

  // What a version-2 D1 Worker migrating beside a version-3 one leaves (the database may move
  // here; test/d1/robustness.test.ts): its three partial indexes after the upgrade, under a
  // version row that stays 3 or that its own upsert lowers to 2. Version 1's names on this table
  // go too; an index of such a name on another table is someone else's and stays.
  it.each(["stays 3", "lowered to 2"])(
    "migrate() run again drops version 2's indexes a version-2 migrator left (version row %s)",
    async (how) => {
      const client = newClient();
      const t = "outbox_messages";
      const store = new LibsqlStore(client);
      await store.migrate();
      await commitMessages(store, [{ key: "a", value: "x" }]);
      const before = await client.execute("SELECT id_namespace FROM edge_outbox_schema");
      for (const sql of v2Schema(t).slice(0, -1)) await client.execute(sql);
      await client.execute(`CREATE INDEX "${t}_sent" ON "${t}" (sent_at) WHERE status = 1`);
      await client.execute("CREATE TABLE app (x)");
      await client.execute(`CREATE INDEX "${t}_key" ON app (x)`);
      if (how === "lowered to 2") {
        await client.execute("UPDATE edge_outbox_schema SET version = 2");
        // A store of this version refuses the table until migrate() runs again.
        const refused = await new LibsqlStore(client).fetchAndLock(claim).catch((e: unknown) => e);
        expect(refused).toBeInstanceOf(StoreError);
        expect((refused as StoreError).message).toMatch(/not migrated to schema version 3/);
      }
      await new LibsqlStore(client).migrate();
      expect(await indexesOf(client)).toEqual([`edge_outbox_${t}_state`]);
      expect(await indexesOf(client, "app")).toEqual([`${t}_key`]);
      const after = await client.execute("SELECT version, id_namespace FROM edge_outbox_schema");
      expect(after.rows.map((r) => [r.version, r.id_namespace])).toEqual([
        [SCHEMA_VERSION, before.rows[0]?.id_namespace],
      ]);
      const fresh = new LibsqlStore(client);
      expect((await fresh.fetchAndLock(claim)).messages.map((m) => m.key)).toEqual(["a"]);
    },
  );

  it("upgrades one table of a file and leaves another table's version-2 indexes alone", async () => {
    const client = newClient();
    for (const t of ["a", "b"]) for (const sql of v2Schema(t)) await client.execute(sql);
    await new LibsqlStore(client, { table: "a" }).migrate();
    expect(await indexesOf(client, "a")).toEqual(["edge_outbox_a_state"]);
    expect(await indexesOf(client, "b")).toEqual([
      "edge_outbox_b_dead",
      "edge_outbox_b_ready",
      "edge_outbox_b_sent",
    ]);
    const versions = await client.execute("SELECT table_name, version FROM edge_outbox_schema ORDER BY 1");
    expect(versions.rows.map((r) => [r.table_name, r.version])).toEqual([
      ["a", 3],
      ["b", 2],
    ]);
  });
});

describe("LibsqlStore ids", () => {
  it("never hands out the same id from two tables of one file or from two files", async () => {
    const one = newClient();
    const stores = [
      new LibsqlStore(one, { table: "a" }),
      new LibsqlStore(one, { table: "b" }),
      new LibsqlStore(newClient(), { table: "a" }),
    ];
    const ids: string[] = [];
    const claims = [];
    for (const store of stores) {
      await store.migrate();
      await commitMessages(store, [
        { key: "1", value: "x" },
        { key: "2", value: "y" },
      ]);
      const claimed = await store.fetchAndLock(claim);
      claims.push(claimed);
      ids.push(...claimed.messages.map((m) => m.id));
    }
    expect(ids).toHaveLength(6);
    for (const id of ids) expect(id).toMatch(ID);
    expect(new Set(ids).size).toBe(6);
    // Same row numbers everywhere; another outbox's ids name nothing here.
    expect(new Set(ids.map(rowId))).toEqual(new Set(["1", "2"]));
    const [a, b] = stores;
    const [claimA, claimB] = claims;
    expect(
      await a!.markAsSent(
        claimA!.token,
        claimB!.messages.map((m) => m.id),
      ),
    ).toBe(0);
    expect(await a!.release(claimA!.token, ["msg_0000000000000000_1", "nope", ""])).toBe(0);
    expect(
      await b!.markAsDead(
        claimB!.token,
        claimB!.messages.map((m) => ({ id: m.id })),
      ),
    ).toBe(2);
    expect(await b!.requeueDead(claimA!.messages.map((m) => m.id))).toBe(0);
    expect(await b!.requeueDead(claimB!.messages.map((m) => m.id))).toBe(2);
  });

  it("gives a table dropped by hand and migrated again a new namespace (its row ids start over)", async () => {
    const client = newClient();
    const store = new LibsqlStore(client);
    await store.migrate();
    await commitMessages(store, [{ key: "a", value: "1" }]);
    const before = (await store.fetchAndLock(claim)).messages[0]!.id;
    await client.execute("DROP TABLE outbox_messages");
    const again = new LibsqlStore(client);
    await again.migrate();
    await commitMessages(again, [{ key: "b", value: "2" }]);
    const after = (await again.fetchAndLock(claim)).messages[0]!.id;
    expect(rowId(after)).toBe(rowId(before));
    expect(after).not.toBe(before);
  });

  it.each([
    ["delete", {}],
    ["keep", { retention: { sent: "keep", keepFor: 0 } }],
  ] as const)(
    "never hands an id out twice, not after every row was delivered and purged (sent: %s)",
    async (_, options) => {
      const { client, store, close } = await openStore(`file:${dbPath(tmp.dir)}`, options);
      try {
        const seen = new Set<string>();
        for (let round = 0; round < 3; round++) {
          await commitMessages(store, [
            { key: "a", value: "1" },
            { key: "b", value: "2" },
          ]);
          const claimed = await store.fetchAndLock(claim);
          for (const m of claimed.messages) {
            expect(seen.has(m.id)).toBe(false);
            seen.add(m.id);
          }
          expect(
            await store.markAsSent(
              claimed.token,
              claimed.messages.map((m) => m.id),
            ),
          ).toBe(2);
          await store.purgeSent(new Date(Date.now() + 60_000));
          // Everything was delivered: only the newest row is left, as a sent row.
          const left = await client.execute("SELECT id, status FROM outbox_messages");
          expect(left.rows.map((r) => [Number(r.id), r.status])).toEqual([[2 * round + 2, 1]]);
        }
        expect([...seen].map(rowId)).toEqual(["1", "2", "3", "4", "5", "6"]);
        // Also through the pipelined pass (recordAndFetch) and a retry in between.
        await commitMessages(store, [{ key: "c", value: "3" }]);
        const c = await store.fetchAndLock(claim);
        const next = await store.recordAndFetch(
          { token: c.token, sent: [c.messages[0]!.id], retry: [], dead: [] },
          claim,
        );
        expect(next.recorded.sent).toBe(1);
        await commitMessages(store, [{ key: "d", value: "4" }]);
        expect(rowId((await store.fetchAndLock(claim)).messages[0]!.id)).toBe("8");
      } finally {
        await close();
      }
    },
  );
});
