/**
 * What PostgresStore says about a table that is not (or no longer) migrated, on every driver
 * this run has: a schema never migrated, a version row older or newer than this code, a version
 * row gone while its table stayed, and a migration that fails. Each answer names the problem and
 * what to do, is not worth a retry, and is not remembered once `migrate()` has run. Written
 * against the mutation survivors of `adapters/postgres.ts` (TESTING.md).
 */
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { PostgresStore, SCHEMA_VERSION } from "../../adapters/postgres.ts";
import { type ClaimOptions, prepareMessage, StoreError } from "../../mod.ts";
import {
  driversToRun,
  freshTable,
  migratedStore,
  openClient,
  PG_URL,
  run,
  serverDatabase,
} from "./helpers.ts";

vi.setConfig({ testTimeout: 60_000, hookTimeout: 60_000 });

const url = serverDatabase("strength_migrate");
const claim: ClaimOptions = { batchSize: 10, leaseDuration: 30_000, ordering: "none" };
const message = (key: string) => prepareMessage({ key, value: key }, { maxMessageBytes: 1024 });
const namespaceOf = (id: string | undefined) => id?.split("_")[1];
let schemas = 0;
/** A schema name no other test of this process uses (the drivers share one database). */
const freshSchema = () => `migrate_${process.pid}_${++schemas}`;

for (const kind of driversToRun()) {
  describe(`${kind}: a table that is not migrated`, () => {
    let client: Awaited<ReturnType<typeof openClient>>;
    beforeAll(async () => {
      client = await openClient(kind, PG_URL === undefined ? undefined : url());
    });
    afterAll(async () => {
      await client?.close();
    });

    it("a schema never migrated: its version table does not exist, say so; once migrated, the same store works", async () => {
      const schema = freshSchema();
      const table = freshTable();
      const early = new PostgresStore(client.db, { table, schema });
      const refused = await early.fetchAndLock(claim).catch((error: unknown) => error);
      expect(refused).toBeInstanceOf(StoreError);
      expect(refused).toMatchObject({
        message: `${schema}.edge_outbox_schema does not exist (did you run \`await store.migrate()\`?)`,
        retryable: false,
      });
      // The failed read is not kept: after another process migrates, this store needs no restart.
      await new PostgresStore(client.db, { table, schema }).migrate();
      await early.addMessage(client.db as never, message("a"));
      expect((await early.fetchAndLock(claim)).messages.map((m) => m.key)).toEqual(["a"]);
    });

    it("a version table that cannot be read for another reason: that reason, not a missing table", async () => {
      const schema = freshSchema();
      const table = freshTable();
      await new PostgresStore(client.db, { table, schema }).migrate();
      await run(
        client.db,
        `ALTER TABLE "${schema}".edge_outbox_schema RENAME COLUMN id_namespace TO renamed`,
      );
      const refused = await new PostgresStore(client.db, { table, schema })
        .fetchAndLock(claim)
        .catch((e: unknown) => e);
      expect(refused).toBeInstanceOf(StoreError);
      expect((refused as Error).message).toMatch(
        /^PostgreSQL failed while reading the id namespace \(42703\): column "id_namespace" does not exist/,
      );
    });

    it("a version row older than this code: not migrated until migrate(), which keeps the ids", async () => {
      const store = await migratedStore(client.db);
      await store.addMessage(client.db as never, message("before"));
      const [before] = (await store.fetchAndLock(claim)).messages;
      await run(
        client.db,
        `UPDATE public.edge_outbox_schema SET version = ${SCHEMA_VERSION - 1} WHERE table_name = '${store.table}'`,
      );
      const other = new PostgresStore(client.db, { table: store.table });
      await expect(other.stats()).resolves.toBeDefined();
      const refused = await other.fetchAndLock(claim).catch((error: unknown) => error);
      expect(refused).toMatchObject({
        message: `table "public"."${store.table}" is not migrated (did you run \`await store.migrate()\`?)`,
        retryable: false,
      });
      await other.migrate();
      await other.addMessage(client.db as never, message("after"));
      const [after] = (await other.fetchAndLock(claim)).messages;
      // The same table, the same ids going on: the namespace stays.
      expect(namespaceOf(after?.id)).toBe(namespaceOf(before?.id));
    });

    it("a version row newer than this code: migrate() and the store refuse it for good, saying to upgrade", async () => {
      const store = await migratedStore(client.db);
      await run(
        client.db,
        `UPDATE public.edge_outbox_schema SET version = 99 WHERE table_name = '${store.table}'`,
      );
      const newer = {
        message: `table "public"."${store.table}" has schema version 99, newer than this edge-outbox supports (${SCHEMA_VERSION}); upgrade edge-outbox`,
        retryable: false,
        code: "STORE_ERROR",
      };
      await expect(new PostgresStore(client.db, { table: store.table }).migrate()).rejects.toMatchObject(
        newer,
      );
      await expect(
        new PostgresStore(client.db, { table: store.table }).fetchAndLock(claim),
      ).rejects.toMatchObject(newer);
    });

    it("a version row deleted while its table stayed: migrate() keeps the rows, under a new namespace", async () => {
      const store = await migratedStore(client.db);
      await store.addMessage(client.db as never, message("kept"));
      const [first] = (await store.fetchAndLock({ ...claim, leaseDuration: 1 })).messages;
      await run(client.db, `DELETE FROM public.edge_outbox_schema WHERE table_name = '${store.table}'`);
      const again = new PostgresStore(client.db, { table: store.table });
      await again.migrate();
      await new Promise((resolve) => setTimeout(resolve, 20));
      // The row is still there (a new namespace: nothing says its ids went on unbroken).
      const [kept] = (await again.fetchAndLock(claim)).messages;
      expect(kept?.key).toBe("kept");
      expect(namespaceOf(kept?.id)).not.toBe(namespaceOf(first?.id));
      expect(await again.stats()).toMatchObject({ inFlight: 1 });
    });

    it("a migration that fails says it was migrating the schema, and nothing is half made", async () => {
      const table = freshTable();
      // Something else already holds the table's name.
      await run(client.db, `CREATE VIEW public."${table}" AS SELECT 1 AS one`);
      const failed = await new PostgresStore(client.db, { table }).migrate().catch((error: unknown) => error);
      expect(failed).toBeInstanceOf(StoreError);
      expect((failed as Error).message).toMatch(
        /^PostgreSQL failed while migrating the schema \(42703\): column "status" does not exist/,
      );
      expect(failed).toMatchObject({ retryable: false });
      await run(client.db, `DROP VIEW public."${table}"`);
      const store = new PostgresStore(client.db, { table });
      // The failed transaction left no version row behind.
      await expect(store.fetchAndLock(claim)).rejects.toThrow(/is not migrated|does not exist/);
      await store.migrate();
      expect(await store.stats()).toMatchObject({ pending: 0 });
    });
  });
}
