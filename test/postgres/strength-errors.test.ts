/**
 * PostgresStore's errors name what the store was doing when PostgreSQL failed: the line an
 * operator reads in a log ("PostgreSQL failed while recording sent messages (42P01): ...").
 * Written against mutation survivors (TESTING.md): each method's context text. On every driver
 * this run has (PGlite always, the server's when EDGE_OUTBOX_PG_URL is set).
 */
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { PostgresStore } from "../../adapters/postgres.ts";
import { prepareMessage, StoreError } from "../../mod.ts";
import { type DriverName, driversToRun, freshTable, openClient, run, serverDatabase } from "./helpers.ts";

vi.setConfig({ testTimeout: 120_000, hookTimeout: 120_000 });

const claim = { batchSize: 10, leaseDuration: 30_000, ordering: "none" } as const;
const url = serverDatabase("strength-errors");

for (const kind of driversToRun()) {
  describe(`PostgresStore error context (${kind})`, () => {
    let client: Awaited<ReturnType<typeof openClient>>;
    beforeAll(async () => {
      client = await openClient(kind as DriverName, kind === "PGlite" ? undefined : url());
    });
    afterAll(async () => {
      await client?.close();
    });

    it("names the operation that failed, with the migrate() hint, for every claim, mark and retention call", async () => {
      const table = freshTable();
      const store = new PostgresStore(client.db, { table, retention: { sent: "keep", keepFor: 1000 } });
      await store.migrate();
      await store.withTransaction((tx) =>
        store.addMessage(tx, prepareMessage({ key: "a", value: "a" }, { maxMessageBytes: 1024 })),
      );
      const { token, messages } = await store.fetchAndLock(claim);
      const ids = messages.map((m) => m.id);
      expect(ids).toHaveLength(1);
      // The table disappears under a store that already knows its namespace: every statement fails.
      await run(client.db, `ALTER TABLE "${table}" RENAME TO "${table}_gone"`);
      const failures: [string, () => Promise<unknown>][] = [
        ["claiming messages", () => store.fetchAndLock(claim)],
        ["recording sent messages", () => store.markAsSent(token, ids)],
        [
          "recording failed messages",
          () =>
            store.updateRetryCount(token, [{ id: ids[0]!, delay: 0, availableAt: new Date(), error: "x" }]),
        ],
        ["recording dead messages", () => store.markAsDead(token, [{ id: ids[0]!, error: "x" }])],
        ["releasing messages", () => store.release(token, ids)],
        ["reading stats", () => store.stats()],
        ["listing dead messages", () => store.listDead()],
        ["requeueing dead messages", () => store.requeueDead()],
        ["requeueing dead messages", () => store.requeueDead(ids)],
        ["purging sent messages", () => store.purgeSent()],
        ["purging sent messages", () => store.purgeSent(new Date())],
      ];
      for (const [doing, call] of failures) {
        const error = await call().then(
          () => undefined,
          (e: unknown) => e,
        );
        expect(error, doing).toBeInstanceOf(StoreError);
        expect((error as StoreError).message, doing).toContain(`PostgreSQL failed while ${doing} (42P01)`);
        expect((error as StoreError).message, doing).toContain("did you run `await store.migrate()`?");
      }
    });

    it("says what purgeSent wanted and what it got", async () => {
      const store = new PostgresStore(client.db, { table: freshTable() });
      await store.migrate();
      await expect(store.purgeSent(new Date(Number.NaN))).rejects.toThrow(
        "olderThan must be a valid Date, got Invalid Date",
      );
    });
  });
}
