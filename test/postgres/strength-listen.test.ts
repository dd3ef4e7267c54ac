/**
 * listen() wakes a relay for its own outbox only, stops at unlisten, survives a throwing
 * callback, and refuses what cannot work; addMessage refuses a message it cannot write, saying
 * why. Written against mutation survivors (TESTING.md), on every driver this run has.
 */
import { PGlite } from "@electric-sql/pglite";
import pg from "pg";
import postgres from "postgres";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { PostgresStore } from "../../adapters/postgres.ts";
import { prepareMessage, StoreError, ValidationError } from "../../mod.ts";
import { waitFor } from "../support/senders.ts";
import { type DriverName, driversToRun, freshTable, openClient, PG_URL, serverDatabase } from "./helpers.ts";

vi.setConfig({ testTimeout: 120_000, hookTimeout: 120_000 });

const url = serverDatabase("strength_listen");
const message = (key: string) => prepareMessage({ key, value: key }, { maxMessageBytes: 1024 });

for (const kind of driversToRun()) {
  describe(`${kind}: listen()`, () => {
    let client: Awaited<ReturnType<typeof openClient>>;
    beforeAll(async () => {
      // PGlite cannot close once it listened (measured): a fresh one, left open.
      client =
        kind === "PGlite"
          ? { db: new PGlite(), close: async () => {} }
          : await openClient(kind as DriverName, url());
    });
    afterAll(async () => {
      await client?.close();
    });

    it("wakes for its own outbox's commits only, in order, and not after unlisten", async () => {
      const mine = new PostgresStore(client.db, { table: freshTable(), notify: true });
      const other = new PostgresStore(client.db, { table: freshTable(), notify: true });
      await mine.migrate();
      await other.migrate();
      let wakes = 0;
      const unlisten = await mine.listen(() => {
        wakes += 1;
      });
      // Another outbox's commit first, then this one's: notifications arrive in commit order.
      await other.addMessage(client.db as never, message("other"));
      await mine.addMessage(client.db as never, message("mine"));
      await waitFor(() => wakes >= 1, 10_000);
      await mine.addMessage(client.db as never, message("mine again"));
      await waitFor(() => wakes >= 2, 10_000);
      expect(wakes).toBe(2);
      await unlisten();
      await mine.addMessage(client.db as never, message("after"));
      // A store that still listens hears this commit; the unlistened one must not have.
      let heard = 0;
      const probe = await other.listen(() => {
        heard += 1;
      });
      await other.addMessage(client.db as never, message("probe"));
      await waitFor(() => heard === 1, 10_000);
      await probe();
      expect(wakes).toBe(2);
      expect(await mine.stats()).toMatchObject({ pending: 3 });
    });

    it("wakes nobody for a commit of a store without notify (the default)", async () => {
      const table = freshTable();
      const quiet = new PostgresStore(client.db, { table });
      const loud = new PostgresStore(client.db, { table, notify: true });
      await loud.migrate();
      let wakes = 0;
      const unlisten = await loud.listen(() => {
        wakes += 1;
      });
      try {
        await quiet.addMessage(client.db as never, message("quiet"));
        await loud.addMessage(client.db as never, message("loud"));
        // The quiet commit came first: had it notified, that wake would have come before this one.
        await waitFor(() => wakes >= 1, 10_000);
        expect(wakes).toBe(1);
        expect(await quiet.stats()).toMatchObject({ pending: 2 });
      } finally {
        await unlisten();
      }
    });

    it("reports a throwing onWake to onError (naming the channel) and goes on waking", async () => {
      const store = new PostgresStore(client.db, { table: freshTable(), notify: true });
      await store.migrate();
      let calls = 0;
      const errors: unknown[] = [];
      const unlisten = await store.listen(
        () => {
          calls += 1;
          throw new Error(`wake ${calls} failed`);
        },
        {
          onError: (error) => {
            errors.push(error);
            throw new Error("the error handler failed too");
          },
        },
      );
      try {
        await store.addMessage(client.db as never, message("a"));
        await waitFor(() => errors.length === 1, 10_000);
        await store.addMessage(client.db as never, message("b"));
        await waitFor(() => errors.length === 2, 10_000);
        expect(calls).toBe(2);
        expect(errors[0]).toBeInstanceOf(StoreError);
        expect((errors[0] as Error).message).toBe(
          `PostgreSQL failed while listening on ${store.channel}: wake 1 failed`,
        );
        expect((errors[1] as Error).message).toContain("wake 2 failed");
      } finally {
        await unlisten();
      }
    });

    it("refuses an onWake that is not a function, before listening", async () => {
      const store = new PostgresStore(client.db, { table: freshTable(), notify: true });
      await expect(store.listen("wake" as never)).rejects.toThrow(
        new ValidationError("onWake must be a function"),
      );
    });

    it("addMessage says why it refuses a message it cannot write, and writes nothing", async () => {
      const store = new PostgresStore(client.db, { table: freshTable() });
      await store.migrate();
      const good = message("k");
      await expect(store.addMessage(client.db as never, { ...good, value: "text" as never })).rejects.toThrow(
        new ValidationError("message.value must be a Uint8Array (use Outbox.addMessage, which encodes it)", {
          code: "INVALID_MESSAGE",
        }),
      );
      await expect(store.addMessage(client.db as never, undefined as never)).rejects.toMatchObject({
        code: "INVALID_MESSAGE",
      });
      for (const timestamp of [new Date(Number.NaN), "2026-01-01" as never, undefined as never]) {
        await expect(store.addMessage(client.db as never, { ...good, timestamp })).rejects.toThrow(
          `message.timestamp must be a valid Date, got ${String(timestamp)}`,
        );
      }
      expect(await store.stats()).toMatchObject({ pending: 0 });
      // The timestamp is kept to the millisecond.
      const at = new Date("2026-03-04T05:06:07.089Z");
      await store.addMessage(client.db as never, { ...good, timestamp: at });
      const { messages } = await store.fetchAndLock({
        batchSize: 1,
        leaseDuration: 30_000,
        ordering: "none",
      });
      expect(messages[0]?.timestamp.toISOString()).toBe(at.toISOString());
    });
  });
}

