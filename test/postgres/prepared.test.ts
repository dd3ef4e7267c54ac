/**
 * node-postgres prepared statements (`prepare: true`, the default): every distinct text its own
 * name, a bounded number per connection, and recovery when the server dropped them (`DISCARD
 * ALL`, a pooler's session reset). Its own file: the registry of names is per process.
 */
import pg from "pg";
import { describe, expect, it, vi } from "vitest";
import { MAX_PREPARED_STATEMENTS, preparedName } from "../../adapters/postgres/prepared.ts";
import { PostgresStore } from "../../adapters/postgres.ts";
import { prepareMessage, StoreError } from "../../mod.ts";
import { freshTable, PG_URL, serverDatabase } from "./helpers.ts";

vi.setConfig({ testTimeout: 120_000, hookTimeout: 60_000 });

const url = serverDatabase("prepared");
const message = (key: string) => prepareMessage({ key, value: key }, { maxMessageBytes: 1024 });
const claim = { batchSize: 10, leaseDuration: 30_000, ordering: "key" } as const;

/** A pool of ONE connection, so that every statement runs on the session the test asks about. */
function onePool(): pg.Pool {
  const pool = new pg.Pool({ connectionString: url(), max: 1 });
  pool.on("error", () => {});
  return pool;
}

/** The node-postgres idiom: `key` added on a PoolClient after BEGIN, committed. */
async function order(pool: pg.Pool, store: PostgresStore, key: string): Promise<void> {
  const client = await pool.connect();
  try {
    await client.query("BEGIN");
    await store.addMessage(client, message(key));
    await client.query("COMMIT");
  } catch (error) {
    await client.query("ROLLBACK");
    throw error;
  } finally {
    client.release();
  }
}

describe("prepared statement names", () => {
  it("one text has one name, two texts never share one", () => {
    const a = preparedName("SELECT 1 AS edge_outbox_name_test_a");
    const b = preparedName("SELECT 1 AS edge_outbox_name_test_b");
    expect(a).toMatch(/^edge_outbox_\d+$/);
    expect(preparedName("SELECT 1 AS edge_outbox_name_test_a")).toBe(a);
    expect(b).not.toBe(a);
  });
});

