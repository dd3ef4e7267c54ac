/**
 * Regression tests for the faults a hostile review of PostgresStore found (issue 13): keys too
 * long for a btree entry, a dropped or reset table reusing ids, Neon's HTTP `neon()` function
 * taken for a transaction, a dead single `pg.Client` reported as retryable forever, `listen()`
 * leaking error listeners on pooled connections, PGlite losing a leading U+FEFF. Each ran red
 * before its fix. On PGlite always, on the server when EDGE_OUTBOX_PG_URL is set.
 */
import { PGlite } from "@electric-sql/pglite";
import { neon } from "@neondatabase/serverless";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { buildStatements } from "../../adapters/postgres/sql.ts";
import { PostgresStore } from "../../adapters/postgres.ts";
import { type PreparedMessage, prepareMessage, StoreError, ValidationError } from "../../mod.ts";
import { waitFor } from "../support/senders.ts";
import { freshTable, PG_URL, serverDatabase } from "./helpers.ts";

vi.setConfig({ testTimeout: 120_000, hookTimeout: 120_000 });

const claim = { batchSize: 10, leaseDuration: 30_000, ordering: "key" } as const;
const message = (key: string, value = "v", headers: Record<string, string> = {}): PreparedMessage =>
  prepareMessage({ key, value, headers }, { maxMessageBytes: 1 << 20 });
const url = serverDatabase("review");
let lite: PGlite;
beforeAll(async () => {
  lite = new PGlite();
  await lite.waitReady;
});
afterAll(async () => {
  await lite.close();
});

describe("addMessage refuses Neon's HTTP query function", () => {
  it("neon() cannot join a transaction: a ValidationError telling to use the Pool or Client", async () => {
    const store = new PostgresStore(lite, { table: freshTable() });
    await store.migrate();
    // Never reaches the network: refused before any query.
    const http = neon("postgres://user:password@127.0.0.1:1/none");
    const error = await store.addMessage(http as never, message("k")).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ValidationError);
    expect(error).toMatchObject({ code: "INVALID_MESSAGE" });
    expect((error as Error).message).toMatch(/neon\(\).*transaction.*Pool/s);
    expect(() => new PostgresStore(http as never)).toThrow(/neon\(\)/);
    expect(await store.stats()).toMatchObject({ pending: 0 });
  });
});

