/**
 * Decoding SQLite rows into messages, shared by LibsqlStore and D1Store: claim order when
 * timestamps tie, the legacy id boundary whatever a client's `intMode` makes of it, and the
 * value shapes D1 hands back (BLOBs as arrays of byte values). Written against mutation
 * survivors (TESTING.md).
 */
import { createClient } from "@libsql/client";
import { afterAll, describe, expect, it } from "vitest";
import { LibsqlStore } from "../../adapters/libsql.ts";
import { byAge, toRecord, toStats, toText, versionOf } from "../../adapters/sqlite/rows.ts";
import { prepareMessage } from "../../mod.ts";
import { dbPath, openStore, rowId, tempDir } from "./helpers.ts";

const tmp = tempDir();
afterAll(() => tmp.cleanup());

const claim = { batchSize: 20, leaseDuration: 30_000, ordering: "none" } as const;

describe("claim order when timestamps tie", () => {
  it("hands messages written in the same millisecond back in id order, past 9 and 99", async () => {
    const { store, close } = await openStore(`file:${dbPath(tmp.dir)}`);
    try {
      const now = new Date();
      await store.withTransaction(async (tx) => {
        for (let i = 1; i <= 12; i++) {
          await store.addMessage(
            tx,
            prepareMessage({ key: `k${i}`, value: "v" }, { maxMessageBytes: 64, now }),
          );
        }
      });
      const { messages } = await store.fetchAndLock(claim);
      expect(messages.map((m) => m.key)).toEqual(Array.from({ length: 12 }, (_, i) => `k${i + 1}`));
      expect(messages.map((m) => Number(rowId(m.id)))).toEqual(Array.from({ length: 12 }, (_, i) => i + 1));
    } finally {
      await close();
    }
  });

  it("byAge orders by time, then by id as a number", () => {
    const at = (ms: number, id: string) => ({ id, timestamp: new Date(ms) });
    const sorted = [at(2, "1"), at(1, "11"), at(1, "9"), at(1, "100"), at(1, "10"), at(1, "9")].sort(byAge);
    expect(sorted.map((r) => `${r.timestamp.getTime()}:${r.id}`)).toEqual([
      "1:9",
      "1:9",
      "1:10",
      "1:11",
      "1:100",
      "2:1",
    ]);
    expect(byAge(at(1, "5"), at(1, "5"))).toBe(0);
    expect(byAge(at(1, "4"), at(1, "5"))).toBe(-1);
    expect(byAge(at(1, "5"), at(1, "4"))).toBe(1);
  });
});

describe("legacy ids (rows from before schema version 2) under every intMode", () => {
  it.each(["number", "bigint", "string"] as const)(
    "keeps bare ids up to the boundary with intMode %s",
    async (intMode) => {
      const path = dbPath(tmp.dir);
      const first = await openStore(`file:${path}`);
      await first.store.withTransaction(async (tx) => {
        for (const key of ["a", "b", "c", "d"])
          await first.store.addMessage(tx, prepareMessage({ key, value: key }, { maxMessageBytes: 64 }));
      });
      // What the upgrade from version 1 records: rows up to 2 were written before it.
      await first.client.execute("UPDATE edge_outbox_schema SET legacy_max_id = 2");
      const namespace = String(
        (await first.client.execute("SELECT id_namespace FROM edge_outbox_schema")).rows[0]?.id_namespace,
      );
      await first.close();
      const client = createClient({ url: `file:${path}`, intMode });
      try {
        const store = new LibsqlStore(client);
        const { token, messages } = await store.fetchAndLock(claim);
        expect(messages.map((m) => m.id)).toEqual(["1", "2", `msg_${namespace}_3`, `msg_${namespace}_4`]);
        expect(await store.markAsDead(token, [{ id: "2" }, { id: `msg_${namespace}_3` }])).toBe(2);
        expect((await store.listDead()).map((m) => m.id)).toEqual(["2", `msg_${namespace}_3`]);
      } finally {
        client.close();
      }
    },
  );

  it("reads the version row whatever shape the driver gives its columns", () => {
    const read = (row: Record<string, unknown>) => versionOf({ rows: [row] });
    expect(read({ version: 2, id_namespace: "abc", legacy_max_id: 7 })).toEqual({
      version: 2,
      namespace: "abc",
      legacyMax: 7n,
    });
    expect(
      read({ version: 2n, id_namespace: new TextEncoder().encode("ns").buffer, legacy_max_id: 9n }).legacyMax,
    ).toBe(9n);
    expect(read({ version: "2", id_namespace: null, legacy_max_id: "12345678901234567890" }).legacyMax).toBe(
      0n,
    );
    expect(read({ version: 2, id_namespace: null, legacy_max_id: "1234567890123456789" }).legacyMax).toBe(
      1234567890123456789n,
    );
    for (const odd of [null, undefined, 1.5, "12x", "", " 1", "-1"]) {
      expect(read({ version: 2, id_namespace: "n", legacy_max_id: odd }).legacyMax).toBe(0n);
    }
    expect(versionOf({ rows: [] })).toEqual({ version: 0, namespace: null, legacyMax: 0n });
  });
});

