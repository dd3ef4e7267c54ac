/**
 * The libSQL claim returns a whole batch as one row (records as JSON, small values end to end in
 * one blob, larger ones read by id after it). These tests hold it to what users rely on: every
 * byte of every value, rows edited by hand, databases it cannot serve, and batches larger than
 * SQLite's length limit.
 */
import { createClient } from "@libsql/client";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { INLINED_VALUE_BYTES } from "../../adapters/libsql/pass.ts";
import { LibsqlStore } from "../../adapters/libsql.ts";
import { toClaim } from "../../adapters/sqlite/pass.ts";
import { type Message, Outbox, prepareMessage, StoreError } from "../../mod.ts";
import { recordingSender } from "../support/senders.ts";
import { dbPath, openStore, rowId, tempDir } from "./helpers.ts";

const tmp = tempDir();
afterAll(() => tmp.cleanup());

const claim = { batchSize: 100, leaseDuration: 30_000, ordering: "none" } as const;

describe("LibsqlStore claims", () => {
  let close: (() => Promise<void>) | undefined;
  afterEach(async () => {
    await close?.();
    close = undefined;
  });
  const open = async () => {
    const opened = await openStore(`file:${dbPath(tmp.dir)}`);
    close = opened.close;
    return opened;
  };

  it("hands back every value byte for byte, each in a buffer of its own", async () => {
    const { store } = await open();
    const large = new Uint8Array(1 << 20).map((_, i) => (i * 31) & 0xff);
    const values = [
      new Uint8Array([0, 0xff, 0xfe, 0x80, 0, 0xc3, 0x28, 0xed, 0xa0, 0x80]), // NULs, invalid UTF-8
      new Uint8Array(0),
      new TextEncoder().encode("héllo ✓ 𝄞"),
      large,
      new Uint8Array(0),
      new Uint8Array([0]),
      // Either side of the largest value a local claim carries in its one-row read.
      new Uint8Array(INLINED_VALUE_BYTES).fill(7),
      new Uint8Array(INLINED_VALUE_BYTES + 1).fill(8),
    ];
    await store.withTransaction(async (tx) => {
      for (const [i, value] of values.entries()) {
        await store.addMessage(
          tx,
          prepareMessage(
            { key: `k:${i}:ключ`, value, headers: { n: String(i) } },
            { maxMessageBytes: 2 << 20 },
          ),
        );
      }
    });
    const { messages } = await store.fetchAndLock(claim);
    expect(messages.map((m) => m.key)).toEqual(values.map((_, i) => `k:${i}:ключ`));
    for (const [i, m] of messages.entries()) {
      expect(m.headers).toEqual({ n: String(i) });
      expect(m.value.byteLength).toBe(values[i]!.byteLength);
      expect(Buffer.from(m.value).equals(Buffer.from(values[i]!))).toBe(true);
      // No message exposes (or keeps alive) the batch's buffer.
      expect(m.value.buffer.byteLength).toBe(m.value.byteLength);
    }
  });

  it("delivers rows edited by hand rather than holding up the batch behind them", async () => {
    const { client, store } = await open();
    const t = `"${store.table}"`;
    const now = Date.now();
    const row = (key: string, value: string, headers: string, i: number) =>
      client.execute({
        sql: `INSERT INTO ${t} (key, value, headers, created_at, available_at) VALUES (?1, ${value}, ?2, ?3, ?3)`,
        args: [key, headers, now - 100 + i],
      });
    await row("text-value", "'plain text'", '{"a":"1"}', 0);
    await row("bad-headers", "x'01'", "not json {", 1);
    await row("array-headers", "x'02'", '["x"]', 2);
    await row("mixed-headers", "x'03'", '{"ok":"yes","n":1,"o":{}}', 3);
    await row("integer-value", "42", "{}", 4);
    const got = new Map<string, Message>();
    const sender = recordingSender((m) => {
      got.set(m.key, m);
      m.markAsSent();
    });
    const errors: unknown[] = [];
    const result = await new Outbox(store, sender, { batchSize: 2, onError: (e) => errors.push(e) }).tick();
    expect(result).toMatchObject({ batches: 3, sent: 5 });
    expect(errors).toEqual([]);
    expect(new TextDecoder().decode(got.get("text-value")?.value)).toBe("plain text");
    expect(got.get("text-value")?.headers).toEqual({ a: "1" });
    expect(got.get("bad-headers")?.headers).toEqual({});
    expect(got.get("array-headers")?.headers).toEqual({});
    expect(got.get("mixed-headers")?.headers).toEqual({ ok: "yes" });
    expect(new TextDecoder().decode(got.get("integer-value")?.value)).toBe("42");
    expect((await store.stats()).pending).toBe(0);
  });

  it("counts what a pass recorded whether its marks ran inlined or, for an odd token, prepared", async () => {
    const { client, store } = await open();
    for (const key of ["a", "b", "c"])
      await store.addMessage(client, prepareMessage({ key, value: key }, { maxMessageBytes: 64 }));
    const first = await store.fetchAndLock({ ...claim, batchSize: 2 });
    const inlined = await store.recordAndFetch(
      { token: first.token, sent: first.messages.map((m) => m.id), retry: [], dead: [] },
      claim,
    );
    expect(inlined.recorded).toEqual({ sent: 2, failed: 0, dead: 0 });
    // A token that cannot be written into SQL (a row edited by hand) takes the prepared path.
    const [last] = inlined.claim.messages;
    const odd = "it's mine; --";
    await client.execute({
      sql: `UPDATE "${store.table}" SET claim_token = ?1 WHERE id = ?2`,
      args: [odd, rowId(last!.id)],
    });
    const prepared = await store.recordAndFetch({ token: odd, sent: [last!.id], retry: [], dead: [] }, claim);
    expect(prepared.recorded).toEqual({ sent: 1, failed: 0, dead: 0 });
    // The last pass of a drain: the count comes back with an empty claim too.
    await store.addMessage(client, prepareMessage({ key: "d", value: "d" }, { maxMessageBytes: 64 }));
    const final = await store.fetchAndLock(claim);
    const drained = await store.recordAndFetch(
      { token: final.token, sent: final.messages.map((m) => m.id), retry: [], dead: [] },
      claim,
    );
    expect(drained.recorded).toEqual({ sent: 1, failed: 0, dead: 0 });
    expect(drained.claim.messages).toEqual([]);
    expect(await store.stats()).toMatchObject({ pending: 0, inFlight: 0, dead: 0 });
  });

  it("leaves out a claimed record whose row vanished before its value was read", () => {
    const record = (id: string, value?: Uint8Array<ArrayBuffer>) => ({
      id,
      key: "k",
      value,
      headers: {},
      timestamp: new Date(1),
      retries: 0,
      lastError: undefined,
    });
    const values = new Map([["3", new Uint8Array([3])]]);
    const { token, messages } = toClaim(
      { namespace: "0123456789abcdef", legacyMax: 0n },
      "t",
      [record("2"), record("1", new Uint8Array([1])), record("3")],
      values,
    );
    expect(token).toBe("t");
    expect(messages.map((m) => [m.id, Array.from(m.value)])).toEqual([
      ["msg_0123456789abcdef_1", [1]],
      ["msg_0123456789abcdef_3", [3]],
    ]);
  });

  it("refuses a UTF-16 database in migrate(), before it could re-encode a value", async () => {
    const client = createClient({ url: `file:${dbPath(tmp.dir)}` });
    close = async () => client.close();
    await client.executeMultiple(
      "PRAGMA encoding = 'UTF-16le'; CREATE TABLE orders (id INTEGER PRIMARY KEY)",
    );
    const error = await new LibsqlStore(client).migrate().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StoreError);
    expect((error as StoreError).retryable).toBe(false);
    expect((error as StoreError).message).toMatch(/UTF-16.*needs UTF-8/);
    // Nothing was created.
    const tables = await client.execute("SELECT name FROM sqlite_master WHERE type = 'table'");
    expect(tables.rows.map((r) => r.name)).toEqual(["orders"]);
  });

  // About 1 GB of headers (SQLite's limit is 1e9 bytes per string), in memory to spare the
  // disk: some seconds and ~4.5 GB of memory. Values that large are read row by row, so it
  // takes a batch's records (keys, headers, errors) to outgrow the one-row read.
  it("halves a claim whose one-row read exceeds SQLite's length limit, down to what fits", {
    timeout: 120_000,
  }, async () => {
    const opened = await openStore(":memory:");
    close = opened.close;
    const { client, store } = opened;
    const size = 500_000_000; // two of these exceed 1e9 together, each fits alone
    const now = Date.now();
    await client.execute({
      sql: `INSERT INTO "${store.table}" (key, value, headers, created_at, available_at)
        VALUES ('big:1', x'01', printf('%.*c', ?1, 'a'), ?2, ?2), ('big:2', x'02', printf('%.*c', ?1, 'a'), ?2 + 1, ?2 + 1)`,
      args: [size, now - 10],
    });
    // One refused claim of both, then a claim of the first alone. A long lease: on a loaded
    // machine this claim alone can take longer than 30 s.
    const { messages } = await store.fetchAndLock({ ...claim, batchSize: 2, leaseDuration: 600_000 });
    expect(messages.map((m) => [m.key, Array.from(m.value)])).toEqual([["big:1", [1]]]);
    expect(messages[0]!.headers).toEqual({}); // not JSON: delivered without headers
    // The lease was taken on what was returned, and only on that.
    expect(await store.stats()).toMatchObject({ pending: 1, inFlight: 1 });
  });
});
