/**
 * Which transactions `PostgresStore.addMessage` takes (`adapters/postgres/driver.ts`, by shape):
 * each driver's own (PGlite's tx, postgres.js's sql and tx, node-postgres's PoolClient and Client),
 * refused with INVALID_MESSAGE and a text that says what to pass otherwise, and a store with
 * `prepare: false` reading its rows unnamed. Written against mutation survivors (TESTING.md).
 */
import { PGlite } from "@electric-sql/pglite";
import pg from "pg";
import postgres from "postgres";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import type { PostgresStore } from "../../adapters/postgres.ts";
import { prepareMessage } from "../../mod.ts";
import { migratedStore, PG_URL, serverDatabase } from "./helpers.ts";

vi.setConfig({ testTimeout: 120_000, hookTimeout: 120_000 });

const url = serverDatabase("strength-driver");
const message = (key: string) => prepareMessage({ key, value: key }, { maxMessageBytes: 1024 });
const claim = { batchSize: 10, leaseDuration: 30_000, ordering: "key" } as const;
const NOT_A_TX =
  "tx must be the driver's transaction or client: a node-postgres PoolClient/Client/Pool, a postgres.js sql or tx, a PGlite instance or tx, or a Neon Pool/Client";

async function refusal(
  store: PostgresStore,
  tx: unknown,
): Promise<{ name: string; code: string; message: string }> {
  return store.addMessage(tx as never, message("x")).then(
    () => ({ name: "none", code: "none", message: "accepted" }),
    (error: { name: string; code: string; message: string }) => ({
      name: error.name,
      code: error.code,
      message: error.message,
    }),
  );
}

describe("addMessage's tx, by shape", () => {
  let lite: PGlite;
  beforeAll(async () => {
    lite = new PGlite();
    await lite.waitReady;
  });
  afterAll(async () => {
    await lite?.close();
  });

  it("refuses what is no driver's transaction, saying what it must be, and writes nothing", async () => {
    const store = await migratedStore(lite);
    const unsafeOnly = Object.assign(() => {}, { unsafe: () => {} });
    for (const tx of [
      null,
      undefined,
      5,
      "BEGIN",
      {},
      { query: 1 },
      () => {},
      { unsafe() {}, transaction() {} },
    ]) {
      expect(await refusal(store, tx)).toEqual({
        name: "ValidationError",
        code: "INVALID_MESSAGE",
        message: NOT_A_TX,
      });
    }
    expect((await refusal(store, unsafeOnly)).message).not.toMatch(/Neon/);
    expect(await store.stats()).toMatchObject({ pending: 0 });
  });

  it("refuses Neon's HTTP query function (a function with unsafe and transaction), saying what to use", async () => {
    const store = await migratedStore(lite);
    const neonHttp = Object.assign(() => {}, { unsafe: () => {}, transaction: () => {} });
    const refused = await refusal(store, neonHttp);
    expect(refused).toMatchObject({ name: "ValidationError", code: "INVALID_MESSAGE" });
    expect(refused.message).toMatch(/^Neon's HTTP query function neon\(\) cannot take part in a transaction/);
    expect(await store.stats()).toMatchObject({ pending: 0 });
  });

  it("takes PGlite's own instance and its transaction", async () => {
    const store = await migratedStore(lite);
    await store.addMessage(lite, message("a"));
    await lite.transaction(async (tx) => {
      await store.addMessage(tx, message("b"));
    });
    expect((await store.fetchAndLock(claim)).messages.map((m) => m.key)).toEqual(["a", "b"]);
  });
});

describe.runIf(PG_URL !== undefined)("addMessage's tx on the server, by driver", () => {
  it("takes postgres.js's sql and its tx on a store over node-postgres, and the reverse", async () => {
    const sql = postgres(url(), { max: 2, onnotice: () => {} });
    const client = new pg.Client({ connectionString: url() });
    client.on("error", () => {});
    await client.connect();
    try {
      const store = await migratedStore(client);
      await store.addMessage(sql, message("a"));
      await sql.begin(async (tx) => {
        await store.addMessage(tx, message("b"));
      });
      await store.addMessage(client, message("c"));
      const other = await migratedStore(sql);
      await client.query("BEGIN");
      await other.addMessage(client, message("d"));
      await client.query("COMMIT");
      expect((await store.fetchAndLock(claim)).messages.map((m) => m.key)).toEqual(["a", "b", "c"]);
      expect((await other.fetchAndLock(claim)).messages.map((m) => m.key)).toEqual(["d"]);
    } finally {
      await client.end();
      await sql.end({ timeout: 5 });
    }
  });

  it("with prepare: false, a node-postgres Client's store claims, counts and marks by unnamed statements", async () => {
    const client = new pg.Client({ connectionString: url() });
    client.on("error", () => {});
    await client.connect();
    try {
      const store = await migratedStore(client, { prepare: false });
      await store.addMessage(client, message("a"));
      await store.addMessage(client, message("b"));
      const { token, messages } = await store.fetchAndLock(claim);
      expect(messages.map((m) => m.key)).toEqual(["a", "b"]);
      expect(await store.markAsSent(token, [messages[0]!.id])).toBe(1);
      expect(await store.stats()).toMatchObject({ pending: 0, inFlight: 1, dead: 0 });
      const { rows } = await client.query("SELECT count(*)::int AS n FROM pg_prepared_statements");
      expect(rows[0].n).toBe(0);
    } finally {
      await client.end();
    }
  });
});
