/**
 * A database moved between D1Store and LibsqlStore keeps working: Miniflare keeps its D1
 * database in a SQLite file (`d1Persist`), which `@libsql/client` opens as it is. Messages
 * written through one store are claimed through the other with the same ids, and row ids
 * delivered on one side are never handed out again on the other.
 */
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createClient } from "@libsql/client";
import { Miniflare } from "miniflare";
import { afterAll, describe, expect, it } from "vitest";
import { type D1Database, D1Store } from "../../adapters/d1.ts";
import { LibsqlStore } from "../../adapters/libsql.ts";
import { type ClaimOptions, prepareMessage } from "../../mod.ts";

const claim: ClaimOptions = { batchSize: 10, leaseDuration: 30_000, ordering: "none" };
const message = (key: string) =>
  prepareMessage({ key, value: new Uint8Array([0, 255, key.length]) }, { maxMessageBytes: 1024 });
const dir = mkdtempSync(join(tmpdir(), "edge-outbox-d1-moved-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Runs `fn` with a D1Store on the persisted database, then shuts Miniflare down (its file stays). */
async function withD1<R>(fn: (store: D1Store, db: D1Database) => Promise<R>): Promise<R> {
  const mf = new Miniflare({
    modules: true,
    script: "export default { fetch() { return new Response(null, { status: 404 }); } };",
    compatibilityDate: "2025-01-01",
    d1Databases: { DB: "moved" },
    d1Persist: dir,
  });
  try {
    const db = (await mf.getD1Database("DB")) as unknown as D1Database;
    return await fn(new D1Store(db), db);
  } finally {
    await mf.dispose();
  }
}

/** The SQLite file Miniflare keeps the D1 database in. */
function databaseFile(): string {
  const objects = join(dir, "miniflare-D1DatabaseObject");
  const file = readdirSync(objects).find((name) => name.endsWith(".sqlite") && name !== "metadata.sqlite");
  if (file === undefined) throw new Error(`no D1 database file in ${objects}`);
  return join(objects, file);
}

describe("a database moved between D1Store and LibsqlStore", { timeout: 60_000 }, () => {
  it("keeps its messages, ids and id sequence both ways", async () => {
    const first = await withD1(async (store, db) => {
      await store.migrate();
      for (const key of ["a", "b", "c"]) await store.addMessage(db, message(key));
      const { token, messages } = await store.fetchAndLock({ ...claim, batchSize: 1 });
      expect(await store.markAsSent(token, [messages[0]!.id])).toBe(1);
      return messages[0]!.id;
    });
    const namespace = first.split("_")[1]!;
    expect(first).toBe(`msg_${namespace}_1`);

    const client = createClient({ url: `file:${databaseFile()}` });
    try {
      const store = new LibsqlStore(client);
      await store.migrate(); // up to date: changes nothing
      const { token, messages } = await store.fetchAndLock(claim);
      expect(messages.map((m) => [m.id, m.key, Array.from(m.value)])).toEqual([
        [`msg_${namespace}_2`, "b", [0, 255, 1]],
        [`msg_${namespace}_3`, "c", [0, 255, 1]],
      ]);
      expect(
        await store.markAsSent(
          token,
          messages.map((m) => m.id),
        ),
      ).toBe(2);
      await store.addMessage(client, message("from libSQL"));
    } finally {
      client.close();
    }

    await withD1(async (store) => {
      const { messages } = await store.fetchAndLock(claim);
      // Row 3, the newest when delivered, stayed as a tombstone: the new row is 4, never 3 again.
      expect(messages.map((m) => [m.id, m.key])).toEqual([[`msg_${namespace}_4`, "from libSQL"]]);
      expect(await store.stats()).toMatchObject({ pending: 0, inFlight: 1, dead: 0 });
    });
  });
});
