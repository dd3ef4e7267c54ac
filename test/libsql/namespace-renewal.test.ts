/**
 * A table dropped and made again by another process's `migrate()` starts its row ids at 1 under
 * a new id namespace. A store that read the old namespace before (a long-running relay) must
 * never hand out, list or act on ids in the old one: receivers deduplicate on ids, so an old
 * message's id on a new message would make them drop it.
 */
import { afterAll, describe, expect, it } from "vitest";
import { commitMessages } from "../conformance/store-conformance.ts";
import { dbPath, openStore, tempDir } from "./helpers.ts";

const claim = { batchSize: 10, leaseDuration: 30_000, ordering: "none" } as const;
const temp = tempDir();
afterAll(() => temp.cleanup());

async function recreatedUnder() {
  const url = `file:${dbPath(temp.dir)}`;
  const running = await openStore(url);
  const admin = await openStore(url);
  await commitMessages(running.store, [{ key: "old", value: "delivered before the reset" }]);
  const first = await running.store.fetchAndLock(claim);
  await running.store.markAsDead(first.token, [{ id: first.messages[0]!.id, error: "old" }]);
  const oldId = first.messages[0]!.id;
  // Another process drops the table and makes it again: a new namespace, row ids from 1.
  await admin.client.execute('DROP TABLE "outbox_messages"');
  await admin.store.migrate();
  const fresh = await admin.client.execute("SELECT id_namespace FROM edge_outbox_schema");
  const namespace = String(fresh.rows[0]?.id_namespace);
  await commitMessages(admin.store, [{ key: "new", value: "a different message" }]);
  return { running, admin, oldId, namespace, close: () => Promise.all([running.close(), admin.close()]) };
}

describe("LibsqlStore: a table made again under a running store", () => {
  it("a claim gives the new row an id in the table's new namespace, never the old message's id", async () => {
    const t = await recreatedUnder();
    try {
      const claimed = await t.running.store.fetchAndLock(claim);
      expect(claimed.messages.map((m) => m.key)).toEqual(["new"]);
      expect(claimed.messages[0]!.id).not.toBe(t.oldId);
      expect(claimed.messages[0]!.id).toBe(`msg_${t.namespace}_1`);
      // The marks that follow use the namespace the claim read.
      expect(await t.running.store.markAsSent(claimed.token, [claimed.messages[0]!.id])).toBe(1);
    } finally {
      await t.close();
    }
  });

  it("listDead and requeueDead read the namespace again: the old dead message's id names no new row", async () => {
    const t = await recreatedUnder();
    try {
      const claimed = await t.admin.store.fetchAndLock(claim);
      await t.admin.store.markAsDead(claimed.token, [{ id: claimed.messages[0]!.id, error: "new" }]);
      // The old message's id (row 1 in the old namespace) must not requeue the new row 1.
      expect(await t.running.store.requeueDead([t.oldId])).toBe(0);
      const dead = await t.running.store.listDead();
      expect(dead.map((m) => [m.id, m.key])).toEqual([[`msg_${t.namespace}_1`, "new"]]);
    } finally {
      await t.close();
    }
  });
});
