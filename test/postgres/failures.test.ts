/**
 * The server failing under a running relay: its connection terminated mid-statement
 * (`pg_terminate_backend`) and its statement cancelled by `statement_timeout`. Each is a typed,
 * retryable `StoreError` to `onError`; the loop goes on and nothing is lost. To catch the
 * relay inside a statement, another connection holds an ACCESS EXCLUSIVE lock on the table,
 * so the relay's claim waits on it.
 */
import pg from "pg";
import postgres from "postgres";
import { describe, expect, it, vi } from "vitest";
import { PostgresStore } from "../../adapters/postgres.ts";
import { Outbox, StoreError } from "../../mod.ts";
import { commitMessages } from "../conformance/store-conformance.ts";
import { recordingSender, waitFor } from "../support/senders.ts";
import { freshTable, PG_URL, serverDatabase } from "./helpers.ts";

// PGlite and child processes need CPU a loaded machine may not have.
vi.setConfig({ testTimeout: 120_000, hookTimeout: 120_000 });

const url = serverDatabase("failures");

type Kind = "pg" | "postgres.js";

/** A relay's client of `kind`, named so the test can find its backend; `settings` per session. */
function relayClient(kind: Kind, name: string, settings: Record<string, string> = {}) {
  if (kind === "pg") {
    const pool = new pg.Pool({ connectionString: url(), max: 2, application_name: name, ...settings });
    pool.on("error", () => {});
    return { db: pool, close: () => pool.end() };
  }
  const sql = postgres(url(), {
    max: 2,
    onnotice: () => {},
    connection: { application_name: name, ...settings },
  });
  return { db: sql, close: () => sql.end({ timeout: 1 }) };
}

/** Holds an ACCESS EXCLUSIVE lock on `table` until `release()`. */
async function lockTable(admin: pg.Pool, table: string) {
  const client = await admin.connect();
  await client.query("BEGIN");
  await client.query(`LOCK TABLE public."${table}" IN ACCESS EXCLUSIVE MODE`);
  return {
    release: async () => {
      await client.query("COMMIT");
      client.release();
    },
  };
}

async function relayUnder(
  kind: Kind,
  settings: Record<string, string>,
  disrupt: (admin: pg.Pool, name: string, errors: unknown[]) => Promise<void>,
) {
  const admin = new pg.Pool({ connectionString: url(), max: 3 });
  const name = `relay_${kind.replace(".", "")}_${Math.random().toString(36).slice(2, 8)}`;
  const relay = relayClient(kind, name, settings);
  const table = freshTable();
  const store = new PostgresStore(relay.db, { table });
  await store.migrate();
  const total = 50;
  await commitMessages(
    store,
    Array.from({ length: total }, (_, i) => ({ key: `k${i}`, value: String(i) })),
  );
  const errors: unknown[] = [];
  const sender = recordingSender();
  const outbox = new Outbox(store, sender, { batchSize: 5, period: 20, onError: (e) => errors.push(e) });
  try {
    const lock = await lockTable(admin, table);
    outbox.start();
    try {
      await disrupt(admin, name, errors);
    } finally {
      await lock.release();
    }
    await waitFor(() => new Set(sender.delivered).size === total, 20_000);
    await outbox.stop();
    expect(await store.stats()).toEqual({ pending: 0, inFlight: 0, dead: 0, oldestPendingAt: null });
    return { errors, delivered: sender.delivered, total };
  } finally {
    await outbox.stop();
    await relay.close();
    await admin.end();
  }
}

/** Waits until a backend of `name` waits on a lock, i.e. the relay is inside its claim. */
async function waitForBlockedRelay(admin: pg.Pool, name: string): Promise<void> {
  await waitFor(async () => {
    const { rows } = await admin.query(
      "SELECT 1 FROM pg_stat_activity WHERE application_name = $1 AND wait_event_type = 'Lock'",
      [name],
    );
    return rows.length > 0;
  }, 10_000);
}

describe.runIf(PG_URL !== undefined)("PostgresStore when the server fails a running relay", () => {
  for (const kind of ["pg", "postgres.js"] as const) {
    it(`${kind}: a connection terminated mid-claim is a retryable StoreError; the loop goes on, nothing lost`, async () => {
      const { errors, delivered, total } = await relayUnder(kind, {}, async (admin, name, seen) => {
        await waitForBlockedRelay(admin, name);
        const { rows } = await admin.query(
          "SELECT pg_terminate_backend(pid) AS done FROM pg_stat_activity WHERE application_name = $1",
          [name],
        );
        expect(rows.length).toBeGreaterThan(0);
        await waitFor(() => seen.length > 0, 10_000);
      });
      expect(errors[0]).toBeInstanceOf(StoreError);
      expect(errors[0]).toMatchObject({ retryable: true, code: "STORE_BUSY" });
      expect((errors[0] as Error).message).toMatch(
        /while (claiming messages|recording outcomes and claiming)/,
      );
      expect(errors.every((e) => e instanceof StoreError && e.retryable)).toBe(true);
      expect(new Set(delivered).size).toBe(total);
    });

    it(`${kind}: a claim cancelled by statement_timeout is a retryable StoreError; the loop goes on, nothing lost`, async () => {
      const settings = { statement_timeout: "300" };
      const { errors, delivered, total } = await relayUnder(kind, settings, async (admin, name, seen) => {
        await waitForBlockedRelay(admin, name);
        await waitFor(() => seen.length >= 2, 10_000);
      });
      expect(errors[0]).toBeInstanceOf(StoreError);
      expect(errors[0]).toMatchObject({ retryable: true, code: "STORE_BUSY" });
      expect((errors[0] as Error).message).toMatch(/\(57014\).*statement timeout/);
      expect(new Set(delivered).size).toBe(total);
      expect(delivered).toHaveLength(total);
    });
  }
});