describe.runIf(PG_URL !== undefined)("node-postgres connections on the server", () => {
  it("a single pg.Client killed by the server is a non-retryable StoreError saying what to do", async () => {
    const name = `single_${Math.random().toString(36).slice(2, 8)}`;
    const client = new pg.Client({ connectionString: url(), application_name: name });
    client.on("error", () => {});
    await client.connect();
    const admin = new pg.Client({ connectionString: url() });
    await admin.connect();
    try {
      const store = new PostgresStore(client, { table: freshTable() });
      await store.migrate();
      await admin.query(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1",
        [name],
      );
      const errors: unknown[] = [];
      for (let i = 0; i < 3; i++) errors.push(await store.stats().catch((e: unknown) => e));
      for (const error of errors) {
        expect(error).toBeInstanceOf(StoreError);
        expect(error).toMatchObject({ retryable: false, code: "STORE_ERROR" });
        expect((error as Error).message).toMatch(/Client.*(Pool|new)/);
      }
      const tx = await store.withTransaction(async () => 1).catch((e: unknown) => e);
      expect(tx).toMatchObject({ retryable: false, code: "STORE_ERROR" });
    } finally {
      await client.end().catch(() => {});
      await admin.end();
    }
  });

  it("listen() on a pg Pool leaves no listeners behind over many listens and reconnects", async () => {
    const name = `leak_${Math.random().toString(36).slice(2, 8)}`;
    // Two connections (listen() refuses a pool of one): every listen and reconnect checks out one
    // of them or a replacement, and the count takes both.
    const pool = new pg.Pool({ connectionString: url(), max: 2, application_name: name });
    pool.on("error", () => {});
    const admin = new pg.Client({ connectionString: url() });
    await admin.connect();
    const warnings: Error[] = [];
    const onWarning = (warning: Error) => warnings.push(warning);
    process.on("warning", onWarning);
    try {
      const store = new PostgresStore(pool, { table: freshTable() });
      await store.migrate();
      const counts = async () => {
        const clients = [(await pool.connect()) as pg.PoolClient, (await pool.connect()) as pg.PoolClient];
        let n = 0;
        for (const client of clients) {
          n +=
            client.listenerCount("error") +
            client.listenerCount("end") +
            client.listenerCount("notification");
          client.release();
        }
        return n;
      };
      const baseline = await counts();
      for (let i = 0; i < 15; i++) {
        const unlisten = await store.listen(() => {});
        await unlisten();
      }
      expect(await counts()).toBe(baseline);
      // Reconnects: the listening connection killed again and again.
      let errors = 0;
      const unlisten = await store.listen(() => {}, { onError: () => errors++ });
      const listening = async () =>
        (
          await admin.query(
            "SELECT pid FROM pg_stat_activity WHERE application_name = $1 AND query LIKE 'LISTEN%' AND state = 'idle'",
            [name],
          )
        ).rows as { pid: number }[];
      for (let i = 0; i < 12; i++) {
        await waitFor(async () => (await listening()).length === 1, 15_000);
        const [listener] = await listening();
        await admin.query("SELECT pg_terminate_backend($1)", [listener?.pid]);
        await waitFor(() => errors > i, 15_000);
      }
      await waitFor(async () => (await listening()).length === 1, 15_000);
      await unlisten();
      expect(await counts()).toBe(baseline);
      expect(warnings.filter((w) => w.name === "MaxListenersExceededWarning")).toEqual([]);
    } finally {
      process.off("warning", onWarning);
      await pool.end();
      await admin.end();
    }
  });
});

describe("texts round-trip exactly", () => {
  const kinds = PG_URL === undefined ? ["PGlite"] : ["PGlite", "pg Pool"];
  it.each(kinds)("%s: a leading U+FEFF in keys and error texts is kept", async (kind) => {
    const pool = kind === "pg Pool" ? new pg.Pool({ connectionString: url(), max: 2 }) : undefined;
    try {
      const store = new PostgresStore(pool ?? lite, { table: freshTable() });
      await store.migrate();
      await store.addMessage(pool ?? lite, message("\uFEFF", "a"));
      await store.addMessage(pool ?? lite, message("\uFEFFkey", "b"));
      const { token, messages } = await store.fetchAndLock({ ...claim, ordering: "none" });
      expect(messages.map((m) => m.key)).toEqual(["\uFEFF", "\uFEFFkey"]);
      const [first, second] = messages.map((m) => m.id);
      await store.markAsDead(token, [{ id: first as string, error: "\uFEFFboom" }]);
      await store.updateRetryCount(token, [
        { id: second as string, delay: 0, availableAt: new Date(), error: "\uFEFF" },
      ]);
      const dead = await store.listDead();
      expect(dead.map((m) => [m.key, m.lastError])).toEqual([["\uFEFF", "\uFEFFboom"]]);
      const again = await store.fetchAndLock({ ...claim, ordering: "none" });
      expect(again.messages.map((m) => [m.key, m.lastError])).toEqual([["\uFEFFkey", "\uFEFF"]]);
    } finally {
      await pool?.end();
    }
  });
});

