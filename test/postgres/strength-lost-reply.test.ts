/**
 * A COMMIT whose reply is lost with its connection, on every server driver: the transaction
 * committed, and `withTransaction` must not call that a retryable failure (a caller retrying
 * would write the business rows and the message twice, under a new message id receivers cannot
 * deduplicate). A proxy on 127.0.0.1 cuts the connection once COMMIT reached the server.
 */
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { PostgresStore } from "../../adapters/postgres.ts";
import { prepareMessage, StoreError } from "../../mod.ts";
import { type CuttingProxy, startCuttingProxy } from "../support/pg-proxy.ts";
import {
  type DriverName,
  driversToRun,
  freshTable,
  openClient,
  PG_URL,
  run,
  serverDatabase,
} from "./helpers.ts";

vi.setConfig({ testTimeout: 60_000, hookTimeout: 60_000 });

const url = serverDatabase("strength_lost_reply");
const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const message = (key: string) => prepareMessage({ key, value: key }, { maxMessageBytes: 1024 });

describe.runIf(PG_URL !== undefined)("a COMMIT whose reply is lost", () => {
  let proxy: CuttingProxy;
  beforeAll(async () => {
    const { hostname, port } = new URL(url());
    proxy = await startCuttingProxy({ host: hostname, port: Number(port || 5432) });
  });
  afterAll(async () => {
    await proxy?.close();
  });

  /**
   * Runs `body` with a store on a `kind` client (through the proxy when `proxied`) over a fresh
   * migrated table, and a store on a direct connection to check what the server kept.
   */
  async function onFreshTable(
    kind: DriverName,
    proxied: boolean,
    body: (stores: { store: PostgresStore; direct: PostgresStore; admin: unknown }) => Promise<void>,
  ): Promise<void> {
    const direct = await openClient("pg Pool", url());
    const client = await openClient(kind, proxied ? proxy.url(new URL(url()).pathname.slice(1)) : url());
    try {
      const table = freshTable();
      const checked = new PostgresStore(direct.db, { table });
      await checked.migrate();
      await body({ store: new PostgresStore(client.db, { table }), direct: checked, admin: direct.db });
    } finally {
      await client.close().catch(() => {});
      await direct.close();
    }
  }

  /** The store's next transaction commits, and its message is the only one the server kept. */
  async function nextTransactionRuns(store: PostgresStore, direct: PostgresStore): Promise<void> {
    await store.withTransaction((tx) => store.addMessage(tx, message("next")));
    const { messages } = await direct.fetchAndLock({
      batchSize: 10,
      leaseDuration: 30_000,
      ordering: "none",
    });
    expect(messages.map((m) => m.key)).toEqual(["next"]);
  }

  for (const kind of driversToRun().filter((name) => name !== "PGlite")) {
    it(`${kind}: is not retryable, says the outcome is unknown, and the message is there`, async () => {
      await onFreshTable(kind, true, async ({ store, direct }) => {
        // Armed before the store's first transaction: postgres.js prepares `commit` once per
        // connection, and later sends only the prepared statement's name. (Nothing else sent
        // may contain the word: the database's name, the message's key.)
        proxy.cutAfter("COMMIT");
        const failed = await store
          .withTransaction((tx) => store.addMessage(tx, message("landed")))
          .catch((error: unknown) => error);
        expect(failed).toBeInstanceOf(StoreError);
        expect(failed).toMatchObject({ retryable: false, code: "STORE_ERROR" });
        expect((failed as Error).message).toMatch(
          /^the transaction's COMMIT got no answer \(.+\): PostgreSQL may or may not have committed it; check whether its writes are there before running it again$/,
        );
        // It did commit: a retry would have added the message a second time.
        const { messages } = await direct.fetchAndLock({
          batchSize: 10,
          leaseDuration: 30_000,
          ordering: "none",
        });
        expect(messages.map((m) => m.key)).toEqual(["landed"]);
      });
    });
  }

  // postgres.js: in a process of its own (below), which postgres.js 3.4.9 may end.
  for (const kind of ["pg Pool"] as const) {
    it(`${kind}: a connection killed while fn runs (COMMIT never sent) is no unknown outcome: nothing committed, retryable`, async () => {
      await onFreshTable(kind, false, async ({ store, direct, admin }) => {
        const failed = await store
          .withTransaction(async (tx) => {
            await store.addMessage(tx, message("never"));
            const answer = (await run(tx, "SELECT pg_backend_pid() AS pid")) as { pid: number }[] & {
              rows?: { pid: number }[];
            };
            await run(admin, `SELECT pg_terminate_backend(${(answer.rows ?? answer)[0]!.pid})`);
            // fn goes on as if nothing happened; the connection is gone before COMMIT.
            await new Promise((resolve) => setTimeout(resolve, 200));
          })
          .catch((error: unknown) => error);
        expect(failed).toBeInstanceOf(StoreError);
        expect(failed).toMatchObject({ retryable: true });
        expect((failed as Error).message).not.toContain("may or may not");
        expect(await direct.stats()).toMatchObject({ pending: 0 });
      });
    });
  }

  it("postgres.js: a connection killed while fn runs (COMMIT never sent) is no unknown outcome: nothing committed, retryable", async () => {
    const table = freshTable();
    const child = spawnSync(
      process.execPath,
      ["--import", "tsx", join(ROOT, "test/postgres/fixtures/killed-in-fn.ts"), url(), table],
      { cwd: ROOT, encoding: "utf8", timeout: 30_000 },
    );
    // The fixture prints its one line before postgres.js 3.4.9 may end the process (README).
    const line = child.stdout.split("\n").find((text) => text.startsWith("{"));
    expect(line, child.stderr).toBeDefined();
    const seen = JSON.parse(line!) as Record<string, unknown>;
    expect(seen).toMatchObject({ settled: "rejected", retryable: true, code: "STORE_BUSY" });
    expect(seen.message).not.toContain("may or may not");
    const direct = await openClient("pg Pool", url());
    try {
      expect(await new PostgresStore(direct.db, { table }).stats()).toMatchObject({ pending: 0 });
    } finally {
      await direct.close();
    }
  });

  it("a transaction cut before its COMMIT (BEGIN's connection lost) stays retryable", async () => {
    await onFreshTable("pg Pool", true, async ({ store, direct }) => {
      proxy.cutAfter("INSERT");
      const failed = await store
        .withTransaction((tx) => store.addMessage(tx, message("never")))
        .catch((error: unknown) => error);
      // The INSERT's own error (fn's): nothing was committed, a retry is safe.
      expect(failed).toMatchObject({ retryable: true });
      expect(await direct.stats()).toMatchObject({ pending: 0 });
    });
  });

  for (const kind of ["pg Pool", "postgres.js"] as const) {
    it(`${kind}: a BEGIN whose reply is lost is retryable, says so, and the next transaction runs on a new connection`, async () => {
      await onFreshTable(kind, true, async ({ store, direct }) => {
        proxy.cutAfter("BEGIN");
        const failed = await store
          .withTransaction((tx) => store.addMessage(tx, message("never")))
          .catch((error: unknown) => error);
        expect(proxy.armed()).toBe(false);
        expect(failed).toBeInstanceOf(StoreError);
        // node-postgres names the step; postgres.js runs BEGIN inside sql.begin, one step with fn.
        expect(failed).toMatchObject({
          retryable: true,
          message: expect.stringMatching(
            kind === "pg Pool"
              ? /^PostgreSQL failed while beginning a transaction/
              : /^PostgreSQL failed while running a transaction/,
          ),
        });
        expect((failed as Error).message).not.toContain("may or may not");
        await nextTransactionRuns(store, direct);
      });
    });
  }

  it("pg Pool: a ROLLBACK whose reply is lost leaves fn's own error, and the next transaction runs on a new connection", async () => {
    await onFreshTable("pg Pool", true, async ({ store, direct }) => {
      proxy.cutAfter("ROLLBACK");
      const mine = new Error("the order was refused");
      const failed = await store
        .withTransaction(async (tx) => {
          await store.addMessage(tx, message("never"));
          throw mine;
        })
        .catch((error: unknown) => error);
      expect(proxy.armed()).toBe(false);
      expect(failed).toBe(mine);
      await nextTransactionRuns(store, direct);
    });
  });
});
