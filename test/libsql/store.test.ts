import type { Client, InStatement } from "@libsql/client";
import { afterAll, afterEach, describe, expect, it, vi } from "vitest";
import { LibsqlStore, SCHEMA_VERSION } from "../../adapters/libsql.ts";
import { buildStatements } from "../../adapters/sqlite/sql.ts";
import { Outbox, prepareMessage, StoreError, ValidationError } from "../../mod.ts";
import { commitMessages, describeStoreConformance } from "../conformance/store-conformance.ts";
import { recordingSender } from "../support/senders.ts";
import { dbPath, openStore, rowId, tempDir } from "./helpers.ts";

const tmp = tempDir();
afterAll(() => tmp.cleanup());

const claim = { batchSize: 10, leaseDuration: 30_000, ordering: "none" } as const;
const message = (key: string, value = key) => prepareMessage({ key, value }, { maxMessageBytes: 1024 });

describeStoreConformance("LibsqlStore (file:)", () => openStore(`file:${dbPath(tmp.dir)}`));
describeStoreConformance("LibsqlStore (:memory:)", () => openStore(":memory:"));
describeStoreConformance("LibsqlStore (file:, intMode bigint, custom table)", () =>
  openStore(`file:${dbPath(tmp.dir)}`, { table: "Outbox_2" }, { intMode: "bigint" }),
);
describeStoreConformance("LibsqlStore (file:, retention keep)", () =>
  openStore(`file:${dbPath(tmp.dir)}`, { retention: { sent: "keep", keepFor: 60_000 } }),
);

describe("LibsqlStore options", () => {
  const client = { execute() {}, transaction() {} } as never;

  it.each([
    "x; drop table y",
    '"x"',
    "x y",
    "sqlite_master",
    "SQLITE_foo",
    "edge_outbox_schema",
    "",
    "1abc",
    "a".repeat(64),
    "é",
  ])("refuses the table name %j", (table) => {
    expect(() => new LibsqlStore(client, { table })).toThrow(ValidationError);
    try {
      new LibsqlStore(client, { table });
    } catch (error) {
      expect((error as ValidationError).code).toBe("INVALID_OPTIONS");
    }
  });

  it("accepts plain identifiers up to 63 characters", () => {
    expect(new LibsqlStore(client, { table: `_${"a".repeat(62)}` }).table).toHaveLength(63);
    expect(new LibsqlStore(client).table).toBe("outbox_messages");
  });

  it("refuses bad retention, busyTimeout and clients", () => {
    expect(() => new LibsqlStore(client, { retention: { sent: "keep", keepFor: -1 } })).toThrow(/keepFor/);
    expect(() => new LibsqlStore(client, { retention: { sent: "maybe" } as never })).toThrow(/retention/);
    expect(() => new LibsqlStore(client, { busyTimeout: 1.5 })).toThrow(/busyTimeout/);
    expect(() => new LibsqlStore({} as never)).toThrow(/libSQL Client/);
  });
});