describe("row values as each driver hands them back", () => {
  const space = { namespace: "0123456789abcdef", legacyMax: 0n };

  it("reads D1's BLOBs (arrays of byte values) and libSQL's ArrayBuffers alike", () => {
    const bytes = (text: string) => Array.from(new TextEncoder().encode(text));
    const d1 = toRecord(space, {
      id: "12",
      key: bytes("ключ"),
      value: [0, 255, 128],
      headers: bytes('{"h":"1"}'),
      created_at: 1000,
      retries: 2,
      last_error: bytes("boom"),
    });
    expect(d1).toEqual({
      id: "msg_0123456789abcdef_12",
      key: "ключ",
      value: new Uint8Array([0, 255, 128]),
      headers: { h: "1" },
      timestamp: new Date(1000),
      retries: 2,
      lastError: "boom",
    });
    const view = new Uint8Array([9, 1, 2, 3, 9]).subarray(1, 4);
    const libsql = toRecord(space, {
      id: 3n,
      key: "k",
      value: view,
      headers: null,
      created_at: 5n,
      retries: null,
      last_error: null,
    });
    expect(libsql).toEqual({
      id: "msg_0123456789abcdef_3",
      key: "k",
      value: new Uint8Array([1, 2, 3]),
      headers: {},
      timestamp: new Date(5),
      retries: 0,
      lastError: undefined,
    });
    // A copy of the view's bytes only, never its whole buffer.
    expect(libsql.value.buffer.byteLength).toBe(3);
    // A value written as text by hand comes back as its UTF-8 bytes; anything else as no bytes.
    expect(
      toRecord(space, { id: 1, key: null, value: "é", headers: "{}", created_at: 0, retries: 0 }).value,
    ).toEqual(new Uint8Array([0xc3, 0xa9]));
    expect(
      toRecord(space, { id: 1, key: 7, value: 42, headers: "{}", created_at: 0, retries: 0 }),
    ).toMatchObject({
      key: "7",
      value: new Uint8Array(0),
    });
  });

  it("decodes invalid UTF-8 with replacement and keeps a leading U+FEFF", () => {
    expect(toText(new Uint8Array([0xef, 0xbb, 0xbf, 0x61, 0xff]))).toBe("\uFEFFa\uFFFD");
    expect(toText([0x61, 0xc3])).toBe("a\uFFFD");
    expect(toText(null)).toBeNull();
    expect(toText(undefined)).toBeNull();
    expect(toText(12)).toBe("12");
  });

  it("reads the stats row, empty or with nulls, as numbers", () => {
    expect(toStats({ rows: [{ unfinished: 5n, in_flight: 2, dead: "1", oldest: 1000 }] })).toEqual({
      pending: 3,
      inFlight: 2,
      dead: 1,
      oldestPendingAt: new Date(1000),
    });
    expect(toStats({ rows: [{ unfinished: 0, in_flight: null, dead: null, oldest: null }] })).toEqual({
      pending: 0,
      inFlight: 0,
      dead: 0,
      oldestPendingAt: null,
    });
    expect(toStats({ rows: [] })).toEqual({ pending: 0, inFlight: 0, dead: 0, oldestPendingAt: null });
  });
});

describe("a hand-edited headers column", () => {
  it("reads as no headers (never a failed claim), keeping only string values", async () => {
    const { client, store, close } = await openStore(`file:${dbPath(tmp.dir)}`);
    try {
      const edits: Array<[string, string]> = [
        ["not json", "{a: x"],
        ["array", '["a", "b"]'],
        ["null", "null"],
        ["string", '"text"'],
        ["number", "42"],
        ["empty", ""],
        ["mixed", '{"a": "x", "n": 1, "o": {}, "b": "y"}'],
        ["proto", '{"__proto__": "p"}'],
      ];
      await store.withTransaction(async (tx) => {
        for (const [key] of edits) {
          await store.addMessage(
            tx,
            prepareMessage({ key, value: "v", headers: { was: "set" } }, { maxMessageBytes: 64 }),
          );
        }
      });
      for (const [key, text] of edits) {
        await client.execute({
          sql: `UPDATE "${store.table}" SET headers = ? WHERE key = ?`,
          args: [text, key],
        });
      }
      const { messages } = await store.fetchAndLock(claim);
      const headersOf = new Map(messages.map((m) => [m.key, m.headers]));
      expect(headersOf.size).toBe(edits.length);
      for (const key of ["not json", "array", "null", "string", "number", "empty"]) {
        expect(headersOf.get(key)).toEqual({});
      }
      expect(headersOf.get("mixed")).toEqual({ a: "x", b: "y" });
      // A header named "__proto__" stays a header, not the object's prototype.
      const proto = headersOf.get("proto")!;
      expect(Object.getOwnPropertyDescriptor(proto, "__proto__")?.value).toBe("p");
      expect(Object.getPrototypeOf(proto)).toBe(Object.prototype);
    } finally {
      await close();
    }
  });
});
