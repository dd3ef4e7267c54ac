/**
 * PostgresStore's rows (`adapters/postgres/rows.ts`) as a user sees them: claimed messages in
 * time order with ties by id (numerically: id 10 after id 9), values byte for byte (also from a
 * node-postgres client whose type parsers are switched off), error texts kept bounded, retry
 * delays clamped, stats' counts and oldest pending time. Written against mutation survivors
 * (TESTING.md). On every driver this run has (PGlite always, the server's when
 * EDGE_OUTBOX_PG_URL is set).
 */
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { PostgresStore } from "../../adapters/postgres.ts";
import { prepareMessage } from "../../mod.ts";
import {
  type DriverName,
  driversToRun,
  freshTable,
  migratedStore,
  openClient,
  PG_URL,
  run,
  serverDatabase,
} from "./helpers.ts";

vi.setConfig({ testTimeout: 120_000, hookTimeout: 120_000 });

const claim = { batchSize: 50, leaseDuration: 30_000, ordering: "none" } as const;
const url = serverDatabase("strength-rows");

type Added = { key: string; value: string | Uint8Array; at?: Date; headers?: Record<string, string> };

async function add(store: PostgresStore, messages: Added[]): Promise<void> {
  await store.withTransaction(async (tx) => {
    for (const m of messages) {
      await store.addMessage(
        tx,
        prepareMessage(
          { key: m.key, value: m.value, headers: m.headers },
          { maxMessageBytes: 4096, now: m.at },
        ),
      );
    }
  });
}

