/**
 * What D1Store adds to the conformance suite: bad input refused before anything is written,
 * D1's limits (a row over 2,000,000 bytes refused; marks over many ids split; a claim whose
 * read would exceed the string limit halved), `withTransaction` as one batch, and one schema
 * with LibsqlStore (`migrationSql()` applied by hand, by libSQL, the DDL both make).
 */
import { createClient } from "@libsql/client";
import { describe, expect, it } from "vitest";
import { type D1Database, D1Store, MAX_ROW_BYTES } from "../../adapters/d1.ts";
import { LibsqlStore } from "../../adapters/libsql.ts";
import {
  type ClaimOptions,
  type PreparedMessage,
  prepareMessage,
  StoreError,
  ValidationError,
} from "../../mod.ts";
import { applyFile, d1ForFile, freshTable, migratedStore } from "./helpers.ts";

const claim: ClaimOptions = { batchSize: 10, leaseDuration: 30_000, ordering: "none" };
const message = (
  key: string,
  value: string | Uint8Array = "{}",
  headers?: Record<string, string>,
): PreparedMessage => prepareMessage({ key, value, headers }, { maxMessageBytes: 4 << 20 });

/** Tests that move rows of about 2 MB across into workerd: slow on a loaded machine. */
const BIG = { timeout: 120_000 };

const d1 = d1ForFile();

/** Names of the tables and indexes in the database (D1's own `_cf_` tables left out). */
async function schemaNames(db: D1Database): Promise<string[]> {
  const { results } = await db
    .prepare("SELECT name FROM sqlite_schema WHERE name NOT LIKE '_cf_%' ORDER BY name")
    .all<{ name: string }>();
  return results.map((row) => row.name);
}

