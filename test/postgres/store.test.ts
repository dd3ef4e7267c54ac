/**
 * What the PostgreSQL store promises beyond the conformance suite: drivers recognised by shape,
 * each driver's transaction idiom, names and schemas, migrations, exact ids, NUL and surrogates,
 * retention, the database's clock, release, and error mapping. On PGlite always, and on the
 * server (pg Pool) when EDGE_OUTBOX_PG_URL is set.
 */
import { PGlite } from "@electric-sql/pglite";
import { Client as NeonClient, Pool as NeonPool } from "@neondatabase/serverless";
import pg from "pg";
import postgres from "postgres";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { PostgresStore, SCHEMA_VERSION } from "../../adapters/postgres.ts";
import { Outbox, type PreparedMessage, prepareMessage, StoreError, ValidationError } from "../../mod.ts";
import { commitMessages, describeStoreConformance } from "../conformance/store-conformance.ts";
import { recordingSender } from "../support/senders.ts";
import {
  commitAndRollBack,
  type DriverName,
  freshTable,
  migratedStore,
  openClient,
  PG_URL,
  serverDatabase,
} from "./helpers.ts";

// PGlite and child processes need CPU a loaded machine may not have.
vi.setConfig({ testTimeout: 120_000, hookTimeout: 120_000 });

const claim = { batchSize: 10, leaseDuration: 30_000, ordering: "none" } as const;
const message = (key: string, value = key): PreparedMessage =>
  prepareMessage({ key, value }, { maxMessageBytes: 1024 });
const url = serverDatabase("store");
// One PGlite for the file: starting one compiles PostgreSQL's WebAssembly, seconds of CPU.
let lite: PGlite;
beforeAll(async () => {
  lite = new PGlite();
  await lite.waitReady;
});

describe("PostgresStore options and drivers", () => {
  it.each([
    ["x; drop table y", "table"],
    ['"x"', "table"],
    ["x y", "table"],
    ["", "table"],
    ["1abc", "table"],
    ["a".repeat(64), "table"],
    ["é", "table"],
    ["edge_outbox_schema", "table"],
    ["pg_catalog", "schema"],
    ["a.b", "schema"],
    ['x"; drop schema public; --', "schema"],
  ])("refuses %j as a %s before any SQL runs", (name, what) => {
    let ran = false;
    const pool = {
      totalCount: 0,
      connect: () => Promise.reject(new Error("no")),
      query: () => {
        ran = true;
        return Promise.resolve({ rows: [] });
      },
    };
    const error = (() => {
      try {
        new PostgresStore(pool, { [what]: name });
      } catch (e) {
        return e;
      }
    })();
    expect(error).toBeInstanceOf(ValidationError);
    expect(error).toMatchObject({ code: "INVALID_OPTIONS" });
    expect((error as Error).message).toContain(what);
    expect(ran).toBe(false);
  });

  it("refuses bad retention and notify options", () => {
    const db = lite;
    expect(() => new PostgresStore(db, { retention: { sent: "keep", keepFor: -1 } })).toThrow(/keepFor/);
    expect(() => new PostgresStore(db, { retention: { sent: "maybe" } as never })).toThrow(/retention/);
    expect(() => new PostgresStore(db, { notify: "yes" as never })).toThrow(/notify/);
  });

  it.each([
    ["null", null],
    ["a connection string", "postgres://localhost/db"],
    ["a plain object", {}],
    ["a function", () => {}],
    ["a postgres.js transaction-like function without begin", Object.assign(() => {}, { unsafe: () => {} })],
    ["a number", 42],
  ])("refuses %s as the client with a ValidationError", (_, db) => {
    expect(() => new PostgresStore(db as never)).toThrow(ValidationError);
    expect(() => new PostgresStore(db as never)).toThrow(
      /node-postgres Pool or Client, a postgres.js sql, a PGlite/,
    );
  });

  it("recognises every supported client by shape, without connecting", async () => {
    const pool = new pg.Pool({ connectionString: "postgres://nobody@127.0.0.1:1/none" });
    const client = new pg.Client({ connectionString: "postgres://nobody@127.0.0.1:1/none" });
    const sql = postgres("postgres://nobody@127.0.0.1:1/none");
    const neonPool = new NeonPool({ connectionString: "postgres://nobody@127.0.0.1:1/none" });
    const neonClient = new NeonClient("postgres://nobody@127.0.0.1:1/none");
    for (const db of [pool, client, sql, neonPool, neonClient, lite]) {
      expect(new PostgresStore(db).table).toBe("outbox_messages");
    }
    await pool.end();
    await sql.end();
    await neonPool.end();
  });

  it("refuses a tx that is no driver's transaction with INVALID_MESSAGE", async () => {
    const db = lite;
    const store = await migratedStore(db);
    await expect(store.addMessage({} as never, message("a"))).rejects.toMatchObject({
      name: "ValidationError",
      code: "INVALID_MESSAGE",
    });
    await expect(store.addMessage("BEGIN" as never, message("a"))).rejects.toBeInstanceOf(ValidationError);
    expect(await store.stats()).toMatchObject({ pending: 0 });
  });
});