for (const kind of driversToRun()) {
  describe(`PostgresStore rows (${kind})`, () => {
    let client: Awaited<ReturnType<typeof openClient>>;
    beforeAll(async () => {
      client = await openClient(kind as DriverName, kind === "PGlite" ? undefined : url());
    });
    afterAll(async () => {
      await client?.close();
    });

    it("claims messages oldest first, and messages of one time by id: id 10 after id 9", async () => {
      const store = await migratedStore(client.db);
      const same = new Date(1_700_000_000_000);
      // Twelve messages of one time (ids 1-12), then two older ones added last (ids 13, 14).
      await add(store, [
        ...Array.from({ length: 12 }, (_, i) => ({ key: `k${i + 1}`, value: "v", at: same })),
        { key: "older", value: "v", at: new Date(same.getTime() - 2) },
        { key: "oldest", value: "v", at: new Date(same.getTime() - 5) },
      ]);
      const { messages } = await store.fetchAndLock(claim);
      expect(messages.map((m) => m.key)).toEqual([
        "oldest",
        "older",
        ...Array.from({ length: 12 }, (_, i) => `k${i + 1}`),
      ]);
      expect(messages[0]!.timestamp.getTime()).toBe(same.getTime() - 5);
      expect(messages[2]!.timestamp.getTime()).toBe(same.getTime());
      expect(messages.map((m) => m.retries)).toEqual(Array(14).fill(0));
      expect(messages.every((m) => m.lastError === undefined)).toBe(true);
    });

    it("reads a hand-edited headers column as no headers (never a failed claim), keeping only string values", async () => {
      const store = await migratedStore(client.db);
      const edits: Array<[string, string]> = [
        ["array", `'["a", "b"]'`],
        ["null", "'null'"],
        ["string", `'"text"'`],
        ["number", "'42'"],
        ["mixed", `'{"a": "x", "n": 1, "o": {}, "b": "y"}'`],
        ["proto", `'{"__proto__": "p"}'`],
      ];
      await add(
        store,
        edits.map(([key]) => ({ key, value: "v", headers: { was: "set" } })),
      );
      for (const [key, json] of edits) {
        await run(
          client.db,
          `UPDATE public."${store.table}" SET headers = ${json}::jsonb WHERE key = '${key}'`,
        );
      }
      const { messages } = await store.fetchAndLock(claim);
      const headersOf = new Map(messages.map((m) => [m.key, m.headers]));
      for (const key of ["array", "null", "string", "number"]) expect(headersOf.get(key)).toEqual({});
      expect(headersOf.get("mixed")).toEqual({ a: "x", b: "y" });
      // A header named "__proto__" stays a header, not the object's prototype.
      const proto = headersOf.get("proto")!;
      expect(Object.getOwnPropertyDescriptor(proto, "__proto__")?.value).toBe("p");
      expect(Object.getPrototypeOf(proto)).toBe(Object.prototype);
    });

    it("claims nothing from an empty outbox, or once every message is claimed", async () => {
      const store = await migratedStore(client.db);
      expect((await store.fetchAndLock(claim)).messages).toEqual([]);
      await add(store, [{ key: "a", value: "v" }]);
      expect((await store.fetchAndLock(claim)).messages.map((m) => m.key)).toEqual(["a"]);
      expect((await store.fetchAndLock(claim)).messages).toEqual([]);
    });

    it("claims a large batch added newest first in time order", async () => {
      const store = await migratedStore(client.db);
      await addNewestFirst(store, 400);
      const { messages } = await store.fetchAndLock({ ...claim, batchSize: 400 });
      expect(messages.map((m) => m.key)).toEqual(Array.from({ length: 400 }, (_, i) => `k${i}`));
    });

    it("claims the oldest of many messages added newest first, oldest first, with or without fresh planner statistics", async () => {
      // The claim's UPDATE returns its rows in the order of the join that finds them: once the
      // table's statistics are known (ANALYZE, as autovacuum runs it on a growing table), a few
      // hundred rows are scanned whole (newest first here) against a hash of the claimed ids.
      // Only the statement's ORDER BY puts them back into time order.
      const store = await migratedStore(client.db);
      await addNewestFirst(store, 600);
      const first = await store.fetchAndLock({ ...claim, batchSize: 40 });
      expect(first.messages.map((m) => m.key)).toEqual(Array.from({ length: 40 }, (_, i) => `k${i}`));
      // As autovacuum would, once the table has grown.
      await run(client.db, `ANALYZE ${store.table}`);
      const second = await store.fetchAndLock({ ...claim, batchSize: 40 });
      expect(second.messages.map((m) => m.key)).toEqual(Array.from({ length: 40 }, (_, i) => `k${40 + i}`));
    });

    it("records, releases and requeues no message without a statement when no id is one of this outbox's", async () => {
      // A connection of its own, ended before the calls: any statement would fail.
      const own = await openClient(kind as DriverName, kind === "PGlite" ? undefined : url());
      const store = await migratedStore(own.db);
      await add(store, [{ key: "a", value: "v" }]);
      const { token, messages } = await store.fetchAndLock(claim);
      // The same row in another outbox's namespace (one letter changed).
      const mine = messages[0]!.id;
      const foreign = mine.replace(/^msg_(.)/, (_, c: string) => `msg_${c === "a" ? "b" : "a"}`);
      expect(foreign).not.toBe(mine);
      await own.close();
      const at = new Date();
      expect(await store.markAsSent(token, [])).toBe(0);
      expect(await store.markAsSent(token, [foreign])).toBe(0);
      expect(await store.updateRetryCount(token, [])).toBe(0);
      expect(await store.updateRetryCount(token, [{ id: foreign, delay: 0, availableAt: at }])).toBe(0);
      expect(await store.markAsDead(token, [])).toBe(0);
      expect(await store.markAsDead(token, [{ id: foreign }])).toBe(0);
      expect(await store.release(token, [])).toBe(0);
      expect(await store.release(token, [foreign])).toBe(0);
      expect(await store.requeueDead([])).toBe(0);
      expect(await store.requeueDead([foreign])).toBe(0);
    });

    it("records several sent, retried and dead messages in one mark each, keeping error texts without NUL", async () => {
      const store = await migratedStore(client.db);
      await add(
        store,
        ["s1", "s2", "r1", "r2", "d1", "d2"].map((key) => ({ key, value: "v" })),
      );
      const { token, messages } = await store.fetchAndLock(claim);
      const id = Object.fromEntries(messages.map((m) => [m.key, m.id]));
      expect(await store.markAsSent(token, [id.s1!, id.s2!])).toBe(2);
      const at = new Date();
      expect(
        await store.updateRetryCount(token, [
          { id: id.r1!, delay: 0, availableAt: at, error: "a\0b" },
          { id: id.r2!, delay: 0, availableAt: at, error: "c" },
        ]),
      ).toBe(2);
      expect(await store.markAsDead(token, [{ id: id.d1!, error: "x\0" }, { id: id.d2! }])).toBe(2);
      const again = await store.fetchAndLock(claim);
      expect(again.messages.map((m) => [m.key, m.lastError])).toEqual([
        ["r1", "a\uFFFDb"],
        ["r2", "c"],
      ]);
      expect((await store.listDead()).map((m) => [m.key, m.lastError])).toEqual([
        ["d1", "x\uFFFD"],
        ["d2", undefined],
      ]);
    });

    it("refuses NUL in a key or a header, and a header that is no string, saying which, before writing", async () => {
      const store = await migratedStore(client.db);
      const base = prepareMessage({ key: "k", value: "v" }, { maxMessageBytes: 1024 });
      const refused = (m: typeof base) =>
        store
          .withTransaction((tx) => store.addMessage(tx, m))
          .then(
            () => "accepted",
            (error: { name: string; code: string; message: string }) =>
              `${error.name} ${error.code}: ${error.message}`,
          );
      expect(await refused({ ...base, key: "a\0b" })).toBe(
        'ValidationError INVALID_MESSAGE: message.key must not contain NUL (U+0000): PostgreSQL text cannot store it, got "a\\u0000b"',
      );
      // A long key is quoted by its first 40 characters only (a key may be 1,024).
      expect(await refused({ ...base, key: `a\0${"b".repeat(1000)}` })).toBe(
        `ValidationError INVALID_MESSAGE: message.key must not contain NUL (U+0000): PostgreSQL text cannot store it, got "a\\u0000${"b".repeat(38)}"`,
      );
      expect(await refused({ ...base, headers: { "x-\0": "1" } })).toBe(
        'ValidationError INVALID_MESSAGE: message.headers["x-\\0"] must not contain NUL (U+0000)',
      );
      expect(await refused({ ...base, headers: { "x-a": "1\0" } })).toBe(
        'ValidationError INVALID_MESSAGE: message.headers["x-a"] must not contain NUL (U+0000)',
      );
      expect(await refused({ ...base, headers: { "x-n": 1 as never } })).toBe(
        'ValidationError INVALID_MESSAGE: message.headers["x-n"] must be a string',
      );
      expect(await store.stats()).toMatchObject({ pending: 0 });
    });

    it("hands back every byte of a value, headers and key as added", async () => {
      const store = await migratedStore(client.db);
      const bytes = Uint8Array.from({ length: 256 }, (_, i) => i);
      await add(store, [{ key: "bin", value: bytes, headers: { "x-a": "1", "x-b": "é" } }]);
      const [message] = (await store.fetchAndLock(claim)).messages;
      expect(message!.key).toBe("bin");
      expect(Array.from(message!.value)).toEqual(Array.from(bytes));
      expect(message!.headers).toEqual({ "x-a": "1", "x-b": "é" });
    });

    it("keeps no error text for a retry or dead mark without one, and counts the retry", async () => {
      const store = await migratedStore(client.db);
      await add(store, [{ key: "a", value: "v" }]);
      const first = await store.fetchAndLock(claim);
      const id = first.messages[0]!.id;
      await store.updateRetryCount(first.token, [
        { id, delay: 0, availableAt: new Date(), error: 42 as never },
      ]);
      const again = await store.fetchAndLock(claim);
      expect(again.messages.map((m) => [m.retries, m.lastError])).toEqual([[1, undefined]]);
      await store.markAsDead(again.token, [{ id }]);
      expect((await store.listDead()).map((m) => [m.key, m.retries, m.lastError])).toEqual([
        ["a", 1, undefined],
      ]);
    });

    it("retries at once when a delay is negative, not a number or not finite; waits for a positive one", async () => {
      const store = await migratedStore(client.db);
      await add(store, [
        { key: "neg", value: "v" },
        { key: "nan", value: "v" },
        { key: "inf", value: "v" },
        { key: "str", value: "v" },
        { key: "wait", value: "v" },
      ]);
      const first = await store.fetchAndLock(claim);
      const ids = Object.fromEntries(first.messages.map((m) => [m.key, m.id]));
      const availableAt = new Date(Date.now() + 3_600_000);
      expect(
        await store.updateRetryCount(first.token, [
          { id: ids.neg!, delay: -60_000, availableAt },
          { id: ids.nan!, delay: Number.NaN, availableAt },
          { id: ids.inf!, delay: Number.POSITIVE_INFINITY, availableAt },
          { id: ids.str!, delay: "60000" as never, availableAt },
          { id: ids.wait!, delay: 60_000, availableAt, error: "later" },
        ]),
      ).toBe(5);
      const again = await store.fetchAndLock(claim);
      expect(again.messages.map((m) => m.key)).toEqual(["neg", "nan", "inf", "str"]);
      expect(await store.stats()).toMatchObject({ pending: 1, inFlight: 4, dead: 0 });
    });

    it("stats count pending, in-flight and dead messages apart, dated by the oldest pending message", async () => {
      const store = await migratedStore(client.db);
      const t0 = new Date(1_600_000_000_123);
      expect(await store.stats()).toEqual({ pending: 0, inFlight: 0, dead: 0, oldestPendingAt: null });
      await add(store, [
        { key: "a", value: "v", at: t0 },
        { key: "b", value: "v", at: new Date(t0.getTime() + 1000) },
        { key: "c", value: "v", at: new Date(t0.getTime() + 2000) },
        { key: "d", value: "v", at: new Date(t0.getTime() + 3000) },
      ]);
      const held = await store.fetchAndLock({ ...claim, batchSize: 2 });
      expect(await store.markAsDead(held.token, [{ id: held.messages[0]!.id, error: "x" }])).toBe(1);
      const stats = await store.stats();
      expect(stats).toEqual({
        pending: 2,
        inFlight: 1,
        dead: 1,
        oldestPendingAt: new Date(t0.getTime() + 1000),
      });
    });
  });
}

