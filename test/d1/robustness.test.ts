/**
 * D1Store where a quick reading of it went wrong, each on Miniflare's real D1 (workerd): a table
 * dropped and made again (ids never reused, whichever Worker cached what), large dead messages
 * listed without one huge result, a store per request purging kept rows, two Workers upgrading
 * a version-1 table at once (and the migration file failing whole on one), a version-2 table
 * upgraded by migrate() or by the migration file, version 2's indexes or version row left by a
 * version-2 Worker after the upgrade and repaired by migrate(), bindings that are RPC stubs, and
 * the worst row a mark can leave.
 */
import { Miniflare } from "miniflare";
import { describe, expect, it } from "vitest";
import { READ_GROUP_BYTES, ROW_OVERHEAD } from "../../adapters/d1/limits.ts";
import { type D1Database, D1Store, MAX_ROW_BYTES } from "../../adapters/d1.ts";
import { MAX_ERROR_LENGTH } from "../../adapters/sqlite/rows.ts";
import { type ClaimOptions, type PreparedMessage, prepareMessage } from "../../mod.ts";
import { V2_NAMESPACE, v2Rows, v2Schema } from "../support/sqlite-v2.ts";
import { bundleWorker } from "../support/worker-bundle.ts";
import { applyFile, d1ForFile, freshTable, migratedStore, startD1 } from "./helpers.ts";

const claim: ClaimOptions = { batchSize: 10, leaseDuration: 30_000, ordering: "none" };
const message = (key: string, value: string | Uint8Array = "{}"): PreparedMessage =>
  prepareMessage({ key, value }, { maxMessageBytes: 4 << 20 });

const d1 = d1ForFile();

/** Adds one message, claims it and marks it sent; returns its id. */
async function deliverOne(store: D1Store, key: string): Promise<string> {
  await store.addMessage(d1.db, message(key));
  const { token, messages } = await store.fetchAndLock(claim);
  const mine = messages.find((m) => m.key === key)!;
  expect(await store.markAsSent(token, [mine.id])).toBe(1);
  return mine.id;
}

const namespaceOf = (id: string) => id.split("_")[1];

describe("D1Store: a table dropped and made again never reuses ids", () => {
  it("a store that cached the old namespace gives new rows the new one, in claims and listings", async () => {
    const table = freshTable();
    const cached = new D1Store(d1.db, { table });
    await cached.migrate();
    const delivered = await deliverOne(cached, "before the drop");
    await d1.db.prepare(`DROP TABLE "${table}"`).run();
    const other = new D1Store(d1.db, { table }); // another Worker
    await other.migrate();

    await cached.addMessage(d1.db, message("after the drop"));
    const claimed = await cached.fetchAndLock(claim);
    expect(claimed.messages.map((m) => m.key)).toEqual(["after the drop"]);
    const id = claimed.messages[0]!.id;
    expect(id).not.toBe(delivered);
    expect(namespaceOf(id)).not.toBe(namespaceOf(delivered));
    await cached.markAsDead(claimed.token, [{ id, error: "HTTP 410" }]);
    expect((await other.listDead()).map((m) => m.id)).toEqual([id]);

    // Dropped again: the id of the old table's dead row 1 names nothing in the new table's row 1.
    await d1.db.prepare(`DROP TABLE "${table}"`).run();
    await other.migrate();
    const fresh = new D1Store(d1.db, { table });
    await fresh.addMessage(d1.db, message("third table"));
    const third = await fresh.fetchAndLock(claim);
    await fresh.markAsDead(third.token, [{ id: third.messages[0]!.id, error: "HTTP 410" }]);
    expect(await cached.requeueDead([id])).toBe(0);
    const listed = await cached.listDead();
    expect(listed.map((m) => m.key)).toEqual(["third table"]);
    expect(listed[0]!.id).toBe(third.messages[0]!.id);
    expect(await cached.requeueDead([listed[0]!.id])).toBe(1);
  });

  it("the migration file applied again after a drop renews the namespace; on a table with rows it keeps it", async () => {
    const table = freshTable();
    const text = D1Store.migrationSql(table);
    await applyFile(d1.db, text);
    const store = new D1Store(d1.db, { table });
    const first = await deliverOne(store, "order-A");
    await store.addMessage(d1.db, message("pending across a re-apply"));
    await applyFile(d1.db, text); // rows: the same namespace, pending ids unchanged
    const pending = await new D1Store(d1.db, { table }).fetchAndLock(claim);
    expect(pending.messages.map((m) => m.id)).toEqual([first.replace(/_1$/, "_2")]);

    await d1.db.prepare(`DROP TABLE "${table}"`).run();
    await applyFile(d1.db, text);
    const fresh = new D1Store(d1.db, { table }); // a new isolate, nothing cached
    await fresh.migrate(); // finds the table up to date
    const after = await deliverOne(fresh, "order-B");
    expect(after).toMatch(/_1$/);
    expect(namespaceOf(after)).not.toBe(namespaceOf(first));
  });
});