describe.runIf(PG_URL !== undefined)("postgres.js: a dropped listening connection", () => {
  it("wakes once it listens again (for the commits it missed), not when it first listens", async () => {
    const name = `listen_js_${process.pid}`;
    const sql = postgres(url(), { max: 2, onnotice: () => {}, connection: { application_name: name } });
    const admin = new pg.Pool({ connectionString: url(), max: 1 });
    const store = new PostgresStore(sql, { table: freshTable(), notify: true });
    await store.migrate();
    let wakes = 0;
    const unlisten = await store.listen(() => {
      wakes += 1;
    });
    try {
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(wakes).toBe(0);
      const killed = await admin.query(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1 AND query ILIKE 'listen%'",
        [name],
      );
      expect(killed.rowCount).toBe(1);
      // No commit meanwhile: the wake comes from listening again.
      await waitFor(() => wakes === 1, 20_000);
    } finally {
      await unlisten();
      await sql.end({ timeout: 1 });
      await admin.end();
    }
  });
});

describe.runIf(PG_URL !== undefined)("pg Pool: unlisten", () => {
  it("hands the listening connection back to the pool, which can then use it for everything", async () => {
    const pool = new pg.Pool({ connectionString: url(), max: 2 });
    pool.on("error", () => {});
    const store = new PostgresStore(pool, { table: freshTable(), notify: true });
    await store.migrate();
    const unlisten = await store.listen(() => {});
    expect(pool.totalCount - pool.idleCount).toBe(1);
    await unlisten();
    expect(pool.totalCount - pool.idleCount).toBe(0);
    // Both connections serve transactions at once again.
    const a = await pool.connect();
    const b = await pool.connect();
    expect(b.listenerCount("notification")).toBe(0);
    expect(a.listenerCount("notification") + b.listenerCount("notification")).toBe(0);
    a.release();
    b.release();
    await pool.end();
  });

  it("during the pause before listening again: no connection is taken after, none is left listening", async () => {
    const name = `unlisten_pause_${process.pid}`;
    const pool = new pg.Pool({ connectionString: url(), max: 3, application_name: name });
    pool.on("error", () => {});
    const admin = new pg.Pool({ connectionString: url(), max: 1 });
    try {
      const store = new PostgresStore(pool, { table: freshTable(), notify: true });
      await store.migrate();
      const errors: unknown[] = [];
      const unlisten = await store.listen(() => {}, { onError: (error) => errors.push(error) });
      await admin.query(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1 AND query ILIKE 'listen%'",
        [name],
      );
      await waitFor(() => errors.length === 1, 10_000);
      // The drop was reported; listening again waits 50 ms. Unlistened now, it never happens.
      let taken = 0;
      pool.on("acquire", () => {
        taken += 1;
      });
      await unlisten();
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(taken).toBe(0);
      expect(pool.totalCount - pool.idleCount).toBe(0);
      const { rows } = await admin.query(
        "SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = $1 AND query ILIKE 'listen%' AND state <> 'idle in transaction'",
        [name],
      );
      expect(rows[0].n).toBe(0);
    } finally {
      await pool.end();
      await admin.end();
    }
  });
});