describe("LibsqlStore schema", () => {
  let close: (() => Promise<void>) | undefined;
  afterEach(async () => {
    await close?.();
    close = undefined;
  });

  it("migrates idempotently, records its version in its own table, leaves user_version alone", async () => {
    const opened = await openStore(`file:${dbPath(tmp.dir)}`);
    close = opened.close;
    const { client, store } = opened;
    await Promise.all([
      store.migrate(),
      store.migrate(),
      new LibsqlStore(client, { table: "other" }).migrate(),
    ]);
    const versions = await client.execute(
      "SELECT table_name, version FROM edge_outbox_schema ORDER BY table_name",
    );
    expect(versions.rows.map((r) => [r.table_name, r.version])).toEqual([
      ["other", SCHEMA_VERSION],
      ["outbox_messages", SCHEMA_VERSION],
    ]);
    expect((await client.execute("PRAGMA user_version")).rows[0]?.user_version).toBe(0);
    expect((await client.execute("PRAGMA journal_mode")).rows[0]?.journal_mode).toBe("wal");
  });

  it("refuses a table migrated by a newer edge-outbox", async () => {
    const opened = await openStore(`file:${dbPath(tmp.dir)}`);
    close = opened.close;
    await opened.client.execute("UPDATE edge_outbox_schema SET version = 99");
    await expect(opened.store.migrate()).rejects.toThrow(/schema version 99/);
  });

  it("tells to migrate when the table is missing", async () => {
    const opened = await openStore(":memory:");
    close = opened.close;
    const store = new LibsqlStore(opened.client, { table: "never_migrated" });
    const error = await store.fetchAndLock(claim).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StoreError);
    expect((error as StoreError).retryable).toBe(false);
    expect((error as StoreError).message).toMatch(/migrate/);
  });

  it("serves every hot statement from an index (EXPLAIN QUERY PLAN)", async () => {
    const opened = await openStore(":memory:");
    close = opened.close;
    const sql = buildStatements("outbox_messages");
    // Made by the first claim with ordering "key" (not by migrate()).
    await opened.store.fetchAndLock({ ...claim, ordering: "key" });
    const plan = async (statement: string, args: (string | number | null)[]) =>
      (await opened.client.execute({ sql: `EXPLAIN QUERY PLAN ${statement}`, args })).rows
        .map((row) => String(row.detail))
        .join(" | ");
    const claims = [
      [sql.claim.read, [10, 1, null]],
      [sql.claim.take, ["t", 1, 10]],
      [sql.readTaken, ["t", 10, 1]],
    ] as const;
    for (const [statement, args] of claims) {
      const claimPlan = await plan(statement, [...args]);
      expect(claimPlan).toMatch(/SEARCH c USING INDEX edge_outbox_outbox_messages_state \(status=\?\)/);
      expect(claimPlan).not.toMatch(/TEMP B-TREE/);
    }
    for (const [statement, args] of [
      [sql.claimByKey.read, [10, 1, null]],
      [sql.claimByKey.take, ["t", 1, 10]],
    ] as const) {
      const keyPlan = await plan(statement, [...args]);
      expect(keyPlan).toMatch(/SEARCH c USING INDEX edge_outbox_outbox_messages_state \(status=\?\)/);
      expect(keyPlan).not.toMatch(/TEMP B-TREE/);
      expect(keyPlan).toMatch(
        /SEARCH o USING COVERING INDEX edge_outbox_outbox_messages_key \(key=\? AND rowid<\?\)/,
      );
    }
    const [cleanup, tombstone, remove] = sql.deleteSent;
    const state = "edge_outbox_outbox_messages_state";
    expect(await plan(cleanup!.sql, [])).toMatch(
      new RegExp(`USING (COVERING )?INDEX ${state} \\(status=\\?\\)`),
    );
    expect(await plan(tombstone!.sql, ["[1]", "t", "g"])).toMatch(/INTEGER PRIMARY KEY/);
    expect(await plan(remove!.sql, ["[1]", "t"])).toMatch(/INTEGER PRIMARY KEY/);
    expect(await plan(sql.takeByIds, ["t", 1, "[1]"])).toMatch(/INTEGER PRIMARY KEY/);
    expect(await plan(sql.release, ["[1]", "t"])).toMatch(/INTEGER PRIMARY KEY/);
    expect(await plan(sql.retry, ["[[1,1,null]]", "t"])).toMatch(/SEARCH m USING INTEGER PRIMARY KEY/);
    // Statements given ids look them up by primary key, never through the state index.
    expect(await plan(sql.keepSent, ["[1]", "t"])).toMatch(/INTEGER PRIMARY KEY/);
    expect(await plan(sql.dead, ["[[1,null]]", "t"])).toMatch(/SEARCH m USING INTEGER PRIMARY KEY/);
    expect(await plan(sql.deadByIds, ["[1]"])).toMatch(/SEARCH m USING INTEGER PRIMARY KEY/);
    expect(await plan(sql.requeueIds, ["[1]"])).toMatch(/SEARCH outbox_messages USING INTEGER PRIMARY KEY/);
    expect(await plan(sql.claimValues, ["[1]"])).toMatch(/INTEGER PRIMARY KEY/);
    // The dead listings: the dead rows' range, already in id order (no sort of every dead row).
    for (const statement of [sql.listDead, sql.deadSizes]) {
      const deadPlan = await plan(statement, [10]);
      expect(deadPlan).toMatch(new RegExp(`SEARCH m USING INDEX ${state} \\(status=\\?\\)`));
      expect(deadPlan).not.toMatch(/TEMP B-TREE/);
    }
    expect(await plan(sql.requeueAll, [])).toMatch(
      new RegExp(`USING (COVERING )?INDEX ${state} \\(status=\\?\\)`),
    );
    // Only the sent rows older than the cutoff: a range of the index, not every sent row.
    expect(await plan(sql.purgeSent, [1, 0])).toMatch(
      new RegExp(`USING (COVERING )?INDEX ${state} \\(status=\\? AND <expr><\\?\\)`),
    );
    // Stats: each count a range of the index; the oldest its first entry of status 0.
    const statsPlan = await plan(sql.stats, []);
    expect(statsPlan).not.toMatch(/SCAN outbox_messages\b(?! USING)|TEMP B-TREE/);
    expect(statsPlan.match(new RegExp(`INDEX ${state} \\(status=\\?\\)`, "g"))).toHaveLength(4);
    // No statement reaches for an index the schema no longer has.
    const indexes = await opened.client.execute(
      "SELECT name FROM sqlite_schema WHERE type = 'index' AND tbl_name = 'outbox_messages' ORDER BY name",
    );
    expect(indexes.rows.map((r) => r.name)).toEqual([
      "edge_outbox_outbox_messages_key",
      "edge_outbox_outbox_messages_state",
    ]);
  });
});

