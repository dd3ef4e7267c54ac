/**
 * PostgresStore's pass arguments (`adapters/postgres/pass.ts`): the claim options it refuses and
 * what the refusal says, a lease longer than PostgreSQL's interval range, and marks given odd
 * entries; and around the pass: the purge a store's first sent mark runs, and a claim whose ids
 * another store renewed. Written against mutation survivors (TESTING.md). On every driver this run has (PGlite
 * always, the server's when EDGE_OUTBOX_PG_URL is set).
 */
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { PostgresStore } from "../../adapters/postgres.ts";
import { prepareMessage, ValidationError } from "../../mod.ts";
import {
  type DriverName,
  driversToRun,
  freshTable,
  migratedStore,
  openClient,
  run,
  serverDatabase,
} from "./helpers.ts";

vi.setConfig({ testTimeout: 120_000, hookTimeout: 120_000 });

const claim = { batchSize: 10, leaseDuration: 30_000, ordering: "none" } as const;
const url = serverDatabase("strength-pass");

async function add(store: PostgresStore, keys: string[]): Promise<void> {
  await store.withTransaction(async (tx) => {
    for (const key of keys)
      await store.addMessage(tx, prepareMessage({ key, value: key }, { maxMessageBytes: 1024 }));
  });
}

for (const kind of driversToRun()) {
  describe(`PostgresStore pass arguments (${kind})`, () => {
    let client: Awaited<ReturnType<typeof openClient>>;
    beforeAll(async () => {
      client = await openClient(kind as DriverName, kind === "PGlite" ? undefined : url());
    });
    afterAll(async () => {
      await client?.close();
    });

    it("retention keep: a new store's first sent mark purges the rows kept past keepFor", async () => {
      const table = freshTable();
      await new PostgresStore(client.db, { table }).migrate();
      const perRequest = () =>
        new PostgresStore(client.db, { table, retention: { sent: "keep", keepFor: 1_000 } });
      const deliver = async (store: PostgresStore, key: string) => {
        await add(store, [key]);
        const { token, messages } = await store.fetchAndLock(claim);
        expect(await store.markAsSent(token, [messages.find((m) => m.key === key)!.id])).toBe(1);
      };
      await deliver(perRequest(), "a");
      await run(
        client.db,
        `UPDATE public."${table}" SET sent_at = sent_at - interval '1 hour' WHERE status = 1`,
      );
      // A store made per request (a Worker, a cron route) purges on its first sent mark: a is
      // an hour old and goes, b (just sent) stays.
      await deliver(perRequest(), "b");
      const kept = (await run(client.db, `SELECT key FROM public."${table}" WHERE status = 1`)) as
        | { rows: { key: string }[] }
        | { key: string }[];
      expect((Array.isArray(kept) ? kept : kept.rows).map((row) => row.key)).toEqual(["b"]);
    });

    it("a claim after another store renewed the ids (the table's ids started again) gets the ready message at once", async () => {
      const mine = await migratedStore(client.db);
      await add(mine, ["before"]);
      const [before] = (await mine.fetchAndLock(claim)).messages;
      await run(client.db, `TRUNCATE public."${mine.table}" RESTART IDENTITY`);
      // Another process writes first: its statement sees the ids start again and renews them.
      const other = new PostgresStore(client.db, { table: mine.table });
      await add(other, ["after"]);
      const { messages } = await mine.fetchAndLock(claim);
      expect(messages.map((m) => m.key)).toEqual(["after"]);
      expect(messages[0]!.id.split("_")[1]).not.toBe(before!.id.split("_")[1]);
    });

    it("listDead after the ids started again (a restart without a truncate) lists under a renewed namespace", async () => {
      const store = await migratedStore(client.db);
      await add(store, ["gone"]);
      const { token, messages } = await store.fetchAndLock(claim);
      await store.markAsDead(token, [{ id: messages[0]!.id, error: "HTTP 410" }]);
      await run(client.db, `ALTER TABLE public."${store.table}" ALTER COLUMN id RESTART WITH 1`);
      const [dead] = await store.listDead();
      // The same row, under a namespace of its own: an id from before the restart names nothing.
      expect(dead?.key).toBe("gone");
      expect(dead?.id).toMatch(/^msg_[0-9a-z]{16}_1$/);
      expect(dead?.id).not.toBe(messages[0]!.id);
      expect(await store.requeueDead([messages[0]!.id])).toBe(0);
      expect(await store.requeueDead([dead!.id])).toBe(1);
    });

    it("a table replaced by hand after migrate() (dropped, another moved into its place): claims and listDead refuse, saying to run migrate(), which mends it", async () => {
      const replaced = await migratedStore(client.db);
      const other = await migratedStore(client.db);
      await add(other, ["gone"]);
      const { token, messages } = await other.fetchAndLock(claim);
      await other.markAsDead(token, [{ id: messages[0]!.id, error: "HTTP 410" }]);
      await add(other, ["moved"]);
      await run(client.db, `DROP TABLE public."${replaced.table}"`);
      await run(client.db, `ALTER TABLE public."${other.table}" RENAME TO "${replaced.table}"`);
      // The namespace cannot be renewed (the recorded sequence is gone): one attempt, then the
      // refusal, never a loop of renewals.
      const refusal = {
        retryable: false,
        message: expect.stringContaining(
          "is not the one migrate() recorded (dropped and made again by hand?)",
        ),
      };
      await expect(replaced.fetchAndLock(claim)).rejects.toMatchObject(refusal);
      await expect(replaced.listDead()).rejects.toMatchObject(refusal);
      await replaced.migrate();
      expect((await replaced.fetchAndLock(claim)).messages.map((m) => m.key)).toEqual(["moved"]);
      expect((await replaced.listDead()).map((m) => [m.key, m.lastError])).toEqual([["gone", "HTTP 410"]]);
    });

    it("reads each claim option once: a claim run again under renewed ids uses the lease it checked", async () => {
      const store = await migratedStore(client.db);
      await add(store, ["before"]);
      await store.fetchAndLock(claim);
      await run(client.db, `TRUNCATE public."${store.table}" RESTART IDENTITY`);
      await add(store, ["after"]);
      let reads = 0;
      const changing = {
        ...claim,
        get leaseDuration() {
          reads += 1;
          return reads === 1 ? 30_000 : -60_000;
        },
      };
      expect((await store.fetchAndLock(changing)).messages.map((m) => m.key)).toEqual(["after"]);
      expect(reads).toBe(1);
      // Held for the 30 s checked, not taken again at once under a lease already run out.
      expect((await store.fetchAndLock(claim)).messages).toEqual([]);
    });

    it("refuses a batch size that is not a whole number >= 1 and a lease that is not a number >= 0, saying what it got", async () => {
      const store = await migratedStore(client.db);
      await add(store, ["a"]);
      for (const batchSize of [0, -1, 1.5, Number.NaN, "2", undefined]) {
        const call = store.fetchAndLock({ ...claim, batchSize: batchSize as number });
        await expect(call).rejects.toThrow(ValidationError);
        await expect(store.fetchAndLock({ ...claim, batchSize: batchSize as number })).rejects.toThrow(
          `batchSize must be an integer >= 1, got ${String(batchSize)}`,
        );
      }
      for (const leaseDuration of [-1, Number.NaN, Number.POSITIVE_INFINITY, "5", undefined]) {
        await expect(
          store.fetchAndLock({ ...claim, leaseDuration: leaseDuration as number }),
        ).rejects.toThrow(
          `leaseDuration must be a number of milliseconds >= 0, got ${String(leaseDuration)}`,
        );
      }
      await expect(store.fetchAndLock(null as never)).rejects.toThrow(
        "batchSize must be an integer >= 1, got undefined",
      );
      // Nothing was claimed by the refused calls; the smallest valid ones work.
      const one = await store.fetchAndLock({ ...claim, batchSize: 1, leaseDuration: 0 });
      expect(one.messages.map((m) => m.key)).toEqual(["a"]);
    });

    it("claims with a lease beyond PostgreSQL's interval range (held a century), instead of failing the claim", async () => {
      const store = await migratedStore(client.db);
      await add(store, ["a", "b"]);
      const held = await store.fetchAndLock({ ...claim, batchSize: 1, leaseDuration: 1e300 });
      expect(held.messages.map((m) => m.key)).toEqual(["a"]);
      const next = await store.fetchAndLock(claim);
      expect(next.messages.map((m) => m.key)).toEqual(["b"]);
      expect(await store.stats()).toMatchObject({ pending: 0, inFlight: 2 });
    });

    it("with ordering key, claims no message while an older one of its key is pending; with none, it does", async () => {
      const store = await migratedStore(client.db);
      await store.withTransaction(async (tx) => {
        for (const [key, value] of [
          ["k", "1"],
          ["k", "2"],
          ["j", "3"],
        ])
          await store.addMessage(tx, prepareMessage({ key: key!, value: value! }, { maxMessageBytes: 1024 }));
      });
      const keyed = await store.fetchAndLock({ ...claim, ordering: "key" });
      expect(keyed.messages.map((m) => new TextDecoder().decode(m.value))).toEqual(["1", "3"]);
      expect((await store.fetchAndLock({ ...claim, ordering: "key" })).messages).toEqual([]);
      const unkeyed = await store.fetchAndLock(claim);
      expect(unkeyed.messages.map((m) => new TextDecoder().decode(m.value))).toEqual(["2"]);
    });

    it("with retention keep, a sent message stays as sent until purgeSent removes it", async () => {
      const store = await migratedStore(client.db, { retention: { sent: "keep", keepFor: 3_600_000 } });
      await add(store, ["a", "b"]);
      const { token, messages } = await store.fetchAndLock(claim);
      expect(
        await store.markAsSent(
          token,
          messages.map((m) => m.id),
        ),
      ).toBe(2);
      expect(await store.stats()).toMatchObject({ pending: 0, inFlight: 0, dead: 0 });
      expect((await store.fetchAndLock(claim)).messages).toEqual([]);
      expect(await store.purgeSent(new Date(Date.now() + 60_000))).toBe(2);
    });

    it("skips malformed entries of a mark and records the rest", async () => {
      const store = await migratedStore(client.db);
      await add(store, ["s", "r", "d"]);
      const { token, messages } = await store.fetchAndLock(claim);
      const [s, r, d] = messages.map((m) => m.id);
      expect(await store.markAsSent(token, [null as never, 7 as never, s!])).toBe(1);
      expect(
        await store.updateRetryCount(token, [
          null as never,
          { id: 7 } as never,
          { id: r!, delay: 60_000, availableAt: new Date(), error: "busy" },
        ]),
      ).toBe(1);
      expect(await store.markAsDead(token, [undefined as never, { id: d!, error: "bad" }])).toBe(1);
      expect(await store.stats()).toMatchObject({ pending: 1, inFlight: 0, dead: 1 });
      const dead = await store.listDead();
      expect(dead.map((m) => [m.key, m.lastError])).toEqual([["d", "bad"]]);
      // No options from a JavaScript caller (null): the default limit, not a TypeError.
      expect((await store.listDead(null as never)).map((m) => m.key)).toEqual(["d"]);
    });
  });
}