describe("D1Store: listing large dead messages", () => {
  it("reads them in groups of bounded bytes, never one result of all their values", {
    timeout: 180_000,
  }, async () => {
    const results: number[] = [];
    // Every all() result's bytes of values, as the binding returns them.
    type Statement = ReturnType<D1Database["prepare"]>;
    const originals = new WeakMap<Statement, Statement>();
    const wrap = (s: Statement): Statement => {
      const wrapped: Statement = {
        bind: (...values) => wrap(s.bind(...values)),
        run: () => s.run(),
        all: async <T>() => {
          const result = await s.all<T>();
          let bytes = 0;
          for (const row of result.results as Record<string, unknown>[])
            if (Array.isArray(row.value)) bytes += row.value.length;
          results.push(bytes);
          return result;
        },
      };
      originals.set(wrapped, s);
      return wrapped;
    };
    const watched: D1Database = {
      prepare: (query) => wrap(d1.db.prepare(query)),
      batch: (statements) => d1.db.batch(statements.map((s) => originals.get(s) ?? s)),
    };
    const store = new D1Store(watched, { table: freshTable() });
    await store.migrate();
    const size = 1_900_000; // 6 of them: 11.4 MB, over one group's bytes
    for (let i = 0; i < 6; i++) await store.addMessage(d1.db, message(`k${i}`, new Uint8Array(size).fill(i)));
    await d1.db.prepare(`UPDATE "${store.table}" SET status = 3, last_error = 'HTTP 410'`).run();

    const dead = await store.listDead();
    expect(dead.map((m) => m.key)).toEqual(["k0", "k1", "k2", "k3", "k4", "k5"]);
    for (const [i, m] of dead.entries()) {
      expect(m.value.byteLength).toBe(size);
      expect(m.value.every((b) => b === i)).toBe(true);
      expect(m.lastError).toBe("HTTP 410");
    }
    expect(results.length).toBeGreaterThanOrEqual(2);
    for (const bytes of results) expect(bytes).toBeLessThanOrEqual(READ_GROUP_BYTES);
    expect(await store.listDead({ limit: 1 })).toHaveLength(1);
  });
});