describe.runIf(PG_URL !== undefined)("prepared statements (node-postgres)", () => {
  it("two tenants' statements whose texts hashed alike before get names of their own", async () => {
    // tenant_019490 and tenant_036253: the old 32-bit FNV + length names of their listDead
    // statements were equal (found by brute force), so the second failed on the connection.
    // Those texts have changed since; names now come from a registry, one per distinct text
    // (see the test above), so no pair of texts can collide.
    const pool = onePool();
    try {
      const stores = ["tenant_019490", "tenant_036253"].map((schema) => new PostgresStore(pool, { schema }));
      for (const store of stores) await store.migrate();
      for (let i = 0; i < 4; i++) expect(await stores[i % 2]?.listDead()).toEqual([]);
    } finally {
      await pool.query("DROP SCHEMA tenant_019490 CASCADE; DROP SCHEMA tenant_036253 CASCADE");
      await pool.end();
    }
  });

  it("after DISCARD ALL, a transaction fails once with a retryable error and the next one commits", async () => {
    const pool = onePool();
    try {
      const store = new PostgresStore(pool, { table: freshTable() });
      await store.migrate();
      await order(pool, store, "order:1");
      await pool.query("DISCARD ALL");
      // Inside the caller's transaction the failure aborted it: the caller runs it again.
      const failed = await order(pool, store, "order:2").catch((error: unknown) => error);
      expect(failed).toBeInstanceOf(StoreError);
      expect((failed as StoreError).retryable).toBe(true);
      await order(pool, store, "order:2");
      await order(pool, store, "order:3");
      // The store's own statements, outside any transaction, recover by themselves.
      await pool.query("DEALLOCATE ALL");
      expect((await store.stats()).pending).toBe(3);
      await store.addMessage(pool, message("order:4"));
      const { token, messages } = await store.fetchAndLock(claim);
      expect(messages.map((m) => m.key)).toEqual(["order:1", "order:2", "order:3", "order:4"]);
      expect(
        await store.markAsSent(
          token,
          messages.map((m) => m.id),
        ),
      ).toBe(4);
    } finally {
      await pool.end();
    }
  });

  it("after DISCARD ALL, a transaction writing to several outboxes fails once and the next one commits", async () => {
    const pool = onePool();
    try {
      const [a, b, c] = [0, 1, 2].map(() => new PostgresStore(pool, { table: freshTable() }));
      for (const store of [a!, b!, c!]) await store.migrate();
      const orderAll = async (stores: PostgresStore[], key: string) => {
        const client = await pool.connect();
        try {
          await client.query("BEGIN");
          for (const store of stores) await store.addMessage(client, message(key));
          await client.query("COMMIT");
        } catch (error) {
          await client.query("ROLLBACK");
          throw error;
        } finally {
          client.release();
        }
      };
      await orderAll([a!, b!], "order:1");
      await pool.query("DISCARD ALL");
      // c's statement is prepared anew (the server keeps it, the transaction aborts on a's).
      const failed = await orderAll([c!, a!, b!], "order:2").catch((error: unknown) => error);
      expect(failed).toBeInstanceOf(StoreError);
      expect(failed).toMatchObject({ retryable: true, code: "STORE_BUSY" });
      expect((failed as StoreError).message).toMatch(
        /^the server no longer has the store's prepared statement edge_outbox_\d+ \(DISCARD ALL or DEALLOCATE ran on this connection.*set the store's prepare: false$/,
      );
      // The run again commits: b's statement, which the server forgot too, does not fail it.
      await orderAll([c!, a!, b!], "order:2");
      expect(await Promise.all([a!, b!, c!].map(async (s) => (await s.stats()).pending))).toEqual([2, 2, 1]);
    } finally {
      await pool.end();
    }
  });

  it("an error that is no forgotten statement, in the caller's transaction, is the server's own (not retryable)", async () => {
    const pool = onePool();
    try {
      const store = new PostgresStore(pool, { table: freshTable() });
      await store.migrate();
      await order(pool, store, "order:1");
      await pool.query(`DROP TABLE "${store.table}"`);
      const failed = await order(pool, store, "order:2").catch((error: unknown) => error);
      expect(failed).toBeInstanceOf(StoreError);
      expect(failed).toMatchObject({ retryable: false });
      expect((failed as StoreError).message).toMatch(/\(42P01\)/);
    } finally {
      await pool.end();
    }
  });

  it("a single pg.Client recovers after DISCARD ALL outside a transaction", async () => {
    const client = new pg.Client({ connectionString: url() });
    client.on("error", () => {});
    await client.connect();
    try {
      const store = new PostgresStore(client, { table: freshTable() });
      await store.migrate();
      await store.addMessage(client, message("a"));
      expect((await store.stats()).pending).toBe(1);
      await client.query("DISCARD ALL");
      await store.addMessage(client, message("b"));
      expect((await store.stats()).pending).toBe(2);
    } finally {
      await client.end();
    }
  });

  it(`prepares at most ${MAX_PREPARED_STATEMENTS} statements per connection, however many tables`, async () => {
    const pool = onePool();
    try {
      for (let i = 0; i < 12; i++) {
        const store = new PostgresStore(pool, { table: freshTable() });
        await store.migrate();
        await store.addMessage(pool, message("k"));
        const { token, messages } = await store.fetchAndLock(claim);
        await store.markAsDead(token, [{ id: messages[0]?.id as string, error: "x" }]);
        expect(await store.requeueDead()).toBe(1);
        await store.fetchAndLock({ ...claim, ordering: "none" });
        expect((await store.stats()).inFlight).toBe(1);
        await store.listDead();
      }
      const { rows } = await pool.query(
        "SELECT count(*)::int AS n FROM pg_prepared_statements WHERE name LIKE 'edge\\_outbox\\_%'",
      );
      // More texts than the bound ran (12 tables of 7); the rest ran unnamed, and worked.
      expect(rows[0].n).toBeGreaterThan(MAX_PREPARED_STATEMENTS / 2);
      expect(rows[0].n).toBeLessThanOrEqual(MAX_PREPARED_STATEMENTS);
    } finally {
      await pool.end();
    }
  });
});