/** A pool-like client of each kind this file runs (the server's pg Pool, PGlite). */
function clients() {
  return PG_URL === undefined ? (["PGlite"] as const) : (["PGlite", "pg Pool"] as const);
}
async function open(kind: "PGlite" | "pg Pool") {
  if (kind === "PGlite") return { db: lite, close: async () => {} };
  const pool = new pg.Pool({ connectionString: url(), max: 4 });
  pool.on("error", () => {});
  return { db: pool, close: () => pool.end() };
}
/** `n` CJK ideographs from a fixed pseudo-random sequence. */
function cjk(n: number, seed: number): string {
  let x = seed;
  let text = "";
  for (let i = 0; i < n; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    text += String.fromCharCode(0x4e00 + (x % 0x5000));
  }
  return text;
}
type Db = Awaited<ReturnType<typeof open>>["db"];
const exec = (db: Db, text: string) => (db as pg.Pool).query(text);

describe.each(clients())("%s: long keys", (kind) => {
  it("a key of 1,024 CJK characters (3 KB of UTF-8) commits inside the caller's transaction, in key order", async () => {
    const { db, close } = await open(kind);
    try {
      const table = freshTable();
      const store = new PostgresStore(db, { table });
      await store.migrate();
      await exec(db, `CREATE TABLE "orders_${table}" (id int)`);
      // Varied characters: a repeated one compresses, and a compressed entry fits the index.
      const key = cjk(1024, 1);
      expect(new TextEncoder().encode(key).length).toBe(3072);
      await store.withTransaction(async (tx) => {
        await (tx as pg.PoolClient).query(`INSERT INTO "orders_${table}" VALUES (1)`);
        await store.addMessage(tx, message(key, "first"));
        await store.addMessage(tx, message(key, "second"));
        await store.addMessage(tx, message(`${key.slice(0, 1023)}字`, "other key"));
      });
      const first = await store.fetchAndLock(claim);
      // The second of the key waits for the first; the other key (same hash prefix) does not.
      expect(first.messages.map((m) => new TextDecoder().decode(m.value))).toEqual(["first", "other key"]);
      expect(first.messages[0]?.key).toBe(key);
      await store.markAsSent(
        first.token,
        first.messages.map((m) => m.id),
      );
      const second = await store.fetchAndLock(claim);
      expect(second.messages.map((m) => new TextDecoder().decode(m.value))).toEqual(["second"]);
    } finally {
      await close();
    }
  });
});

describe.each(clients())("%s: long keys, the plan", (kind) => {
  it("the per-key claim looks predecessors up in the hashed key index", async () => {
    const { db, close } = await open(kind);
    try {
      const table = freshTable();
      await new PostgresStore(db, { table }).migrate();
      await exec(
        db,
        `INSERT INTO "${table}" (key, value, created_at)
         SELECT 'k' || (g % 500), '\\x00', now() + g * interval '1 ms' FROM generate_series(1, 5000) AS g`,
      );
      await exec(db, `ANALYZE "${table}"`);
      const pass = buildStatements("public", table).pass({ claim: true, keyed: true }, false);
      const values: Record<string, string> = { claim: "t", lease: "1000", limit: "10" };
      const plan = await (db as pg.Pool).query(
        `EXPLAIN (COSTS OFF) ${pass.text.replace(/\$(\d+)/g, (_, n) => `'${values[pass.args[Number(n) - 1] as string]}'`)}`,
      );
      const text = plan.rows.map((row: Record<string, string>) => Object.values(row)[0]).join("\n");
      expect(text).toMatch(
        new RegExp(
          `Index (Only )?Scan using "?edge_outbox_${table}_key"? on "?${table}"? o[\\s\\S]*?Index Cond: \\(\\(hashtextextended\\(`,
        ),
      );
    } finally {
      await close();
    }
  });
});

