/**
 * One clock per database: leases and readiness follow the database's clock, not a relay's
 * Date.now(), and a lease runs from when the claim took effect.
 */
import { createClient } from "@libsql/client";
import { afterAll, describe, expect, it } from "vitest";
import { commitMessages } from "../conformance/store-conformance.ts";
import { dbPath, openStore, rowId, runFixture, tempDir } from "./helpers.ts";

const tmp = tempDir();
afterAll(() => tmp.cleanup());

const claim = { batchSize: 10, leaseDuration: 30_000, ordering: "none" } as const;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function skewedClaim(path: string, skew: number): Promise<string[]> {
  const run = await runFixture("skewed-claim.ts", [path, String(skew)]);
  expect({ code: run.code, stderr: run.stderr }).toEqual({ code: 0, stderr: "" });
  return (JSON.parse(run.stdout) as { claimed: string[] }).claimed;
}

describe("LibsqlStore clock", () => {
  it("a relay whose clock runs 31 s ahead takes over no live lease; one 31 s behind waits for no retry", {
    timeout: 60_000,
  }, async () => {
    const path = dbPath(tmp.dir);
    const { client, store, close } = await openStore(`file:${path}`);
    try {
      await commitMessages(
        store,
        ["held-1", "held-2", "retry"].map((key) => ({ key, value: key })),
      );
      const held = await store.fetchAndLock({ ...claim, batchSize: 3 });
      const retry = held.messages[2]!;
      // Ready at once by the database's clock (delay 0), though `availableAt` on this
      // machine's clock says an hour from now: the store follows the delay.
      expect(
        await store.updateRetryCount(held.token, [
          { id: retry.id, availableAt: new Date(Date.now() + 3_600_000), delay: 0 },
        ]),
      ).toBe(1);
      // 31 s ahead: past the 30 s leases on its own clock, yet it gets only the retried message.
      expect(await skewedClaim(path, 31_000)).toEqual([retry.id]);
      // The lease it took runs 30 s on the database's clock, not 61 s.
      const lease = await client.execute({
        sql: "SELECT lease_until - CAST(unixepoch('subsec') * 1000 AS INTEGER) AS left FROM outbox_messages WHERE id = ?1",
        args: [rowId(retry.id)],
      });
      const left = Number(lease.rows[0]?.left);
      expect(left).toBeGreaterThan(20_000);
      expect(left).toBeLessThanOrEqual(30_000);
      // The holder still records its outcome: its lease was never taken over.
      expect(await store.markAsSent(held.token, [held.messages[0]!.id, held.messages[1]!.id])).toBe(2);
      // 31 s behind: a retry with a delay of 0 is ready for it too.
      await commitMessages(store, [{ key: "late", value: "x" }]);
      const late = await store.fetchAndLock(claim);
      await store.updateRetryCount(late.token, [
        { id: late.messages[0]!.id, availableAt: new Date(), delay: 0, error: "x" },
      ]);
      expect(await skewedClaim(path, -31_000)).toEqual([late.messages[0]!.id]);
    } finally {
      await close();
    }
  });

  it("waits out a retry's delay on the database's clock, whatever availableAt says", async () => {
    const { store, close } = await openStore(`file:${dbPath(tmp.dir)}`);
    try {
      await commitMessages(store, [{ key: "a", value: "a" }]);
      const first = await store.fetchAndLock(claim);
      await store.updateRetryCount(first.token, [
        { id: first.messages[0]!.id, availableAt: new Date(0), delay: 1_000 },
      ]);
      // A delay of a second: a loaded machine's next claim still comes well within it.
      expect((await store.fetchAndLock(claim)).messages).toEqual([]);
      await sleep(1_100);
      expect((await store.fetchAndLock(claim)).messages.map((m) => m.key)).toEqual(["a"]);
    } finally {
      await close();
    }
  });

  it("gives a claim that waited for the write lock its full leaseDuration", { timeout: 30_000 }, async () => {
    const path = dbPath(tmp.dir);
    const { client, store, close } = await openStore(`file:${path}`, { busyTimeout: 10_000 });
    const other = createClient({ url: `file:${path}` });
    try {
      await commitMessages(store, [{ key: "a", value: "a" }]);
      const holder = await other.transaction("write");
      await holder.execute("CREATE TABLE IF NOT EXISTS unrelated (x)");
      const claiming = store.fetchAndLock({ ...claim, leaseDuration: 2_000 });
      await sleep(1_500);
      await holder.commit();
      holder.close();
      const claimed = await claiming;
      expect(claimed.messages).toHaveLength(1);
      const lease = await client.execute({
        sql: "SELECT lease_until - CAST(unixepoch('subsec') * 1000 AS INTEGER) AS left FROM outbox_messages WHERE id = ?1",
        args: [rowId(claimed.messages[0]!.id)],
      });
      // Counted from when the claim took effect (after the 1.5 s wait), not from its first try
      // (which would leave 500 ms at most). Read a little after the claim: up to 1 s of that
      // is room for a loaded machine between the claim and this query.
      const left = Number(lease.rows[0]?.left);
      expect(left).toBeGreaterThan(1_000);
      expect(left).toBeLessThanOrEqual(2_000);
    } finally {
      other.close();
      await close();
    }
  });
});
