/**
 * Upgrades from the layouts earlier versions really made (see fixtures/legacy-layouts.ts), and
 * index names that no other outbox's names meet. Each on PGlite and, when EDGE_OUTBOX_PG_URL is
 * set, on a fresh database of the server.
 */
import { PGlite } from "@electric-sql/pglite";
import pg from "pg";
import { describe, expect, it, vi } from "vitest";
import { indexName } from "../../adapters/postgres/sql.ts";
import { PostgresStore, SCHEMA_VERSION } from "../../adapters/postgres.ts";
import { prepareMessage } from "../../mod.ts";
import { version1Layout, version2Layout } from "./fixtures/legacy-layouts.ts";
import { createDatabase, PG_URL } from "./helpers.ts";

vi.setConfig({ testTimeout: 120_000, hookTimeout: 60_000 });

const message = (key: string) => prepareMessage({ key, value: key }, { maxMessageBytes: 1024 });
const claim = { batchSize: 10, leaseDuration: 30_000, ordering: "key" } as const;
const NAMESPACE = "7q3m9z2k4d5e8f1a";

type Db = pg.Pool | PGlite;
const kinds = PG_URL === undefined ? (["PGlite"] as const) : (["PGlite", "pg Pool"] as const);

/** A database of its own: a new PGlite, or a new database on the server. */
async function freshDb(
  kind: (typeof kinds)[number],
): Promise<{ db: Db; pools: () => pg.Pool; close: () => Promise<void> }> {
  if (kind === "PGlite") {
    const db = new PGlite();
    await db.waitReady;
    return {
      db,
      pools: () => {
        throw new Error("PGlite has no pools");
      },
      close: () => db.close(),
    };
  }
  const database = await createDatabase("upgrade");
  const opened: pg.Pool[] = [];
  const pools = () => {
    const pool = new pg.Pool({ connectionString: database.url, max: 2 });
    pool.on("error", () => {});
    opened.push(pool);
    return pool;
  };
  return {
    db: pools(),
    pools,
    close: async () => {
      await Promise.all(opened.map((pool) => pool.end()));
      await database.drop();
    },
  };
}

/** Runs `text` (with `args`) on either client; the rows as objects. */
async function rows(db: Db, text: string, args: unknown[] = []): Promise<Record<string, unknown>[]> {
  const run = db.query.bind(db) as (text: string, args: unknown[]) => Promise<{ rows: unknown[] }>;
  return (await run(text, args)).rows as Record<string, unknown>[];
}

/** The table's indexes: name -> definition. */
async function indexes(db: Db, table: string): Promise<Map<string, string>> {
  const found = await rows(
    db,
    `SELECT indexname, indexdef FROM pg_indexes WHERE tablename = '${table}' AND indexname NOT LIKE '%pkey'`,
  );
  return new Map(found.map((row) => [String(row.indexname), String(row.indexdef)]));
}

describe.each(kinds)("%s: upgrades", (kind) => {
  it.each([
    ["1", version1Layout],
    ["2", version2Layout],
  ])(
    "a table version %s made is upgraded in place: same namespace and messages, indexes renamed",
    async (_, layout) => {
      const { db, pools, close } = await freshDb(kind);
      try {
        const table = "outbox";
        for (const statement of layout(table, NAMESPACE)) await rows(db, statement);
        for (const key of ["a", "a", "b"]) {
          await rows(
            db,
            `INSERT INTO "${table}" (key, value, created_at) VALUES ($1, '\\x00', clock_timestamp())`,
            [key],
          );
        }
        const before = await rows(
          db,
          `SELECT indexrelid::int AS oid, indexrelid::regclass::text AS name FROM pg_index WHERE indrelid = '"${table}"'::regclass`,
        );
        // Several processes upgrading at once (on the server): one does it, the others find it done.
        const stores =
          kind === "PGlite"
            ? [new PostgresStore(db, { table })]
            : [1, 2, 3, 4].map(() => new PostgresStore(pools(), { table }));
        await Promise.all(stores.map((store) => store.migrate()));
        const store = new PostgresStore(db, { table });
        const { token, messages } = await store.fetchAndLock(claim);
        expect(messages.map((m) => [m.key, m.id])).toEqual([
          ["a", `msg_${NAMESPACE}_1`],
          ["b", `msg_${NAMESPACE}_3`],
        ]);
        expect(await store.markAsSent(token, [messages[0]?.id as string])).toBe(1);
        expect((await store.fetchAndLock(claim)).messages.map((m) => m.id)).toEqual([`msg_${NAMESPACE}_2`]);
        const after = await indexes(db, table);
        expect([...after.keys()].sort()).toEqual(
          ["dead", "key", "ready", "sent"].map((p) => `edge_outbox_${table}_${p}`),
        );
        expect(after.get(`edge_outbox_${table}_key`)).toMatch(/hashtextextended\(key, /);
        // Renamed, not rebuilt: the ready, dead and sent indexes are the ones the old version made.
        const kept = await rows(
          db,
          `SELECT indexrelid::int AS oid FROM pg_index WHERE indrelid = '"${table}"'::regclass`,
        );
        const oldReady = before.find((row) => row.name === `${table}_ready`)?.oid;
        expect(kept.map((row) => row.oid)).toContain(oldReady);
        const [version] = await rows(
          db,
          `SELECT version, id_mark IS NOT NULL AS fenced FROM edge_outbox_schema WHERE table_name = '${table}'`,
        );
        expect(version).toEqual({ version: SCHEMA_VERSION, fenced: true });
      } finally {
        await close();
      }
    },
  );
});

describe.each(kinds)("%s: index names", (kind) => {
  it.each([
    [["outbox", "outbox_key"]],
    [["outbox_key", "outbox"]],
    [["outbox", "outbox_dead"]],
    [["outbox_dead", "outbox"]],
  ])("outboxes %j in one schema each get their four indexes and work", async (tables) => {
    const { db, close } = await freshDb(kind);
    try {
      for (const table of tables) {
        const store = new PostgresStore(db, { table });
        await store.migrate();
        await store.addMessage(db as never, message("k"));
        const { token, messages } = await store.fetchAndLock(claim);
        await store.markAsDead(token, [{ id: messages[0]?.id as string, error: "x" }]);
        expect(await store.listDead()).toHaveLength(1);
      }
      for (const table of tables) expect((await indexes(db, table)).size).toBe(4);
    } finally {
      await close();
    }
  });

  it("a table name of 63 characters gets four distinct index names of at most 63 bytes", async () => {
    const { db, close } = await freshDb(kind);
    try {
      const long = `t${"x".repeat(62)}`;
      const names = (["ready", "key", "dead", "sent"] as const).map((p) => indexName(long, p));
      expect(new Set(names).size).toBe(4);
      for (const name of names) expect(name.length).toBeLessThanOrEqual(63);
      const store = new PostgresStore(db, { table: long });
      await store.migrate();
      await store.migrate();
      expect([...(await indexes(db, long)).keys()].sort()).toEqual([...names].sort());
    } finally {
      await close();
    }
  });
});