describe("D1Store: bad input", () => {
  it("refuses a binding that is not a D1 database, and an unsafe table name, before any SQL", async () => {
    for (const db of [undefined, null, {}, { prepare() {} }, { execute() {}, transaction() {} }, "DB"]) {
      expect(() => new D1Store(db as unknown as D1Database)).toThrow(ValidationError);
    }
    expect(() => new D1Store(null as never)).toThrow(/must be a D1 database binding .*got null$/);
    expect(() => new D1Store({} as never)).toThrow(/got object$/);
    expect(() => new D1Store("DB" as never)).toThrow(/got string$/);
    expect(() => new D1Store(d1.db)).not.toThrow();
    const before = await schemaNames(d1.db);
    for (const table of [
      'x"; DROP TABLE y; --',
      "sqlite_master",
      "edge_outbox_schema",
      "",
      "1abc",
      "a".repeat(64),
    ]) {
      expect(() => new D1Store(d1.db, { table })).toThrow(ValidationError);
      expect(() => D1Store.migrationSql(table)).toThrow(ValidationError);
    }
    expect(() => new D1Store(d1.db, { retention: { sent: "keep", keepFor: -1 } as never })).toThrow(
      ValidationError,
    );
    expect(await schemaNames(d1.db)).toEqual(before);
  });

  it(
    "refuses a message over D1's row size before anything is written; one just under it round-trips",
    BIG,
    async () => {
      const store = await migratedStore(d1.db);
      const tooBig = message("big", new Uint8Array(MAX_ROW_BYTES));
      const statements: ReturnType<D1Store["insertStatement"]>[] = [];
      await expect(store.addMessage(statements, tooBig)).rejects.toMatchObject({ code: "INVALID_MESSAGE" });
      expect(statements).toHaveLength(0);
      await expect(store.addMessage(d1.db, tooBig)).rejects.toBeInstanceOf(ValidationError);
      // Headers count too.
      const bigHeaders = message("h", "{}", { "x-big": "a".repeat(MAX_ROW_BYTES) });
      await expect(store.addMessage(d1.db, bigHeaders)).rejects.toBeInstanceOf(ValidationError);
      expect((await store.stats()).pending).toBe(0);

      const value = crypto.getRandomValues(new Uint8Array(65_536)).map((b, i) => (i % 7 === 0 ? 0 : b));
      const large = new Uint8Array(MAX_ROW_BYTES - 10_000);
      large.set(value);
      await store.addMessage(d1.db, message("fits", large));
      const { messages } = await store.fetchAndLock(claim);
      expect(messages).toHaveLength(1);
      expect(messages[0]!.value.byteLength).toBe(large.byteLength);
      expect(Buffer.compare(Buffer.from(messages[0]!.value), Buffer.from(large))).toBe(0);
    },
  );

  it(
    "accepts a row of exactly the room D1 leaves, refuses one byte more, saying how much is allowed",
    BIG,
    async () => {
      const store = await migratedStore(d1.db);
      // key "k" (1 byte) and headers "{}" (2 bytes) besides the value.
      const room = MAX_ROW_BYTES - 8192 - 3;
      await expect(store.addMessage(d1.db, message("k", new Uint8Array(room + 1)))).rejects.toThrow(
        `message too large for D1: key, value and headers take ${room + 4} bytes, D1 stores at most 2000000 bytes per row (1991808 for them)`,
      );
      await store.addMessage(d1.db, message("k", new Uint8Array(room)));
      expect((await store.stats()).pending).toBe(1);
    },
  );

  it(
    "refuses a message whose key and headers, escaped in a claim's read, could never be claimed",
    BIG,
    async () => {
      const store = await migratedStore(d1.db);
      // 700,000 backslashes: 1.4 MB as stored headers JSON (the row fits), 2.8 MB escaped again in
      // a claim's read, over D1's 2 MB string limit even for a claim of one.
      const headers = { "x-path": "\\".repeat(700_000) };
      await expect(store.addMessage(d1.db, message("k", "{}", headers))).rejects.toThrow(
        /escaped as JSON in a claim's read/,
      );
      // Quotes: 2 bytes each as stored JSON (1.1 MB), 4 escaped again (2.2 MB).
      const quoted = message("k", "{}", { "x-q": '"'.repeat(550_000) });
      await expect(store.addMessage(d1.db, quoted)).rejects.toMatchObject({
        code: "INVALID_MESSAGE",
        message: expect.stringContaining("in one value of at most 2000000 bytes (1983616 for them)"),
      });
      expect((await store.stats()).pending).toBe(0);
      // Large but claimable: 300,000 plain characters in a header.
      await store.addMessage(d1.db, message("k", "{}", { "x-pad": "a".repeat(300_000) }));
      expect((await store.fetchAndLock(claim)).messages[0]!.headers["x-pad"]).toHaveLength(300_000);
    },
  );

  it("refuses a tx that is neither an array of statements nor a D1 binding", async () => {
    const store = await migratedStore(d1.db);
    for (const tx of [null, {}, "tx", { execute() {} }]) {
      await expect(store.addMessage(tx as never, message("k"))).rejects.toMatchObject({
        code: "INVALID_MESSAGE",
      });
    }
    expect((await store.stats()).pending).toBe(0);
  });

  it("says to run migrate() on a table that has none", async () => {
    const store = new D1Store(d1.db, { table: freshTable() });
    await expect(store.fetchAndLock(claim)).rejects.toThrow(/migrate\(\)/);
    await expect(store.fetchAndLock(claim)).rejects.toBeInstanceOf(StoreError);
  });
});