describe("D1Store: retention keep with a store per request", () => {
  it("the first sent mark of a new store purges rows kept longer than keepFor", async () => {
    const table = freshTable();
    await new D1Store(d1.db, { table }).migrate();
    const perRequest = () => new D1Store(d1.db, { table, retention: { sent: "keep", keepFor: 1_000 } });
    await deliverOne(perRequest(), "a");
    await deliverOne(perRequest(), "b");
    await d1.db.prepare(`UPDATE "${table}" SET sent_at = sent_at - 3600000 WHERE status = 1`).run();
    // A new store's first mark purges a and b (sent an hour ago); c is the newest row: kept.
    await deliverOne(perRequest(), "c");
    const { results } = await d1.db.prepare(`SELECT key FROM "${table}" WHERE status = 1 ORDER BY id`).all();
    expect(results.map((row) => row.key)).toEqual(["c"]);
  });

  it("a relay's combined write (recordAndFetch) that records a sent message purges as a mark does", async () => {
    const table = freshTable();
    await new D1Store(d1.db, { table }).migrate();
    const perRequest = () => new D1Store(d1.db, { table, retention: { sent: "keep", keepFor: 1_000 } });
    await deliverOne(perRequest(), "a");
    await d1.db.prepare(`UPDATE "${table}" SET sent_at = sent_at - 3600000 WHERE status = 1`).run();
    // A Worker's cron relay records its pass and claims the next in one write: that write is
    // the new store's first sent mark, and purges a (sent an hour ago); b is kept.
    const store = perRequest();
    await store.addMessage(d1.db, message("b"));
    const { token, messages } = await store.fetchAndLock(claim);
    const result = await store.recordAndFetch({ token, sent: [messages[0]!.id], retry: [], dead: [] }, claim);
    expect(result.recorded).toEqual({ sent: 1, failed: 0, dead: 0 });
    const { results } = await d1.db.prepare(`SELECT key FROM "${table}" WHERE status = 1 ORDER BY id`).all();
    expect(results.map((row) => row.key)).toEqual(["b"]);
  });
});

describe("D1Store: migrate() from two Workers at once on a version-1 table", () => {
  const t = "outbox_messages";
  const v1 = `CREATE TABLE edge_outbox_schema (table_name TEXT PRIMARY KEY, version INTEGER NOT NULL, migrated_at INTEGER NOT NULL);
CREATE TABLE "${t}" (id INTEGER PRIMARY KEY AUTOINCREMENT, key TEXT NOT NULL, value BLOB NOT NULL, headers TEXT NOT NULL DEFAULT '{}', created_at INTEGER NOT NULL, available_at INTEGER NOT NULL, lease_until INTEGER, claim_token TEXT, retries INTEGER NOT NULL DEFAULT 0, status INTEGER NOT NULL DEFAULT 0, last_error TEXT, sent_at INTEGER);
CREATE INDEX "${t}_ready" ON "${t}" (created_at, id) WHERE status = 0;
INSERT INTO edge_outbox_schema (table_name, version, migrated_at) VALUES ('${t}', 1, 0);
INSERT INTO "${t}" (key, value, created_at, available_at) VALUES ('old', x'00', 1, 1);`;

  it("both succeed, agree on the namespace, and the old row keeps its bare id", {
    timeout: 120_000,
  }, async () => {
    for (let round = 0; round < 4; round++) {
      const fixture = await startD1();
      try {
        await applyFile(fixture.db, v1);
        const [a, b] = [new D1Store(fixture.db), new D1Store(fixture.db)];
        await Promise.all([a.migrate(), b.migrate()]);
        const { messages } = await a.fetchAndLock(claim);
        expect(messages.map((m) => m.id)).toEqual(["1"]);
        await a.addMessage(fixture.db, message("new"));
        const [next] = (await b.fetchAndLock(claim)).messages;
        expect(next!.id).toMatch(/^msg_[0-9a-z]{16}_2$/);
      } finally {
        await fixture.mf.dispose();
      }
    }
  });

  it("the migration file fails as a whole on it (nothing changed); after migrate() it applies", {
    timeout: 120_000,
  }, async () => {
    const fixture = await startD1();
    try {
      await applyFile(fixture.db, v1);
      const schema = async () =>
        (await fixture.db.prepare("SELECT name, sql FROM sqlite_schema ORDER BY name").all()).results;
      const before = await schema();
      await expect(applyFile(fixture.db, D1Store.migrationSql(t))).rejects.toThrow(
        /no column named id_namespace/,
      );
      expect(await schema()).toEqual(before);
      const store = new D1Store(fixture.db);
      await store.migrate();
      await applyFile(fixture.db, D1Store.migrationSql(t));
      expect((await store.fetchAndLock(claim)).messages.map((m) => m.id)).toEqual(["1"]);
    } finally {
      await fixture.mf.dispose();
    }
  });
});

