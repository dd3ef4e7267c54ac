/**
 * node-postgres connections that break under the store, on the server: a transaction whose own
 * connection dies inside it (the caller sees why, not the failed ROLLBACK, and the process
 * lives on; a Pool replaces the connection, a Client is gone for good and says so at once), a Client terminated while it
 * listens, and the listener a Pool of one connection cannot give. Written against the mutation
 * survivors of `adapters/postgres/drivers/pg.ts` (TESTING.md).
 */
import pg from "pg";
import { describe, expect, it, vi } from "vitest";
import { prepareMessage, StoreError, ValidationError } from "../../mod.ts";
import { migratedStore, PG_URL, serverDatabase } from "./helpers.ts";

vi.setConfig({ testTimeout: 60_000, hookTimeout: 60_000 });

const url = serverDatabase("strength_pg");

/** Ends this session's own connection from inside it, as an administrator's kill would. */
const killOwnConnection = "SELECT pg_terminate_backend(pg_backend_pid())";

/** Waits (bounded) until `done()` holds. */
async function until(done: () => boolean, ms = 5_000): Promise<void> {
  for (let waited = 0; waited < ms && !done(); waited += 20) await new Promise((r) => setTimeout(r, 20));
}

/** How many listeners a Client has for the events a listening store uses. */
const listeners = (client: pg.Client) =>
  (["notification", "error", "end"] as const).map((event) => client.listenerCount(event));

/** A Client that has ended says what to do about it and is not worth a retry. */
const gone = {
  message: expect.stringMatching(/connection has ended .* a Client never reconnects: create a new Client/),
  retryable: false,
};