describe("D1Store: batches", () => {
  it("addMessage(stmts) commits with the caller's writes in one batch, or not at all", async () => {
    const store = await migratedStore(d1.db);
    const orders = `orders_${freshTable()}`;
    await d1.db.prepare(`CREATE TABLE ${orders} (id TEXT PRIMARY KEY)`).run();
    const ok = [d1.db.prepare(`INSERT INTO ${orders} (id) VALUES ('a')`)];
    await store.addMessage(ok, message("order:a"));
    expect(ok).toHaveLength(2);
    await d1.db.batch(ok);
    const failing = [d1.db.prepare(`INSERT INTO ${orders} (id) VALUES ('b')`)];
    await store.addMessage(failing, message("order:b"));
    failing.push(d1.db.prepare(`INSERT INTO ${orders} (id) VALUES ('a')`)); // violates the key
    await expect(d1.db.batch(failing)).rejects.toThrow();
    const { messages } = await store.fetchAndLock(claim);
    expect(messages.map((m) => m.key)).toEqual(["order:a"]);
  });

  it("withTransaction runs the statements as one batch when fn resolves, and none when it throws", async () => {
    const store = await migratedStore(d1.db);
    await expect(
      store.withTransaction(async (tx) => {
        await store.addMessage(tx, message("rolled back"));
        throw new Error("no");
      }),
    ).rejects.toThrow("no");
    expect(await store.withTransaction(async () => 42)).toBe(42);
    expect(
      await store.withTransaction(async (tx) => {
        await store.addMessage(tx, message("one"));
        await store.addMessage(tx, message("two"));
        return tx.length;
      }),
    ).toBe(2);
    expect((await store.fetchAndLock(claim)).messages.map((m) => m.key)).toEqual(["one", "two"]);
  });

  it(
    "marks and requeues hundreds of ids (split into statements D1 accepts), with long error texts",
    BIG,
    async () => {
      const store = await migratedStore(d1.db);
      const count = 250;
      await store.withTransaction(async (tx) => {
        for (let i = 0; i < count; i++) await store.addMessage(tx, message(`k${i}`));
      });
      const first = await store.fetchAndLock({ ...claim, batchSize: count });
      expect(first.messages).toHaveLength(count);
      const error = "\u0001".repeat(5000); // escapes to 6 bytes a unit in JSON
      const dead = first.messages.slice(0, 150).map((m) => ({ id: m.id, error }));
      const retry = first.messages
        .slice(150)
        .map((m) => ({ id: m.id, availableAt: new Date(), delay: 0, error }));
      const result = await store.recordAndFetch(
        { token: first.token, sent: [], retry, dead },
        { ...claim, batchSize: count },
      );
      expect(result.recorded).toEqual({ sent: 0, failed: 100, dead: 150 });
      expect(result.claim.messages).toHaveLength(100);
      const listed = await store.listDead({ limit: 1000 });
      expect(listed).toHaveLength(150);
      expect(listed[0]!.lastError?.length).toBeLessThanOrEqual(2000);
      expect(await store.requeueDead(listed.map((m) => m.id))).toBe(150);
      expect(
        await store.markAsSent(
          result.claim.token,
          result.claim.messages.map((m) => m.id),
        ),
      ).toBe(100);
      const again = await store.fetchAndLock({ ...claim, batchSize: count });
      expect(again.messages).toHaveLength(150);
      expect(
        await store.release(
          again.token,
          again.messages.map((m) => m.id),
        ),
      ).toBe(150);
      expect(await store.stats()).toMatchObject({ pending: 150, inFlight: 0, dead: 0 });
    },
  );

  it(
    "a claim reads values too large for its one-row read by id afterwards, a few at a time, intact",
    BIG,
    async () => {
      const store = await migratedStore(d1.db);
      // Batch 10 carries values up to 100 KB in its read: these 300 KB values are read by id.
      const values = Array.from({ length: 12 }, (_, i) => new Uint8Array(300_000).fill(i + 1));
      values[3]![0] = 0;
      await store.withTransaction(async (tx) => {
        for (const [i, value] of values.entries()) await store.addMessage(tx, message(`big${i}`, value));
      });
      const first = await store.fetchAndLock(claim);
      const rest = await store.fetchAndLock(claim);
      const claimed = [...first.messages, ...rest.messages];
      expect(claimed.map((m) => m.key)).toEqual(values.map((_, i) => `big${i}`));
      for (const [i, m] of claimed.entries())
        expect(Buffer.compare(Buffer.from(m.value), Buffer.from(values[i]!))).toBe(0);
    },
  );

  it("a claim whose one-row read would exceed D1's string limit is halved until it fits", BIG, async () => {
    const store = await migratedStore(d1.db);
    // Six messages with 400 KB headers: a read of all of them is 2.4 MB, over the 2 MB limit.
    await store.withTransaction(async (tx) => {
      for (let i = 0; i < 6; i++)
        await store.addMessage(tx, message(`k${i}`, "{}", { "x-pad": String(i).repeat(400_000) }));
    });
    const first = await store.fetchAndLock(claim);
    expect(first.messages.length).toBeGreaterThan(0);
    expect(first.messages.length).toBeLessThan(6);
    expect(first.messages[0]!.headers["x-pad"]).toHaveLength(400_000);
    const rest = await store.fetchAndLock(claim);
    expect(first.messages.length + rest.messages.length).toBe(6);
  });
});