describe("D1Store: a table of schema version 2 upgraded to version 3", () => {
  const t = "outbox_messages";
  const stateOf = async (db: D1Database) => ({
    version: (await db.prepare("SELECT version, id_namespace, legacy_max_id FROM edge_outbox_schema").all())
      .results,
    indexes: (
      await db
        .prepare(
          `SELECT name FROM sqlite_schema WHERE type = 'index' AND tbl_name = '${t}' AND name NOT LIKE 'sqlite_%' ORDER BY name`,
        )
        .all()
    ).results.map((r) => (r as { name: string }).name),
    rows: (await db.prepare(`SELECT * FROM "${t}" ORDER BY id`).all()).results,
  });

  it.each(["migrate() from two Workers at once", "the migration file, applied twice"])(
    "by %s: every row, id and the namespace kept, version 2's indexes gone",
    { timeout: 120_000 },
    async (how) => {
      const fixture = await startD1();
      try {
        const now = Date.now();
        await applyFile(
          fixture.db,
          `${[...v2Schema(t, { keyIndex: true }), ...v2Rows(t, now, 0)].join(";\n")};`,
        );
        const before = await stateOf(fixture.db);
        const store = new D1Store(fixture.db);
        await expect(store.fetchAndLock(claim)).rejects.toThrow(/not migrated to schema version 3/);
        if (how.startsWith("migrate"))
          await Promise.all([store.migrate(), new D1Store(fixture.db).migrate()]);
        else for (let i = 0; i < 2; i++) await applyFile(fixture.db, D1Store.migrationSql(t));
        const after = await stateOf(fixture.db);
        expect(after.rows).toEqual(before.rows);
        expect(after.version).toEqual([{ version: 3, id_namespace: V2_NAMESPACE, legacy_max_id: null }]);
        expect(after.indexes).toEqual([`edge_outbox_${t}_key`, `edge_outbox_${t}_state`]);
        const id = (row: number) => `msg_${V2_NAMESPACE}_${row}`;
        expect((await store.listDead()).map((m) => m.id)).toEqual([id(4), id(6)]);
        const { messages } = await store.fetchAndLock(claim);
        expect(messages.map((m) => m.id)).toEqual([id(2), id(1), id(3)]);
        await store.addMessage(fixture.db, message("new"));
        expect((await store.fetchAndLock(claim)).messages.map((m) => m.id)).toEqual([id(8)]);
      } finally {
        await fixture.mf.dispose();
      }
    },
  );
});

describe("D1Store: version 2's indexes made by a version-2 Worker beside a version-3 one", () => {
  const t = "outbox_messages";
  const indexesOf = async (db: D1Database, table = t) =>
    (
      await db
        .prepare(
          `SELECT name FROM sqlite_schema WHERE type = 'index' AND tbl_name = '${table}' AND name NOT LIKE 'sqlite_%' ORDER BY name`,
        )
        .all()
    ).results.map((r) => (r as { name: string }).name);

  // A rolling deploy, both Workers deciding from reads of a fresh database before either writes.
  // The version-2 batch lands first: its three partial indexes stay and the version-3 batch,
  // which read none, raises the row to 3 over them. Or it lands second: its upsert writes
  // version 2 over the 3 (version 2's own code). Version 1's names on this table go too; an
  // index of such a name on another table is someone else's and stays.
  it.each(["stays 3", "lowered to 2"])(
    "migrate() run again drops them and restores version 3 (version row %s)",
    { timeout: 120_000 },
    async (how) => {
      const fixture = await startD1();
      try {
        const store = new D1Store(fixture.db);
        await store.migrate();
        await store.addMessage(fixture.db, message("a"));
        const namespace = (await fixture.db.prepare("SELECT id_namespace FROM edge_outbox_schema").all())
          .results;
        const lowered = how === "lowered to 2" ? ["UPDATE edge_outbox_schema SET version = 2"] : [];
        await applyFile(
          fixture.db,
          `${[
            ...v2Schema(t).slice(0, -1),
            `CREATE INDEX "${t}_sent" ON "${t}" (sent_at) WHERE status = 1`,
            "CREATE TABLE app (x)",
            `CREATE INDEX "${t}_key" ON app (x)`,
            ...lowered,
          ].join(";\n")};`,
        );
        if (lowered.length > 0)
          await expect(new D1Store(fixture.db).fetchAndLock(claim)).rejects.toThrow(
            /not migrated to schema version 3/,
          );
        await new D1Store(fixture.db).migrate();
        expect(await indexesOf(fixture.db)).toEqual([`edge_outbox_${t}_state`]);
        expect(await indexesOf(fixture.db, "app")).toEqual([`${t}_key`]);
        const after = await fixture.db.prepare("SELECT version, id_namespace FROM edge_outbox_schema").all();
        expect(after.results).toEqual(
          namespace.map((r) => ({ version: 3, id_namespace: (r as { id_namespace: string }).id_namespace })),
        );
        const { messages } = await new D1Store(fixture.db).fetchAndLock(claim);
        expect(messages.map((m) => m.key)).toEqual(["a"]);
      } finally {
        await fixture.mf.dispose();
      }
    },
  );
});

