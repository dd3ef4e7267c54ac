/**
 * PostgreSQL for the store's tests: the real server named by `EDGE_OUTBOX_PG_URL` (a database
 * of the test file's own, dropped after it) and PGlite. Without the variable only PGlite runs;
 * with it, an unreachable server fails the tests, never skips them.
 */
import { PGlite } from "@electric-sql/pglite";
import pg from "pg";
import postgres from "postgres";
import { afterAll, beforeAll } from "vitest";
import { PostgresStore, type PostgresStoreOptions } from "../../adapters/postgres.ts";
import { prepareMessage } from "../../mod.ts";

/** The server's URL, or undefined: then only PGlite runs. */
export const PG_URL = process.env.EDGE_OUTBOX_PG_URL || undefined;

/** A database of its own on the server: `url` to reach it, `drop` to remove it (with its connections). */
export async function createDatabase(label: string): Promise<{ url: string; drop: () => Promise<void> }> {
  if (PG_URL === undefined) throw new Error("EDGE_OUTBOX_PG_URL is not set");
  const name = `eo_${label}_${process.pid}_${Math.random().toString(36).slice(2, 8)}`.toLowerCase();
  const admin = new pg.Client({ connectionString: PG_URL, connectionTimeoutMillis: 5000 });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE "${name}"`);
  } finally {
    await admin.end();
  }
  const url = new URL(PG_URL);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    drop: async () => {
      const client = new pg.Client({ connectionString: PG_URL, connectionTimeoutMillis: 5000 });
      await client.connect();
      try {
        await client.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
      } finally {
        await client.end();
      }
    },
  };
}

/**
 * The file's database on the server, created before its tests and dropped after them; the
 * returned getter throws inside a test if the server was not set.
 */
export function serverDatabase(label: string): () => string {
  let database: { url: string; drop: () => Promise<void> } | undefined;
  beforeAll(async () => {
    if (PG_URL !== undefined) database = await createDatabase(label);
  });
  afterAll(async () => {
    await database?.drop();
  });
  return () => {
    if (database === undefined) throw new Error("no server database (EDGE_OUTBOX_PG_URL unset)");
    return database.url;
  };
}

let tables = 0;
/** A table name no other test of this process uses. */
export function freshTable(): string {
  return `outbox_${process.pid}_${++tables}`;
}

/** A store on `db` over a fresh table, migrated. */
export async function migratedStore<D extends ConstructorParameters<typeof PostgresStore>[0]>(
  db: D,
  options: PostgresStoreOptions = {},
): Promise<PostgresStore> {
  const store = new PostgresStore(db, { table: freshTable(), ...options });
  await store.migrate();
  return store;
}

/** One client of each kind the store accepts, on `url` (or PGlite), closed by `close`. */
export type DriverName = "pg Pool" | "pg Client" | "postgres.js" | "PGlite";

/** Opens a client of `kind`; `close` ends it. */
export async function openClient(
  kind: DriverName,
  url?: string,
): Promise<{ db: ConstructorParameters<typeof PostgresStore>[0]; close: () => Promise<void> }> {
  switch (kind) {
    case "pg Pool": {
      const pool = new pg.Pool({ connectionString: url, max: 8 });
      // An idle connection the server ends must not take the test process down.
      pool.on("error", () => {});
      return { db: pool, close: () => pool.end() };
    }
    case "pg Client": {
      const client = new pg.Client({ connectionString: url });
      client.on("error", () => {});
      await client.connect();
      return { db: client, close: () => client.end() };
    }
    case "postgres.js": {
      const sql = postgres(url ?? "", { max: 8, onnotice: () => {} });
      return { db: sql, close: () => sql.end({ timeout: 5 }) };
    }
    case "PGlite": {
      const db = new PGlite();
      await db.waitReady;
      return { db, close: () => db.close() };
    }
  }
}

/**
 * The drivers to run: every server driver when the server is set, PGlite always.
 * `EDGE_OUTBOX_PG_DRIVERS` (comma-separated names, e.g. `pg Pool,postgres.js`) narrows that
 * list, for mutation runs that target one driver's code (TESTING.md).
 */
export function driversToRun(): DriverName[] {
  const all: DriverName[] =
    PG_URL === undefined ? ["PGlite"] : ["pg Pool", "pg Client", "postgres.js", "PGlite"];
  const only = process.env.EDGE_OUTBOX_PG_DRIVERS;
  if (only === undefined || only === "") return all;
  const names = only.split(",").map((name) => name.trim());
  return all.filter((name) => names.includes(name));
}

/** A pg-API pool (node-postgres or Neon): what {@link commitAndRollBack} needs of it. */
interface PoolLike {
  connect(): Promise<{ query(text: string): Promise<unknown>; release(): void }>;
}

/**
 * The node-postgres idiom on `pool`: `order:1` added on a PoolClient after BEGIN and committed,
 * `order:2` added the same way and rolled back.
 */
export async function commitAndRollBack(pool: PoolLike, store: PostgresStore): Promise<void> {
  for (const [key, end] of [
    ["order:1", "COMMIT"],
    ["order:2", "ROLLBACK"],
  ] as const) {
    const client = await pool.connect();
    try {
      await client.query("BEGIN");
      await store.addMessage(client as never, prepareMessage({ key, value: key }, { maxMessageBytes: 1024 }));
      await client.query(end);
    } finally {
      client.release();
    }
  }
}

/** Runs `text` (no parameters) on any driver's client or transaction. */
export function run(tx: unknown, text: string): Promise<unknown> {
  const t = tx as { unsafe?: (q: string) => Promise<unknown>; query: (q: string) => Promise<unknown> };
  return typeof t.unsafe === "function" ? t.unsafe(text) : t.query(text);
}
