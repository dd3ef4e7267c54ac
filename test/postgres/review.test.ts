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
    // One connection: every listen and reconnect checks out the same or a replacement one.
    const pool = new pg.Pool({ connectionString: url(), max: 1, application_name: name });
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
        const client = (await pool.connect()) as pg.PoolClient;
        const n =
          client.listenerCount("error") + client.listenerCount("end") + client.listenerCount("notification");
        client.release();
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
      await store.updateRetryCount(token, [{ id: second as string, delay: 0, availableAt: new Date(), error: "\uFEFF" }]);
      const dead = await store.listDead();
      expect(dead.map((m) => [m.key, m.lastError])).toEqual([["\uFEFF", "\uFEFFboom"]]);
      const again = await store.fetchAndLock({ ...claim, ordering: "none" });
      expect(again.messages.map((m) => [m.key, m.lastError])).toEqual([["\uFEFFkey", "\uFEFF"]]);
    } finally {
      await pool?.end();
    }
  });
});