describe("LibsqlStore addMessage forms and transactions", () => {
  let close: (() => Promise<void>) | undefined;
  afterEach(async () => {
    await close?.();
    close = undefined;
  });
  const open = async (url = `file:${dbPath(tmp.dir)}`) => {
    const opened = await openStore(url);
    close = opened.close;
    await opened.client.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY)");
    return opened;
  };
  const orderCount = async (client: Client) =>
    Number((await client.execute("SELECT COUNT(*) AS n FROM orders")).rows[0]?.n);

  it.each(["file", ":memory:"])(
    "writes through a Transaction, a Client and a statement array (%s)",
    async (kind) => {
      const { client, store } = await open(kind === "file" ? undefined : ":memory:");
      const sender = recordingSender();
      const outbox = new Outbox(store, sender);

      const tx = await client.transaction("write");
      try {
        await tx.execute("INSERT INTO orders (id) VALUES (1)");
        await outbox.addMessage(tx, { key: "order:1", value: "tx" });
        await tx.commit();
      } finally {
        tx.close();
      }
      await outbox.addMessage(client, { key: "order:-", value: "client" });
      const stmts: InStatement[] = [{ sql: "INSERT INTO orders (id) VALUES (?)", args: [2] }];
      await outbox.addMessage(stmts, { key: "order:2", value: "batch" });
      expect(stmts).toHaveLength(2);
      await client.batch(stmts, "write");
      stmts.push(store.insertStatement(message("order:3", "helper")));
      await client.batch(stmts.slice(2), "write");

      expect(await outbox.tick()).toMatchObject({ sent: 4, failed: 0, dead: 0 });
      expect(sender.delivered).toHaveLength(4);
      expect(await orderCount(client)).toBe(2);
    },
  );

  it("leaves nothing behind when the user's transaction or batch rolls back", async () => {
    const { client, store } = await open();
    const outbox = new Outbox(store, recordingSender());
    const tx = await client.transaction("write");
    await tx.execute("INSERT INTO orders (id) VALUES (1)");
    await outbox.addMessage(tx, { key: "order:1", value: "x" });
    await tx.rollback();
    tx.close();

    const stmts: InStatement[] = [];
    await outbox.addMessage(stmts, { key: "order:2", value: "x" });
    stmts.push("INSERT INTO no_such_table VALUES (1)");
    await expect(client.batch(stmts, "write")).rejects.toThrow(/no_such_table/);

    await expect(
      store.withTransaction(async (t) => {
        await t.execute("INSERT INTO orders (id) VALUES (3)");
        await outbox.addMessage(t, { key: "order:3", value: "x" });
        throw new Error("business rule");
      }),
    ).rejects.toThrow("business rule");

    expect(await store.stats()).toEqual({ pending: 0, inFlight: 0, dead: 0, oldestPendingAt: null });
    expect(await orderCount(client)).toBe(0);
    expect(await outbox.tick()).toMatchObject({ sent: 0, batches: 0 });
  });

  it("refuses something that is not a transaction, and reports a closed one as a StoreError", async () => {
    const { client, store } = await open();
    await expect(store.addMessage({} as never, message("k"))).rejects.toBeInstanceOf(ValidationError);
    const tx = await client.transaction("write");
    await tx.commit();
    await expect(store.addMessage(tx, message("k"))).rejects.toBeInstanceOf(StoreError);
  });

  it("returns the value of withTransaction's callback", async () => {
    const { store } = await open();
    expect(await store.withTransaction(async () => 7)).toBe(7);
  });
});

describe("LibsqlStore ids above 2^53", () => {
  it.each(["number", "bigint", "string"] as const)("keeps them exact with intMode %s", async (intMode) => {
    const { client, store, close } = await openStore(`file:${dbPath(tmp.dir)}`, {}, { intMode });
    try {
      // 2^53 + 1 cannot be a JavaScript number; SQLite continues after the highest row (a
      // delivered one, as the store keeps it).
      await client.execute(
        "INSERT INTO outbox_messages (id, key, value, created_at, available_at, status) VALUES (9007199254740992, 'x', x'', 0, 0, 1)",
      );
      await commitMessages(store, [
        { key: "a", value: "1" },
        { key: "b", value: "2" },
      ]);
      const first = await store.fetchAndLock(claim);
      expect(first.messages.map((m) => rowId(m.id))).toEqual(["9007199254740993", "9007199254740994"]);
      const [a, b] = first.messages.map((m) => m.id);
      expect(await store.markAsDead(first.token, [{ id: a!, error: "gone" }])).toBe(1);
      expect(
        await store.updateRetryCount(first.token, [{ id: b!, availableAt: new Date(0), delay: 0 }]),
      ).toBe(1);
      expect((await store.listDead()).map((m) => m.id)).toEqual([a]);
      expect(await store.requeueDead([a!])).toBe(1);
      const second = await store.fetchAndLock(claim);
      expect(second.messages.map((m) => m.id)).toEqual([a, b]);
      expect(
        await store.markAsSent(second.token, [a!, b!, "9007199254740995", "nope", "99999999999999999999"]),
      ).toBe(2);
      expect(a).toMatch(/^msg_[0-9a-z]{16}_9007199254740993$/);
    } finally {
      await close();
    }
  });
});