/** The binding, counting its `batch` calls (every call still goes to the real D1). */
function counting(db: D1Database): { db: D1Database; batches: () => number } {
  let batches = 0;
  return {
    db: {
      prepare: (query) => db.prepare(query),
      batch: (statements) => {
        batches++;
        return db.batch(statements);
      },
    },
    batches: () => batches,
  };
}

describe("D1Store: claims that fail", () => {
  it("a failure other than a too-big read fails the claim at once, after one batch", async () => {
    const table = freshTable();
    await new D1Store(d1.db, { table }).migrate();
    const watched = counting(d1.db);
    const store = new D1Store(watched.db, { table });
    await store.addMessage(d1.db, message("k"));
    await store.stats(); // reads the namespace before the table goes
    await store.fetchAndLock({ ...claim, batchSize: 1 }).then((c) => store.release(c.token, []));
    const before = watched.batches();
    await d1.db.prepare(`DROP TABLE "${table}"`).run();
    await expect(store.fetchAndLock(claim)).rejects.toThrow(/no such table/);
    expect(watched.batches() - before).toBe(1);
  });

  it(
    "a row edited by hand too big to read even alone fails the claim after halving to one, never loops",
    BIG,
    async () => {
      const table = freshTable();
      await new D1Store(d1.db, { table }).migrate();
      const watched = counting(d1.db);
      const store = new D1Store(watched.db, { table });
      // Headers the store would refuse (see above), written around it.
      await d1.db
        .prepare(
          `INSERT INTO "${table}" (key, value, headers, created_at, available_at) VALUES ('k', x'00', ?1, 0, 0)`,
        )
        .bind(JSON.stringify({ p: "\\".repeat(700_000) }))
        .run();
      await store.stats();
      const error = await store.fetchAndLock({ ...claim, batchSize: 4 }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(StoreError);
      expect(String(error)).toMatch(/too big/);
      expect(watched.batches()).toBe(3); // batch sizes 4, 2, 1
    },
  );

  it("marks, release and requeue with only another outbox's ids change nothing and run nothing", async () => {
    const store = await migratedStore(d1.db);
    await store.addMessage(d1.db, message("k"));
    const { token, messages } = await store.fetchAndLock(claim);
    const foreign = [`msg_${"0".repeat(16)}_1`, "not an id"];
    expect(
      await store.updateRetryCount(
        token,
        foreign.map((id) => ({ id, availableAt: new Date(), delay: 0 })),
      ),
    ).toBe(0);
    expect(
      await store.markAsDead(
        token,
        foreign.map((id) => ({ id })),
      ),
    ).toBe(0);
    expect(await store.markAsSent(token, foreign)).toBe(0);
    expect(await store.release(token, foreign)).toBe(0);
    expect(await store.requeueDead(foreign)).toBe(0);
    expect(await store.stats()).toMatchObject({ pending: 0, inFlight: 1 });
    expect(await store.markAsSent(token, [...foreign, messages[0]!.id])).toBe(1);
  });
});

describe("D1Store and LibsqlStore: one schema", () => {
  it("create the same tables and indexes, to the letter", async () => {
    const table = freshTable();
    await new D1Store(d1.db, { table }).migrate();
    const client = createClient({ url: ":memory:" });
    await new LibsqlStore(client, { table }).migrate();
    const query = `SELECT type, name, tbl_name, sql FROM sqlite_schema WHERE tbl_name IN ('${table}', 'edge_outbox_schema') ORDER BY name`;
    const fromD1 = (await d1.db.prepare(query).all()).results;
    const fromLibsql = (await client.execute(query)).rows.map((row) => ({ ...row }));
    expect(fromD1).toEqual(fromLibsql);
    client.close();
  });

  it("the per-key index comes with the first claim by key, from either store", async () => {
    const table = freshTable();
    const index = `edge_outbox_${table}_key`;
    const store = new D1Store(d1.db, { table });
    await store.migrate();
    expect(await schemaNames(d1.db)).not.toContain(index);
    await store.addMessage(d1.db, message("a"));
    await store.addMessage(d1.db, message("a"));
    const first = await new D1Store(d1.db, { table }).fetchAndLock({ ...claim, ordering: "key" });
    expect(first.messages).toHaveLength(1);
    expect(await schemaNames(d1.db)).toContain(index);
  });

  it("the per-key index is made again after another process drops the table and migrates it again", async () => {
    const table = freshTable();
    const index = `edge_outbox_${table}_key`;
    const byKey = { ...claim, ordering: "key" } as const;
    const store = new D1Store(d1.db, { table });
    await store.migrate();
    await store.fetchAndLock(byKey);
    expect(await schemaNames(d1.db)).toContain(index);
    await d1.db.prepare(`DROP TABLE ${table}`).run();
    await new D1Store(d1.db, { table }).migrate(); // a new namespace, without the per-key index
    expect(await schemaNames(d1.db)).not.toContain(index);
    await store.addMessage(d1.db, message("a"));
    await store.addMessage(d1.db, message("a"));
    // The long-lived store's first claim finds the new namespace; its next claim by key makes the
    // index again (before, it kept believing in the dropped one: every claim scanned the table).
    const first = await store.fetchAndLock(byKey);
    expect(first.messages).toHaveLength(1);
    await store.markAsSent(
      first.token,
      first.messages.map((m) => m.id),
    );
    expect((await store.fetchAndLock(byKey)).messages).toHaveLength(1);
    expect(await schemaNames(d1.db)).toContain(index);
  });

  it("migrationSql(), applied as a migration file, makes a table the store uses without migrate()", async () => {
    const table = freshTable();
    const text = D1Store.migrationSql(table);
    expect(text).not.toMatch(/BEGIN|COMMIT/i); // wrangler refuses transactions in migration files
    await applyFile(d1.db, text);
    await applyFile(d1.db, text); // idempotent
    const store = new D1Store(d1.db, { table });
    await store.addMessage(d1.db, message("k"));
    const { messages } = await store.fetchAndLock(claim);
    expect(messages[0]!.id).toMatch(/^msg_[0-9a-z]{16}_1$/);
    // migrate() afterwards changes nothing: the same namespace, the same ids.
    await store.migrate();
    const other = new D1Store(d1.db, { table });
    await other.migrate();
    await other.addMessage(d1.db, message("k2"));
    const next = await other.fetchAndLock(claim);
    expect(next.messages[0]!.id.split("_")[1]).toBe(messages[0]!.id.split("_")[1]);
  });

  it("each database the file is applied to gets its own id namespace; LibsqlStore uses the file too", async () => {
    const text = D1Store.migrationSql();
    const namespaces = new Set<string>();
    for (let i = 0; i < 3; i++) {
      const client = createClient({ url: ":memory:" });
      await client.executeMultiple(text);
      const store = new LibsqlStore(client);
      await store.addMessage(client, message("k"));
      const { messages } = await store.fetchAndLock(claim);
      expect(messages).toHaveLength(1);
      namespaces.add(messages[0]!.id.split("_")[1]!);
      await store.migrate(); // up to date: nothing to do
      client.close();
    }
    expect(namespaces.size).toBe(3);
  });
});
