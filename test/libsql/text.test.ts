/**
 * Text that reaches the database is well-formed, and text already in it that is not (a hand
 * edit, an older version) is read without a crash. The native libSQL driver aborts the process
 * (SIGABRT) when it reads invalid UTF-8 as TEXT, so every read of such rows runs in a child
 * process: a regression shows as a failed test, not as a dead test worker.
 */
import { afterAll, describe, expect, it } from "vitest";
import { INLINED_VALUE_BYTES } from "../../adapters/libsql/pass.ts";
import { MAX_ERROR_LENGTH } from "../../adapters/sqlite/rows.ts";
import { prepareMessage } from "../../mod.ts";
import { dbPath, openStore, runFixture, tempDir } from "./helpers.ts";

const tmp = tempDir();
afterAll(() => tmp.cleanup());

const claim = { batchSize: 10, leaseDuration: 30_000, ordering: "none" } as const;
const strict = new TextDecoder("utf-8", { fatal: true });
const fromHex = (hex: string) => new Uint8Array((hex.match(/../g) ?? []).map((h) => Number.parseInt(h, 16)));

interface Read {
  id: string;
  key: string;
  headers: Record<string, string>;
  value: number[];
  lastError?: string;
}

async function readInChild(path: string) {
  const run = await runFixture("read-rows.ts", [path]);
  // A SIGABRT here is the bug: the driver met invalid UTF-8 as TEXT.
  expect({ code: run.code, signal: run.signal, stderr: run.stderr }).toEqual({
    code: 0,
    signal: null,
    stderr: "",
  });
  return JSON.parse(run.stdout) as {
    dead: Read[];
    delivered: Read[];
    result: { sent: number };
    errors: string[];
    stats: { pending: number; inFlight: number; dead: number };
  };
}

describe("LibsqlStore text", () => {
  it("writes well-formed text only: keys, headers, and errors cut inside a surrogate pair", {
    timeout: 60_000,
  }, async () => {
    const path = dbPath(tmp.dir);
    const { client, store, close } = await openStore(`file:${path}`);
    try {
      // Past prepareMessage's checks (a store takes what any caller prepared, and must store it
      // well-formed whatever it is): a PreparedMessage built by hand.
      const prepared = (key: string, headers: Record<string, string> = {}) => ({
        ...prepareMessage({ key: "k", value: "v" }, { maxMessageBytes: 64 }),
        key,
        headers,
      });
      await store.withTransaction(async (tx) => {
        await store.addMessage(tx, prepared("lone\uD800key", { "x-h\uDC00": "v\uD83D" }));
        await store.addMessage(tx, prepared("retried"));
        await store.addMessage(tx, prepared("dead"));
      });
      const { token, messages } = await store.fetchAndLock(claim);
      const [lone, retried, dead] = messages;
      expect(await store.release(token, [lone!.id])).toBe(1);
      // 1998 units, then pairs: the store's 2000-unit cut would land between a pair's halves.
      const long = `${"x".repeat(MAX_ERROR_LENGTH - 2)}${"😀".repeat(10)}`;
      expect(
        await store.updateRetryCount(token, [
          { id: retried!.id, availableAt: new Date(), delay: 0, error: long },
        ]),
      ).toBe(1);
      expect(await store.markAsDead(token, [{ id: dead!.id, error: "gone \uDFFF for good" }])).toBe(1);
      // Read as hex (ASCII), checked strictly: every stored text is valid UTF-8.
      const rows = await client.execute(
        `SELECT hex(CAST(key AS BLOB)) AS k, hex(CAST(headers AS BLOB)) AS h, hex(CAST(coalesce(last_error, '') AS BLOB)) AS e FROM outbox_messages ORDER BY id`,
      );
      const texts = rows.rows.map((r) => [r.k, r.h, r.e].map((hex) => strict.decode(fromHex(String(hex)))));
      expect(texts[0]).toEqual(["lone\uFFFDkey", '{"x-h\uFFFD":"v\uFFFD"}', ""]);
      expect(texts[1]![2]).toBe(`${"x".repeat(MAX_ERROR_LENGTH - 2)}…`);
      expect(texts[2]![2]).toBe("gone \uFFFD for good");

      const read = await readInChild(path);
      expect(read.dead.map((m) => m.lastError)).toEqual(["gone \uFFFD for good"]);
      expect(read.delivered.map((m) => [m.key, m.headers])).toEqual([
        ["lone\uFFFDkey", { "x-h\uFFFD": "v\uFFFD" }],
        ["retried", {}],
      ]);
    } finally {
      await close();
    }
  });

  it("reads rows that already hold invalid UTF-8 in any text column: lists and delivers them", {
    timeout: 60_000,
  }, async () => {
    const path = dbPath(tmp.dir);
    const { client, close } = await openStore(`file:${path}`);
    try {
      const now = Date.now();
      // As an older version or a hand edit leaves them: TEXT holding bytes that are not UTF-8
      // (a stray 0xFF, a cut 3-byte sequence, a UTF-8-encoded lone surrogate).
      const row = (key: string, headers: string, status: number, lastError: string, value = "x'01'") =>
        client.execute({
          sql: `INSERT INTO outbox_messages (key, value, headers, created_at, available_at, status, retries, last_error)
VALUES (${key}, ${value}, ${headers}, ?1, 0, ${status}, ${status === 3 ? 4 : 1}, ${lastError})`,
          args: [now],
        });
      await row("CAST(x'6bff31' AS TEXT)", "'{}'", 0, "CAST(x'e282' AS TEXT)");
      await row("'k2'", `CAST(x'7b2261223a2262ff227d' AS TEXT)`, 0, "NULL");
      await row("CAST(x'6b33eda080' AS TEXT)", '\'{"a":"b"}\'', 0, "'ok'", "CAST(x'41ff42' AS TEXT)");
      // A value too large for the claim's one-row read: read by id afterwards, as bytes.
      await row("'big'", "'{}'", 0, "NULL", `CAST(x'ff' || zeroblob(${INLINED_VALUE_BYTES}) AS TEXT)`);
      await row("CAST(x'64ff' AS TEXT)", `CAST(x'ff' AS TEXT)`, 3, "CAST(x'6572726f72ff' AS TEXT)");

      const read = await readInChild(path);
      expect(read.errors).toEqual([]);
      expect(read.dead.map((m) => [m.key, m.headers, m.lastError])).toEqual([["d\uFFFD", {}, "error\uFFFD"]]);
      expect(read.result.sent).toBe(4);
      expect(read.delivered.map((m) => [m.key, m.headers])).toEqual([
        ["k\uFFFD1", {}],
        ["k2", { a: "b\uFFFD" }],
        ["k3\uFFFD\uFFFD\uFFFD", { a: "b" }],
        ["big", {}],
      ]);
      expect(read.delivered[0]!.lastError).toBe("\uFFFD");
      // Values are bytes, delivered exactly as stored.
      expect(read.delivered[2]!.value).toEqual([0x41, 0xff, 0x42]);
      expect(read.delivered[3]!.value).toEqual([0xff, ...new Array(INLINED_VALUE_BYTES).fill(0)]);
      expect(read.stats).toMatchObject({ pending: 0, inFlight: 0, dead: 1 });
    } finally {
      await close();
    }
  });
});
