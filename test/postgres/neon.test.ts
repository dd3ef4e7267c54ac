/**
 * Neon's `@neondatabase/serverless` Pool on the real server: the conformance suite, the
 * transaction idiom and a relay. Neon's Pool speaks WebSockets to a proxy; here a byte relay
 * (`ws-proxy.ts`, what Neon's wsproxy does) forwards them to the local PostgreSQL, configured
 * through neonConfig's documented options. Its HTTP `neon()` function is refused by design.
 */
import { Client, neon, Pool } from "@neondatabase/serverless";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { PostgresStore } from "../../adapters/postgres.ts";
import { Outbox, StoreError, ValidationError } from "../../mod.ts";
import { describeStoreConformance } from "../conformance/store-conformance.ts";
import { recordingSender } from "../support/senders.ts";
import { commitAndRollBack, migratedStore, PG_URL, serverDatabase } from "./helpers.ts";
import { startNeonProxy } from "./ws-proxy.ts";

// Child processes and the proxy need CPU a loaded machine may not have.
vi.setConfig({ testTimeout: 120_000, hookTimeout: 120_000 });

const url = serverDatabase("neon");

it("refuses Neon's HTTP query function (no interactive transactions) with a ValidationError", () => {
  const sql = neon("postgres://nobody@127.0.0.1:1/none");
  expect(() => new PostgresStore(sql as never)).toThrow(ValidationError);
});

describe.runIf(PG_URL !== undefined)("Neon Pool through a WebSocket relay", () => {
  let proxy: Awaited<ReturnType<typeof startNeonProxy>>;
  let pool: Pool;
  beforeAll(async () => {
    proxy = await startNeonProxy();
    pool = new Pool({ connectionString: url(), max: 4 });
    pool.on("error", () => {});
  });
  afterAll(async () => {
    await pool?.end();
    await proxy?.close();
  });

  describeStoreConformance("PostgresStore (Neon Pool)", async () => ({ store: await migratedStore(pool) }));

  it("addMessage in a PoolClient transaction commits or rolls back, and a relay delivers", async () => {
    const store = await migratedStore(pool);
    await commitAndRollBack(pool, store);
    const sender = recordingSender();
    expect(await new Outbox(store, sender).tick()).toMatchObject({ sent: 1 });
    expect(await store.stats()).toMatchObject({ pending: 0, inFlight: 0 });
  });

  it("a Neon Client ended by its owner: a non-retryable StoreError naming the Neon Client", async () => {
    const client = new Client(url());
    client.on("error", () => {});
    await client.connect();
    const store = await migratedStore(client);
    await client.end();
    const error = await store.stats().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StoreError);
    expect(error).toMatchObject({ retryable: false, code: "STORE_ERROR" });
    expect((error as Error).message).toMatch(/^the Neon Client's connection has ended/);
  });
});