describe.runIf(PG_URL !== undefined)("node-postgres: a connection that breaks", () => {
  it("Pool: a transaction whose connection dies inside it rejects with why, and the next one runs on a new connection", async () => {
    const pool = new pg.Pool({ connectionString: url(), max: 1 });
    pool.on("error", () => {});
    try {
      const store = await migratedStore(pool);
      const failed = await store
        .withTransaction((tx) => (tx as pg.PoolClient).query(killOwnConnection))
        .catch((error: unknown) => error);
      // The statement's own error, not the ROLLBACK's that came after it on a dead socket; and
      // the client's 'error' event was heard (unheard, it is an uncaught exception, which ends
      // a process and fails this run).
      expect(failed).toMatchObject({
        code: "57P01",
        message: expect.stringContaining("terminating connection"),
      });
      expect(
        await store.withTransaction(
          async (tx) => (await (tx as pg.PoolClient).query("SELECT 1 AS one")).rows,
        ),
      ).toEqual([{ one: 1 }]);
      expect(await store.stats()).toMatchObject({ pending: 0 });
    } finally {
      await pool.end();
    }
  });

  it("Client: a transaction whose connection dies inside it is gone for good, and every later call says so at once", async () => {
    const client = new pg.Client({ connectionString: url() });
    client.on("error", () => {});
    await client.connect();
    try {
      const store = await migratedStore(client);
      const failed = await store
        .withTransaction((tx) => (tx as pg.Client).query(killOwnConnection))
        .catch((error: unknown) => error);
      expect(failed).toBeInstanceOf(StoreError);
      expect(failed).toMatchObject({ ...gone, cause: expect.objectContaining({ code: "57P01" }) });
      await expect(store.stats()).rejects.toMatchObject(gone);
      await expect(store.withTransaction(async () => 1)).rejects.toMatchObject(gone);
    } finally {
      await client.end().catch(() => {});
    }
  });

  it("Client: an error the server raises, whatever its text says, leaves the connection in use", async () => {
    const client = new pg.Client({ connectionString: url() });
    client.on("error", () => {});
    await client.connect();
    try {
      const store = await migratedStore(client);
      // A trigger or function of the user's may word its own error like a dropped connection.
      const raised = await store
        .withTransaction((tx) =>
          (tx as pg.Client).query(
            "DO $$ BEGIN RAISE EXCEPTION 'connection closed by the audit trigger'; END $$",
          ),
        )
        .catch((error: unknown) => error);
      expect(raised).toMatchObject({ code: "P0001", message: "connection closed by the audit trigger" });
      // A statement given too many values: the server answers 08P01 (a connection exception) and
      // the session goes on.
      const miscounted = await store
        .withTransaction((tx) => (tx as pg.Client).query("SELECT $1::int AS n", [1, 2]))
        .catch((error: unknown) => error);
      expect(miscounted).toMatchObject({ code: "08P01" });
      expect(
        await store.withTransaction(async (tx) => (await (tx as pg.Client).query("SELECT 1 AS one")).rows),
      ).toEqual([{ one: 1 }]);
      expect(await store.stats()).toMatchObject({ pending: 0, inFlight: 0 });
    } finally {
      await client.end().catch(() => {});
    }
  });

  it("Client terminated while it listens: onError hears once that it has ended, and the store's calls fail at once", async () => {
    const client = new pg.Client({ connectionString: url() });
    await client.connect();
    const admin = new pg.Client({ connectionString: url() });
    await admin.connect();
    try {
      const store = await migratedStore(client, { notify: true });
      const errors: unknown[] = [];
      const unlisten = await store.listen(() => {}, { onError: (error) => errors.push(error) });
      const { rows } = await client.query("SELECT pg_backend_pid() AS pid");
      await admin.query("SELECT pg_terminate_backend($1)", [rows[0].pid]);
      for (let i = 0; i < 100 && errors.length === 0; i++) await new Promise((r) => setTimeout(r, 50));
      // Both 'error' and 'end' come; one report.
      await new Promise((r) => setTimeout(r, 200));
      expect(errors).toHaveLength(1);
      expect(errors[0]).toBeInstanceOf(StoreError);
      expect(errors[0]).toMatchObject(gone);
      await expect(store.stats()).rejects.toMatchObject(gone);
      // Unlistening a dead connection is quiet: nothing left to undo.
      await unlisten();
    } finally {
      client.on("error", () => {});
      await client.end().catch(() => {});
      await admin.end();
    }
  });

  it("Client: a connection the server ended while fn ran (its end heard before COMMIT) rejects as gone, not as a COMMIT of unknown outcome", async () => {
    const client = new pg.Client({ connectionString: url() });
    client.on("error", () => {});
    await client.connect();
    const admin = new pg.Client({ connectionString: url() });
    await admin.connect();
    try {
      const store = await migratedStore(client);
      let ended = false;
      client.once("end", () => {
        ended = true;
      });
      const failed = await store
        .withTransaction(async (tx) => {
          await store.addMessage(tx, prepareMessage({ key: "k", value: "v" }, { maxMessageBytes: 1024 }));
          const { rows } = await (tx as pg.Client).query("SELECT pg_backend_pid() AS pid");
          await admin.query("SELECT pg_terminate_backend($1)", [rows[0].pid]);
          await until(() => ended);
        })
        .catch((error: unknown) => error);
      expect(ended).toBe(true);
      // COMMIT never reached the server: nothing was committed, and the error says the Client
      // is gone rather than that the transaction may have committed.
      expect(failed).toMatchObject(gone);
      expect((failed as Error).message).not.toContain("may or may not have committed");
      const { rows } = await admin.query(`SELECT count(*)::int AS n FROM public."${store.table}"`);
      expect(rows).toEqual([{ n: 0 }]);
    } finally {
      await client.end().catch(() => {});
      await admin.end();
    }
  });

  it("Client: unlisten takes back its listeners and UNLISTENs on the server; a later commit wakes nothing", async () => {
    const client = new pg.Client({ connectionString: url() });
    await client.connect();
    try {
      const store = await migratedStore(client, { notify: true });
      const before = listeners(client);
      let wakes = 0;
      const unlisten = await store.listen(() => {
        wakes += 1;
      });
      expect(listeners(client)).toEqual(before.map((count) => count + 1));
      await store.addMessage(client, prepareMessage({ key: "a", value: "a" }, { maxMessageBytes: 1024 }));
      await until(() => wakes === 1);
      expect(wakes).toBe(1);
      await unlisten();
      expect(listeners(client)).toEqual(before);
      expect((await client.query("SELECT pg_listening_channels() AS channel")).rows).toEqual([]);
      await store.addMessage(client, prepareMessage({ key: "b", value: "b" }, { maxMessageBytes: 1024 }));
      await new Promise((r) => setTimeout(r, 200));
      expect(wakes).toBe(1);
    } finally {
      await client.end();
    }
  });

  it("Client closed by its owner while it listens: onError hears it once; listen() on it then refuses and leaves no listener", async () => {
    const client = new pg.Client({ connectionString: url() });
    await client.connect();
    const store = await migratedStore(client, { notify: true });
    const errors: unknown[] = [];
    await store.listen(() => {}, { onError: (error) => errors.push(error) });
    await client.end();
    await until(() => errors.length > 0);
    await new Promise((r) => setTimeout(r, 100));
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatchObject(gone);
    const before = listeners(client);
    await expect(store.listen(() => {})).rejects.toMatchObject(gone);
    expect(listeners(client)).toEqual(before);
  });

  it("a Pool of one connection cannot give one to a listener: refused, saying why and what to do", async () => {
    const pool = new pg.Pool({ connectionString: url(), max: 1 });
    try {
      const store = await migratedStore(pool, { notify: true });
      const refused = await store.listen(() => {}).catch((error: unknown) => error);
      expect(refused).toBeInstanceOf(ValidationError);
      expect((refused as Error).message).toContain(
        "this pool has max 1: every other statement would wait forever",
      );
      expect((refused as Error).message).toContain("Give the pool max >= 2");
      // Nothing was taken from the pool.
      expect(pool.totalCount - pool.idleCount).toBe(0);
      expect(await store.stats()).toMatchObject({ pending: 0 });
    } finally {
      await pool.end();
    }
  });
});
