/**
 * LibsqlStore's errors name what the store was doing when libSQL failed: the line an operator
 * reads in a log ("libSQL failed while recording sent messages: no such table ..."). Written
 * against mutation survivors (TESTING.md): each method's context text.
 */
import { afterAll, describe, expect, it } from "vitest";
import { StoreError } from "../../mod.ts";
import { commitMessages } from "../conformance/store-conformance.ts";
import { dbPath, openStore, tempDir } from "./helpers.ts";

const tmp = tempDir();
afterAll(() => tmp.cleanup());

const claim = { batchSize: 10, leaseDuration: 30_000, ordering: "none" } as const;

describe("LibsqlStore error context", () => {
  it("names the operation that failed, with the migrate() hint, for every claim, mark and retention call", async () => {
    const { client, store, close } = await openStore(`file:${dbPath(tmp.dir)}`, {
      retention: { sent: "keep", keepFor: 1000 },
    });
    try {
      await commitMessages(store, [{ key: "a", value: "a" }]);
      const { token, messages } = await store.fetchAndLock(claim);
      const ids = messages.map((m) => m.id);
      // The table disappears under a store that already knows its namespace: every statement fails.
      await client.execute("ALTER TABLE outbox_messages RENAME TO outbox_gone");
      const failures: [string, () => Promise<unknown>][] = [
        ["claiming messages", () => store.fetchAndLock(claim)],
        [
          "recording outcomes and claiming",
          () => store.recordAndFetch({ token, sent: ids, retry: [], dead: [] }, claim),
        ],
        ["recording sent messages", () => store.markAsSent(token, ids)],
        [
          "recording failed messages",
          () =>
            store.updateRetryCount(token, [{ id: ids[0]!, delay: 0, availableAt: new Date(), error: "x" }]),
        ],
        ["recording dead messages", () => store.markAsDead(token, [{ id: ids[0]!, error: "x" }])],
        ["releasing claimed messages", () => store.release(token, ids)],
        ["reading stats", () => store.stats()],
        ["listing dead messages", () => store.listDead()],
        ["requeueing dead messages", () => store.requeueDead()],
        ["requeueing dead messages", () => store.requeueDead(ids)],
        ["purging sent messages", () => store.purgeSent()],
      ];
      for (const [doing, call] of failures) {
        const error = await call().then(
          () => undefined,
          (e: unknown) => e,
        );
        expect(error, doing).toBeInstanceOf(StoreError);
        expect((error as StoreError).message, doing).toContain(`libSQL failed while ${doing}`);
        expect((error as StoreError).message, doing).toContain("did you run `await store.migrate()`?");
      }
    } finally {
      await close();
    }
  });
});

describe("LibsqlStore purgeSent's cutoff", () => {
  it("says what it wanted and what it got", async () => {
    const { store, close } = await openStore(":memory:");
    try {
      await expect(store.purgeSent(new Date(Number.NaN))).rejects.toThrow(
        "olderThan must be a valid Date, got Invalid Date",
      );
    } finally {
      await close();
    }
  });
});