describeStoreConformance("PostgresStore (PGlite, retention keep, schema of its own)", async () => ({
  store: await migratedStore(lite, { schema: "Outbox_Schema", retention: { sent: "keep", keepFor: 60_000 } }),
}));

const drivers: DriverName[] = PG_URL === undefined ? ["PGlite"] : ["PGlite", "pg Pool"];
for (const kind of drivers) {
  describe(`PostgresStore on ${kind}`, () => {
    let client: Awaited<ReturnType<typeof openClient>>;
    beforeAll(async () => {
      client = await openClient(kind, kind === "PGlite" ? undefined : url());
    });
    afterAll(async () => {
      await client?.close();
    });
    const exec = (text: string, args: unknown[] = []) =>
      (
        client.db as unknown as {
          query(t: string, a: unknown[]): Promise<{ rows: Record<string, unknown>[] }>;
        }
      )
        .query(text, args)
        .then((r) => r.rows);

    it("migrate() is idempotent, keeps one version row and the id namespace, and survives 8 at once", async () => {
      const table = freshTable();
      const stores = Array.from(
        { length: 8 },
        () => new PostgresStore(client.db, { table, schema: "fresh_schema" }),
      );
      await Promise.all(stores.map((store) => store.migrate()));
      await stores[0]!.migrate();
      const rows = await exec(
        "SELECT version, id_namespace FROM fresh_schema.edge_outbox_schema WHERE table_name = $1",
        [table],
      );
      expect(rows).toEqual([
        { version: SCHEMA_VERSION, id_namespace: expect.stringMatching(/^[0-9a-z]{16}$/) },
      ]);
      await commitMessages(stores[0]!, [{ key: "a", value: "1" }]);
      // A store that never ran migrate() reads the namespace from the version table.
      const other = new PostgresStore(client.db, { table, schema: "fresh_schema" });
      const { messages } = await other.fetchAndLock(claim);
      expect(messages[0]!.id).toBe(`msg_${rows[0]!.id_namespace}_1`);
    });

    it("refuses a table migrated by a newer edge-outbox, and a table never migrated", async () => {
      const store = await migratedStore(client.db);
      await exec("UPDATE public.edge_outbox_schema SET version = 99 WHERE table_name = $1", [store.table]);
      await expect(new PostgresStore(client.db, { table: store.table }).migrate()).rejects.toThrow(
        /schema version 99, newer than/,
      );
      const never = new PostgresStore(client.db, { table: freshTable() });
      await expect(never.fetchAndLock(claim)).rejects.toMatchObject({ name: "StoreError", retryable: false });
      await expect(never.fetchAndLock(claim)).rejects.toThrow(/migrate\(\)/);
      await expect(never.addMessage(client.db as never, message("a"))).rejects.toThrow(/migrate\(\)/);
    });

    it("hands out ids beyond 2^53 exactly and takes them back in marks", async () => {
      const store = await migratedStore(client.db);
      await exec(`ALTER TABLE public."${store.table}" ALTER COLUMN id RESTART WITH 9007199254740993`);
      await commitMessages(store, [
        { key: "a", value: "1" },
        { key: "b", value: "2" },
      ]);
      const { token, messages } = await store.fetchAndLock(claim);
      expect(messages.map((m) => m.id.split("_")[2])).toEqual(["9007199254740993", "9007199254740994"]);
      expect(await store.markAsSent(token, [messages[1]!.id])).toBe(1);
      expect(await store.markAsDead(token, [{ id: messages[0]!.id, error: "gone" }])).toBe(1);
      expect((await store.listDead()).map((m) => m.id)).toEqual([messages[0]!.id]);
      // Another outbox's id with the same row number names nothing here.
      expect(await store.requeueDead(["msg_0000000000000000_9007199254740993"])).toBe(0);
      expect(await store.requeueDead([messages[0]!.id])).toBe(1);
    });

    it("refuses NUL in keys and headers before writing, and keeps a NUL error text as U+FFFD", async () => {
      const store = await migratedStore(client.db);
      await expect(store.addMessage(client.db as never, message("a\0b"))).rejects.toMatchObject({
        name: "ValidationError",
        code: "INVALID_MESSAGE",
      });
      await expect(
        store.addMessage(client.db as never, { ...message("k"), headers: { "x-a": "1\0" } }),
      ).rejects.toMatchObject({ code: "INVALID_MESSAGE" });
      expect(await store.stats()).toMatchObject({ pending: 0 });

      // A lone surrogate in a key is stored well-formed, as in every store.
      await commitMessages(store, [{ key: "k\uD800", value: "1" }]);
      const first = await store.fetchAndLock(claim);
      expect(first.messages[0]!.key).toBe("k\uFFFD");
      const id = first.messages[0]!.id;
      // A remote party's error text with NUL and a lone surrogate: kept, message retried.
      const error = `HTTP 500: \0\uDC00${"x".repeat(5000)}`;
      expect(
        await store.updateRetryCount(first.token, [{ id, availableAt: new Date(), delay: 0, error }]),
      ).toBe(1);
      const again = await store.fetchAndLock(claim);
      expect(again.messages[0]!.lastError).toMatch(/^HTTP 500: \uFFFD\uFFFDx+…$/);
      expect(again.messages[0]!.lastError!.length).toBe(2000);
      expect(await store.markAsDead(again.token, [{ id, error: "\0" }])).toBe(1);
      expect((await store.listDead())[0]!.lastError).toBe("\uFFFD");
    });

    it("counts a retry's delay on the database's clock, not the relay's availableAt", async () => {
      const store = await migratedStore(client.db);
      await commitMessages(store, [{ key: "a", value: "1" }]);
      const first = await store.fetchAndLock(claim);
      const id = first.messages[0]!.id;
      // A relay whose clock runs an hour behind: its availableAt is long past, its delay is not.
      const availableAt = new Date(Date.now() - 3_600_000);
      await store.updateRetryCount(first.token, [{ id, availableAt, delay: 1_000 }]);
      // A delay of a second: a loaded machine's next claim still comes well within it.
      expect((await store.fetchAndLock(claim)).messages).toEqual([]);
      await new Promise((resolve) => setTimeout(resolve, 1_100));
      const again = await store.fetchAndLock(claim);
      expect(again.messages.map((m) => m.id)).toEqual([id]);
      // A delay past PostgreSQL's interval range is clamped, never a failed mark.
      expect(await store.updateRetryCount(again.token, [{ id, availableAt, delay: 1e300 }])).toBe(1);
      expect(await store.stats()).toMatchObject({ pending: 1, inFlight: 0 });
    });

    it("takes huge limits and leases without failing", async () => {
      const store = await migratedStore(client.db);
      await commitMessages(store, [{ key: "a", value: "1" }]);
      const huge = { batchSize: Number.MAX_SAFE_INTEGER, leaseDuration: 1e300, ordering: "key" as const };
      expect((await store.fetchAndLock(huge)).messages).toHaveLength(1);
      expect(await store.listDead({ limit: Number.MAX_SAFE_INTEGER })).toEqual([]);
      expect(await store.stats()).toMatchObject({ pending: 0, inFlight: 1 });
    });

    it("release() gives back unsent messages untouched, only under their token", async () => {
      const store = await migratedStore(client.db);
      await commitMessages(store, [
        { key: "a", value: "1" },
        { key: "b", value: "2" },
      ]);
      const first = await store.fetchAndLock(claim);
      const ids = first.messages.map((m) => m.id);
      expect(await store.release("other-token", ids)).toBe(0);
      expect(await store.release(first.token, [ids[0]!, "nonsense"])).toBe(1);
      const again = await store.fetchAndLock(claim);
      expect(again.messages.map((m) => [m.id, m.retries])).toEqual([[ids[0], 0]]);
      expect(await store.markAsSent(first.token, [ids[0]!])).toBe(0);
    });

    it("keeps sent rows under retention keep until purgeSent, never touching unsent or dead ones", async () => {
      const store = await migratedStore(client.db, { retention: { sent: "keep", keepFor: 60_000 } });
      await commitMessages(store, [
        { key: "a", value: "1" },
        { key: "b", value: "2" },
        { key: "c", value: "3" },
      ]);
      const { token, messages } = await store.fetchAndLock({ ...claim, batchSize: 2 });
      await store.markAsSent(token, [messages[0]!.id]);
      await store.markAsDead(token, [{ id: messages[1]!.id }]);
      const count = async () =>
        Number((await exec(`SELECT count(*)::int AS n FROM public."${store.table}" WHERE status = 1`))[0]!.n);
      expect(await count()).toBe(1);
      expect(await store.stats()).toMatchObject({ pending: 1, dead: 1, inFlight: 0 });
      expect(await store.purgeSent()).toBe(0); // sent less than keepFor ago
      expect(await store.purgeSent(new Date(Date.now() + 60_000))).toBe(1);
      expect(await count()).toBe(0);
      expect(await store.stats()).toMatchObject({ pending: 1, dead: 1 });
      await expect(store.purgeSent(new Date(Number.NaN))).rejects.toBeInstanceOf(ValidationError);
    });

    it("maps a database error to a non-retryable StoreError naming what it was doing", async () => {
      const store = await migratedStore(client.db);
      await exec(`DROP TABLE public."${store.table}"`);
      const error = await store.fetchAndLock(claim).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(StoreError);
      expect(error).toMatchObject({ code: "STORE_ERROR", retryable: false });
      expect((error as Error).message).toMatch(/while claiming messages \(42P01\).*migrate/);
    });

    it("relays end to end through an Outbox", async () => {
      const store = await migratedStore(client.db);
      const sender = recordingSender();
      const outbox = new Outbox(store, sender, { batchSize: 7 });
      await store.withTransaction(async (tx) => {
        for (let i = 0; i < 30; i++) await outbox.addMessage(tx, { key: `k${i % 3}`, value: String(i) });
      });
      expect(await outbox.tick()).toMatchObject({ sent: 30, failed: 0, dead: 0 });
      expect(new Set(sender.delivered).size).toBe(30);
      expect(await store.stats()).toEqual({ pending: 0, inFlight: 0, dead: 0, oldestPendingAt: null });
    });
  });
}

