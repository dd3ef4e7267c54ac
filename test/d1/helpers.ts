/**
 * D1 for the tests: Miniflare 4's real D1 (workerd's SQLite behind the binding), reached from
 * Node through `mf.getD1Database()`, a proxy that runs every call inside workerd. One Miniflare
 * per test file; each store gets a table of its own, so tests never see each other's rows.
 */
import { Miniflare } from "miniflare";
import { afterAll, beforeAll } from "vitest";
import { type D1Database, D1Store, type D1StoreOptions } from "../../adapters/d1.ts";

/** A Miniflare with one D1 database bound as `DB`, and that binding. */
export interface D1Fixture {
  mf: Miniflare;
  db: D1Database;
}

/** Starts Miniflare with a D1 database (in memory: nothing persists between runs). */
export async function startD1(): Promise<D1Fixture> {
  const mf = new Miniflare({
    modules: true,
    script: "export default { fetch() { return new Response(null, { status: 404 }); } };",
    compatibilityDate: "2025-01-01",
    d1Databases: ["DB"],
  });
  const db = (await mf.getD1Database("DB")) as unknown as D1Database;
  return { mf, db };
}

let tables = 0;

/** A table name no other store of this process has used. */
export function freshTable(): string {
  return `outbox_${process.pid}_${++tables}`;
}

/** A migrated D1Store on a fresh table of `db`. */
export async function migratedStore(db: D1Database, options: D1StoreOptions = {}): Promise<D1Store> {
  const store = new D1Store(db, { table: freshTable(), ...options });
  await store.migrate();
  return store;
}

let shared: Promise<D1Fixture> | undefined;

/** One Miniflare for the whole process (the model test's many runs), started on first use. */
export function sharedD1(): Promise<D1Fixture> {
  shared ??= startD1();
  return shared;
}

/** Disposes the process's shared Miniflare, if started. */
export async function stopSharedD1(): Promise<void> {
  const fixture = shared;
  shared = undefined;
  await (await fixture)?.mf.dispose();
}

/** Applies a migration file's text as wrangler does: the whole text, statement after statement. */
export async function applyFile(db: D1Database, text: string): Promise<void> {
  await (db as D1Database & { exec(sql: string): Promise<unknown> }).exec(text.replaceAll("\n", " "));
}

/**
 * A Miniflare with D1 for the calling test file: started before its tests, disposed after them.
 * The returned object reads the running fixture (use it inside tests and hooks only).
 */
export function d1ForFile(): D1Fixture {
  let fixture: D1Fixture | undefined;
  beforeAll(async () => {
    fixture = await startD1();
  }, 60_000);
  afterAll(async () => {
    await fixture?.mf.dispose();
  });
  const running = (): D1Fixture => {
    if (fixture === undefined) throw new Error("the D1 fixture runs only inside the file's tests");
    return fixture;
  };
  return {
    get mf() {
      return running().mf;
    },
    get db() {
      return running().db;
    },
  };
}