describe.each(clients())("%s: ids never come back", (kind) => {
  const ids = async (store: PostgresStore, db: Db, n: number) => {
    for (let i = 0; i < n; i++) await store.addMessage(db as never, message(`k${i}`));
    const { token, messages } = await store.fetchAndLock({ ...claim, ordering: "none" });
    await store.markAsSent(
      token,
      messages.map((m) => m.id),
    );
    return messages.map((m) => m.id);
  };

  it("DROP TABLE, then migrate(): the table is made again, under a new namespace", async () => {
    const { db, close } = await open(kind);
    try {
      const table = freshTable();
      const store = new PostgresStore(db, { table });
      await store.migrate();
      const before = await ids(store, db, 2);
      await exec(db, `DROP TABLE "${table}"`);
      await store.migrate();
      const after = await ids(store, db, 2);
      expect(after).toHaveLength(2);
      expect(after.filter((id) => before.includes(id))).toEqual([]);
      // Another process's store, which never migrated, reads the new namespace too.
      const other = new PostgresStore(db, { table });
      expect((await ids(other, db, 1)).filter((id) => before.includes(id))).toEqual([]);
    } finally {
      await close();
    }
  });

  it.each([
    ["TRUNCATE ... RESTART IDENTITY", (t: string) => `TRUNCATE "${t}" RESTART IDENTITY`],
    ["ALTER TABLE ... ALTER id RESTART", (t: string) => `ALTER TABLE "${t}" ALTER COLUMN id RESTART`],
  ])("%s under running stores: their next claim renews the namespace", async (_, reset) => {
    const { db, close } = await open(kind);
    try {
      const table = freshTable();
      const store = new PostgresStore(db, { table });
      await store.migrate();
      const other = new PostgresStore(db, { table });
      const before = [...(await ids(store, db, 2)), ...(await ids(other, db, 1))];
      await exec(db, `DELETE FROM "${table}"`);
      await exec(db, reset(table));
      const after = [...(await ids(store, db, 2)), ...(await ids(other, db, 1))];
      expect(after).toHaveLength(3);
      expect(after.filter((id) => before.includes(id))).toEqual([]);
      // Renewed once: both stores agree on the new namespace, and migrate() keeps it.
      expect(new Set(after.map((id) => id.split("_")[1])).size).toBe(1);
      await store.migrate();
      const again = await ids(other, db, 1);
      expect(again[0]?.split("_")[1]).toBe(after[0]?.split("_")[1]);
      // Dead messages are listed under the current namespace too.
      await exec(db, `TRUNCATE "${table}" RESTART IDENTITY`);
      await store.addMessage(db as never, message("dead"));
      const { token, messages } = await store.fetchAndLock({ ...claim, ordering: "none" });
      await store.markAsDead(token, [{ id: messages[0]?.id as string, error: "x" }]);
      await exec(db, `TRUNCATE "${table}" RESTART IDENTITY`);
      await exec(
        db,
        `INSERT INTO "${table}" (key, value, created_at, status) VALUES ('d', '\\x00', now(), 3)`,
      );
      const [dead] = await other.listDead();
      expect(dead?.id).not.toBe(messages[0]?.id);
      expect([...before, ...after]).not.toContain(dead?.id);
    } finally {
      await close();
    }
  });
});

describe.runIf(PG_URL !== undefined)("prepared statements (node-postgres)", () => {
  it.each([
    [undefined, true],
    [false, false],
  ])(
    "prepare: %s runs the store's statements prepared: %s, and relays either way",
    async (prepare, prepared) => {
      // One connection, so the session the store used is the one asked.
      const pool = new pg.Pool({ connectionString: url(), max: 1 });
      try {
        const store = new PostgresStore(pool, {
          table: freshTable(),
          ...(prepare === undefined ? {} : { prepare }),
        });
        await store.migrate();
        await store.addMessage(pool, message("k"));
        const { token, messages } = await store.fetchAndLock(claim);
        expect(
          await store.markAsSent(
            token,
            messages.map((m) => m.id),
          ),
        ).toBe(1);
        const { rows } = await pool.query(
          "SELECT name FROM pg_prepared_statements WHERE name LIKE 'edge_outbox_%'",
        );
        expect(rows.length > 0).toBe(prepared);
      } finally {
        await pool.end();
      }
    },
  );

  it("refuses a prepare option that is not a boolean", () => {
    expect(() => new PostgresStore(lite, { prepare: "no" as never })).toThrow(ValidationError);
  });
});