describe("addMessage in each driver's own transaction idiom", () => {
  it("PGlite: db.transaction(tx => ...) commits with the caller's writes, or not at all", async () => {
    const db = lite;
    const store = await migratedStore(db);
    await db.exec("CREATE TABLE orders (id int PRIMARY KEY)");
    await db.transaction(async (tx) => {
      await tx.query("INSERT INTO orders VALUES (1)");
      await store.addMessage(tx, message("order:1"));
    });
    await expect(
      db.transaction(async (tx) => {
        await tx.query("INSERT INTO orders VALUES (2)");
        await store.addMessage(tx, message("order:2"));
        throw new Error("rolled back");
      }),
    ).rejects.toThrow("rolled back");
    await store.addMessage(db, message("autocommit"));
    const { messages } = await store.fetchAndLock(claim);
    expect(messages.map((m) => m.key)).toEqual(["order:1", "autocommit"]);
    expect((await db.query("SELECT id FROM orders")).rows).toEqual([{ id: 1 }]);
  });

  it.runIf(PG_URL !== undefined)("node-postgres: a PoolClient after BEGIN, COMMIT or ROLLBACK", async () => {
    const pool = new pg.Pool({ connectionString: url() });
    try {
      const store = await migratedStore(pool);
      await commitAndRollBack(pool, store);
      await store.addMessage(pool, message("autocommit"));
      await store.withTransaction(async (tx) => {
        expect(typeof (tx as pg.PoolClient).release).toBe("function");
        await store.addMessage(tx, message("withTransaction"));
      });
      const { messages } = await store.fetchAndLock(claim);
      expect(messages.map((m) => m.key)).toEqual(["order:1", "autocommit", "withTransaction"]);
    } finally {
      await pool.end();
    }
  });

  it.runIf(PG_URL !== undefined)("postgres.js: sql.begin(tx => ...) commits or rolls back", async () => {
    const sql = postgres(url(), { onnotice: () => {} });
    try {
      const store = await migratedStore(sql);
      await sql.begin(async (tx) => {
        await store.addMessage(tx, message("order:1"));
      });
      await expect(
        sql.begin(async (tx) => {
          await store.addMessage(tx, message("order:2"));
          throw new Error("rolled back");
        }),
      ).rejects.toThrow("rolled back");
      await store.addMessage(sql, message("autocommit"));
      const { messages } = await store.fetchAndLock(claim);
      expect(messages.map((m) => m.key)).toEqual(["order:1", "autocommit"]);
    } finally {
      await sql.end({ timeout: 5 });
    }
  });
});

it.runIf(PG_URL !== undefined)(
  "the server is reachable when EDGE_OUTBOX_PG_URL is set (never skipped)",
  async () => {
    const client = new pg.Client({ connectionString: url(), connectionTimeoutMillis: 5000 });
    await client.connect();
    expect((await client.query("SELECT 1 AS one")).rows).toEqual([{ one: 1 }]);
    await client.end();
  },
);

describe("long names", () => {
  it("gives a 63-character table four distinct indexes and migrates it", async () => {
    const table = `t${"x".repeat(55)}${Math.random().toString(36).slice(2, 9)}`.slice(0, 63);
    const store = new PostgresStore(lite, { table });
    await store.migrate();
    const { rows } = await lite.query<{ n: number }>(
      "SELECT count(*)::int AS n FROM pg_indexes WHERE schemaname = 'public' AND tablename = $1",
      [table],
    );
    expect(rows[0]!.n).toBe(5); // the primary key and the four partial indexes
    await commitMessages(store, [{ key: "a", value: "1" }]);
    expect((await store.fetchAndLock(claim)).messages).toHaveLength(1);
  });
});