describe("LibsqlStore retention", () => {
  it("keeps sent rows for keepFor, purges only sent rows, never unsent or dead ones", async () => {
    const { client, store, close } = await openStore(`file:${dbPath(tmp.dir)}`, {
      retention: { sent: "keep", keepFor: 3_000 },
    });
    try {
      await commitMessages(
        store,
        ["a", "b", "c", "d"].map((key) => ({ key, value: key })),
      );
      const first = await store.fetchAndLock({ ...claim, batchSize: 3 });
      const [a, b, c] = first.messages.map((m) => m.id);
      expect(await store.markAsSent(first.token, [a!, b!])).toBe(2);
      await store.markAsDead(first.token, [{ id: c! }]);
      const count = async (status: number) =>
        Number(
          (
            await client.execute({
              sql: "SELECT COUNT(*) AS n FROM outbox_messages WHERE status = ?",
              args: [status],
            })
          ).rows[0]?.n,
        );
      expect(await count(1)).toBe(2);
      expect(await store.stats()).toMatchObject({ pending: 1, inFlight: 0, dead: 1 });
      expect(await store.purgeSent()).toBe(0);
      await new Promise((resolve) => setTimeout(resolve, 3_100));
      expect(await store.purgeSent()).toBe(2);
      expect(await count(1)).toBe(0);
      expect(await store.stats()).toMatchObject({ pending: 1, dead: 1 });
      expect(await store.purgeSent(new Date(Date.now() + 60_000))).toBe(0);
    } finally {
      await close();
    }
  });

  it("purges old sent rows by itself at most once a minute, during markAsSent", async () => {
    const { client, store, close } = await openStore(`file:${dbPath(tmp.dir)}`, {
      retention: { sent: "keep", keepFor: 200 },
    });
    const sentRows = async () =>
      Number((await client.execute("SELECT COUNT(*) AS n FROM outbox_messages WHERE status = 1")).rows[0]?.n);
    const sendOne = async () => {
      const claimed = await store.fetchAndLock(claim);
      await store.markAsSent(
        claimed.token,
        claimed.messages.map((m) => m.id),
      );
    };
    try {
      await commitMessages(
        store,
        ["a", "b", "c"].map((key) => ({ key, value: key })),
      );
      await store
        .fetchAndLock({ ...claim, batchSize: 1 })
        .then((c) => store.markAsSent(c.token, [c.messages[0]!.id]));
      expect(await sentRows()).toBe(1);
      // Within the minute: no purge, whatever keepFor says.
      await new Promise((resolve) => setTimeout(resolve, 300));
      await sendOne();
      expect(await sentRows()).toBe(3);
      await new Promise((resolve) => setTimeout(resolve, 300));
      await commitMessages(store, [{ key: "d", value: "d" }]);
      // Only this process's clock moves (timers stay real): a minute later the next mark
      // purges what the DATABASE's clock says is older than keepFor: a, b and c, not d.
      vi.useFakeTimers({ toFake: ["Date"] });
      vi.setSystemTime(Date.now() + 61_000);
      await sendOne();
      expect(await sentRows()).toBe(1);
      expect(await store.stats()).toMatchObject({ pending: 0, inFlight: 0 });
    } finally {
      vi.useRealTimers();
      await close();
    }
  });

  it("deletes sent rows at once by default", async () => {
    const { client, store, close } = await openStore(`file:${dbPath(tmp.dir)}`);
    try {
      await commitMessages(store, [{ key: "a", value: "1" }]);
      const first = await store.fetchAndLock(claim);
      await store.markAsSent(
        first.token,
        first.messages.map((m) => m.id),
      );
      // Only the newest row stays, as a sent row, so that SQLite never hands its id out again.
      const rows = await client.execute("SELECT id, status FROM outbox_messages");
      expect(rows.rows.map((r) => [String(r.id), r.status])).toEqual([[rowId(first.messages[0]!.id), 1]]);
    } finally {
      await close();
    }
  });
});