describe("D1Store: bindings that are not D1", () => {
  it("refuses a Service binding and a Durable Object stub at construction; takes the real binding", {
    timeout: 120_000,
  }, async () => {
    const mf = new Miniflare({
      workers: [
        {
          name: "main",
          modules: true,
          script: await bundleWorker("test/d1/fixtures/bindings-worker.ts"),
          compatibilityDate: "2025-01-01",
          d1Databases: ["DB"],
          serviceBindings: { SVC: "other" },
          durableObjects: { NS: "Counter" },
        },
        {
          name: "other",
          modules: true,
          compatibilityDate: "2025-01-01",
          script:
            "import { WorkerEntrypoint } from 'cloudflare:workers'; export default class extends WorkerEntrypoint { hello() { return 1; } }",
        },
      ],
    });
    try {
      const report = (await (await mf.dispatchFetch("http://worker/")).json()) as Record<string, string>;
      for (const name of ["service", "durableObject"])
        expect(report[name]).toMatch(/^ValidationError: db must be a D1 database binding .*RPC stub/);
      expect(report.d1).toBe("migrated");
    } finally {
      await mf.dispose();
    }
  });
});

describe("D1Store: the fullest row a mark can leave", () => {
  it("a message of the largest accepted size, claimed again after a longest error, stays within D1's row size", {
    timeout: 120_000,
  }, async () => {
    const store = await migratedStore(d1.db);
    // key "k" (1 byte) and headers "{}" (2 bytes) besides the value: the most addMessage accepts.
    const room = MAX_ROW_BYTES - ROW_OVERHEAD - 3;
    await store.addMessage(d1.db, message("k", new Uint8Array(room)));
    const first = await store.fetchAndLock(claim);
    // 3 bytes a code unit in UTF-8: the longest error in bytes.
    const error = "\u20ac".repeat(MAX_ERROR_LENGTH + 10);
    expect(
      await store.updateRetryCount(first.token, [
        { id: first.messages[0]!.id, availableAt: new Date(), delay: 0, error },
      ]),
    ).toBe(1);
    const again = await store.fetchAndLock(claim); // now holding a token and a lease as well
    expect(again.messages[0]!.lastError).toHaveLength(MAX_ERROR_LENGTH);
    const { results } = await d1.db
      .prepare(
        `SELECT length(CAST(key AS BLOB)) + length(value) + length(CAST(headers AS BLOB))
           + length(CAST(last_error AS BLOB)) + length(CAST(claim_token AS BLOB)) AS text_bytes
         FROM "${store.table}"`,
      )
      .all<{ text_bytes: number }>();
    // The record: those bytes, 6 integer columns of at most 8 bytes, a header of at most 13 varints.
    const worst = results[0]!.text_bytes + 6 * 8 + 13 * 9;
    expect(worst).toBeLessThanOrEqual(MAX_ROW_BYTES);
    expect(await store.markAsDead(again.token, [{ id: again.messages[0]!.id, error }])).toBe(1);
  });
});
