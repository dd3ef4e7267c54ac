/**
 * LISTEN/NOTIFY wake-ups: a commit wakes a relay in another process within milliseconds (its
 * period is ten minutes, so only the wake can deliver in time); a rollback wakes nobody; a
 * dropped listening connection is reported, reconnects and wakes again, while the periodic
 * loop keeps relaying meanwhile. On the server for node-postgres and postgres.js; PGlite
 * in-process.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { PGlite } from "@electric-sql/pglite";
import pg from "pg";
import postgres from "postgres";
import { afterEach, describe, expect, it, vi } from "vitest";
import { notifyChannel } from "../../adapters/postgres/options.ts";
import { PostgresStore } from "../../adapters/postgres.ts";
import { Outbox, StoreError } from "../../mod.ts";
import { startReceiver } from "../libsql/helpers.ts";
import { recordingSender, waitFor } from "../support/senders.ts";
import { freshTable, PG_URL, serverDatabase } from "./helpers.ts";

// PGlite and child processes need CPU a loaded machine may not have.
vi.setConfig({ testTimeout: 120_000, hookTimeout: 120_000 });

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const url = serverDatabase("notify");
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const children: ChildProcess[] = [];
afterEach(() => {
  for (const child of children.splice(0))
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
});

it("keeps channel names within PostgreSQL's 63 bytes, distinct for long names", () => {
  expect(notifyChannel("public", "outbox_messages")).toBe("edge_outbox:public.outbox_messages");
  const a = notifyChannel("s".repeat(63), `${"t".repeat(62)}a`);
  const b = notifyChannel("s".repeat(63), `${"t".repeat(62)}b`);
  expect(a.length).toBeLessThanOrEqual(63);
  expect(a).not.toBe(b);
});

it("PGlite: a commit wakes a listener of the same database, a rollback does not", {
  timeout: 300_000,
}, async () => {
  const db = new PGlite();
  const store = new PostgresStore(db, { table: freshTable(), notify: true });
  await store.migrate();
  let wakes = 0;
  const unlisten = await store.listen(() => {
    wakes += 1;
  });
  await expect(
    db.transaction(async (tx) => {
      await store.addMessage(tx, {
        key: "a",
        value: new Uint8Array([1]),
        headers: {},
        timestamp: new Date(),
      });
      throw new Error("rolled back");
    }),
  ).rejects.toThrow("rolled back");
  await sleep(200);
  expect(wakes).toBe(0);
  await store.addMessage(db, { key: "a", value: new Uint8Array([1]), headers: {}, timestamp: new Date() });
  await waitFor(() => wakes === 1, 5_000);
  await unlisten();
  await store.addMessage(db, { key: "b", value: new Uint8Array([2]), headers: {}, timestamp: new Date() });
  await sleep(200);
  expect(wakes).toBe(1);
  // Not closed: PGlite 0.5's close() never resolves once a LISTEN has run (measured).
});

describe.runIf(PG_URL !== undefined)("LISTEN/NOTIFY on the server", () => {
  for (const driver of ["pg", "postgres.js"] as const) {
    it(`${driver}: a committed message wakes a relay in another process within milliseconds; a rolled-back one never`, async () => {
      const pool = new pg.Pool({ connectionString: url(), max: 2 });
      const table = freshTable();
      const store = new PostgresStore(pool, { table, notify: true });
      await store.migrate();
      const receiver = await startReceiver();
      try {
        const child = spawn(
          process.execPath,
          [
            "--import",
            "tsx",
            join(ROOT, "test/postgres/fixtures/relay.ts"),
            ...[url(), table, receiver.url, "r1", driver, "30000", "5000", "600000", "listen"],
          ],
          { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] },
        );
        children.push(child);
        let output = "";
        child.stdout?.setEncoding("utf8").on("data", (chunk: string) => (output += chunk));
        child.stderr?.setEncoding("utf8").on("data", (chunk: string) => (output += chunk));
        await waitFor(() => output.includes("listening"), 60_000);
        // The relay's first pass (at start) has run and found nothing: it now waits ten minutes.
        await sleep(300);

        const client = await pool.connect();
        await client.query("BEGIN");
        await store.addMessage(client, {
          key: "k",
          value: new TextEncoder().encode("rolled-back"),
          headers: {},
          timestamp: new Date(),
        });
        await client.query("ROLLBACK");
        client.release();

        const latencies: number[] = [];
        for (let i = 0; i < 5; i++) {
          const started = performance.now();
          await store.addMessage(pool, {
            key: "k",
            value: new TextEncoder().encode(`v${i}`),
            headers: {},
            timestamp: new Date(),
          });
          await waitFor(() => receiver.deliveries.some((d) => d.value === `v${i}`), 5_000).catch(() => {
            throw new Error(`not woken: ${output}`);
          });
          latencies.push(performance.now() - started);
        }
        // Milliseconds when the machine is idle; a loaded CI machine gets a generous margin.
        expect(Math.min(...latencies)).toBeLessThan(1_000);
        console.log(
          `${driver}: commit-to-delivery with NOTIFY, ms: ${latencies.map((l) => l.toFixed(1)).join(", ")}`,
        );
        expect(receiver.deliveries.map((d) => d.value)).toEqual(["v0", "v1", "v2", "v3", "v4"]);
      } finally {
        await receiver.close();
        await pool.end();
      }
    });
  }

  it("pg Pool: a dropped listening connection is reported, reconnects and wakes again; the loop relays meanwhile", async () => {
    const name = `listener_${Math.random().toString(36).slice(2, 8)}`;
    const pool = new pg.Pool({ connectionString: url(), max: 3, application_name: name });
    pool.on("error", () => {});
    const admin = new pg.Pool({ connectionString: url(), max: 1 });
    const table = freshTable();
    const store = new PostgresStore(pool, { table, notify: true });
    await store.migrate();
    const sender = recordingSender();
    // A period short enough to relay while the listener is down, long enough to tell a wake apart.
    const outbox = new Outbox(store, sender, { period: 1_500, onError: () => {} });
    const errors: unknown[] = [];
    let wakes = 0;
    const unlisten = await store.listen(
      () => {
        wakes += 1;
        outbox.wake();
      },
      { onError: (error) => errors.push(error) },
    );
    outbox.start();
    const add = (value: string) =>
      store.addMessage(pool, {
        key: "k",
        value: new TextEncoder().encode(value),
        headers: {},
        timestamp: new Date(),
      });
    try {
      await add("before");
      await waitFor(() => sender.delivered.length === 1, 5_000);
      const killed = await admin.query(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1 AND query LIKE 'LISTEN%'",
        [name],
      );
      expect(killed.rowCount).toBe(1);
      await waitFor(() => errors.length > 0, 5_000);
      expect(errors[0]).toBeInstanceOf(StoreError);
      expect(errors[0]).toMatchObject({ retryable: true });
      // Relayed whether or not the listener is back: the loop's period is the safety net.
      await add("during");
      await waitFor(() => sender.delivered.length === 2, 10_000);
      // Back: a commit wakes the relay long before its period.
      await waitFor(async () => {
        const { rows } = await admin.query(
          "SELECT 1 FROM pg_stat_activity WHERE application_name = $1 AND query LIKE 'LISTEN%'",
          [name],
        );
        return rows.length === 1;
      }, 10_000);
      const before = wakes;
      await add("after");
      await waitFor(() => wakes > before, 1_000);
      await waitFor(() => sender.delivered.length === 3, 5_000);
    } finally {
      await unlisten();
      await outbox.stop();
      await pool.end();
      await admin.end();
    }
  });

  it("postgres.js: listen() resolves once listening, and unlisten stops the wakes", async () => {
    const sql = postgres(url(), { max: 2, onnotice: () => {} });
    const table = freshTable();
    const store = new PostgresStore(sql, { table, notify: true });
    await store.migrate();
    let wakes = 0;
    const unlisten = await store.listen(() => {
      wakes += 1;
    });
    await store.addMessage(sql, { key: "k", value: new Uint8Array([1]), headers: {}, timestamp: new Date() });
    await waitFor(() => wakes === 1, 5_000);
    await unlisten();
    await store.addMessage(sql, { key: "k", value: new Uint8Array([2]), headers: {}, timestamp: new Date() });
    await sleep(300);
    expect(wakes).toBe(1);
    await sql.end({ timeout: 1 });
  });
});