describe.runIf(PG_URL !== undefined)(
  "PostgresStore rows from a node-postgres client without type parsers",
  () => {
    it("reads every byte of a value from bytea's escape text form too (bytea_output = escape)", async () => {
      const client = await clientWithoutTypeParsers();
      try {
        await client.query("SET bytea_output = 'escape'");
        const store = new PostgresStore(client, { table: freshTable() });
        await store.migrate();
        // Every byte: printable ones come as themselves, a backslash doubled, the others in octal.
        const bytes = Uint8Array.from({ length: 256 }, (_, i) => i);
        await add(store, [
          { key: "all", value: bytes },
          { key: "slashes", value: Uint8Array.of(0x5c, 0x5c, 0x30, 0x5c, 0x78, 0x31) },
          { key: "empty", value: "" },
        ]);
        const { messages } = await store.fetchAndLock(claim);
        expect(messages.map((m) => [m.key, Array.from(m.value)])).toEqual([
          ["all", Array.from(bytes)],
          ["slashes", [0x5c, 0x5c, 0x30, 0x5c, 0x78, 0x31]],
          ["empty", []],
        ]);
      } finally {
        await client.end();
      }
    });

    it("reads ids, times, values and headers from their text forms", async () => {
      const client = await clientWithoutTypeParsers();
      try {
        const store = new PostgresStore(client, { table: freshTable() });
        await store.migrate();
        const at = new Date(1_650_000_000_456);
        await add(store, [
          {
            key: "b",
            value: Uint8Array.of(0x10, 1, 0xab, 0xff, 0x7e),
            at: new Date(at.getTime() + 1),
            headers: { h: "v" },
          },
          { key: "a", value: "", at },
        ]);
        const { token, messages } = await store.fetchAndLock(claim);
        expect(
          messages.map((m) => [m.key, Array.from(m.value), m.headers, m.timestamp.getTime(), m.retries]),
        ).toEqual([
          ["a", [], {}, at.getTime(), 0],
          ["b", [0x10, 1, 0xab, 0xff, 0x7e], { h: "v" }, at.getTime() + 1, 0],
        ]);
        expect(await store.markAsSent(token, [messages[0]!.id])).toBe(1);
        expect(await store.stats()).toEqual({
          pending: 0,
          inFlight: 1,
          dead: 0,
          oldestPendingAt: new Date(at.getTime() + 1),
        });
      } finally {
        await client.end();
      }
    });
  },
);

/** `n` messages `k0`..`k<n-1>`, `k0` the oldest, added newest first. */
function addNewestFirst(store: PostgresStore, n: number): Promise<void> {
  const t0 = 1_700_000_000_000;
  return add(
    store,
    Array.from({ length: n }, (_, i) => ({ key: `k${n - 1 - i}`, value: "v", at: new Date(t0 + n - 1 - i) })),
  );
}

/** A connected node-postgres client that hands every value over as the server's text. */
async function clientWithoutTypeParsers(): Promise<pg.Client> {
  const text = (_oid: number) => (value: string) => value;
  const client = new pg.Client({ connectionString: url(), types: { getTypeParser: text as never } });
  client.on("error", () => {});
  await client.connect();
  return client;
}
