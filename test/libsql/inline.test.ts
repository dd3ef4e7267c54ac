import { createClient } from "@libsql/client";
import fc from "fast-check";
import { afterAll, describe, expect, it } from "vitest";
import {
  inlineStatement,
  MAX_INLINE_BYTES,
  MAX_INLINE_TEXT,
  sqlLiteral,
} from "../../adapters/libsql/inline.ts";
import { buildStatements } from "../../adapters/sqlite/sql.ts";
import { wellFormedText } from "../../mod.ts";

describe("inlining arguments into SQL", () => {
  it("writes in safe integers, text and small byte arrays exactly, and nothing else", () => {
    expect(sqlLiteral(0)).toBe("0");
    expect(sqlLiteral(-42)).toBe("(-42)");
    expect(sqlLiteral(1_795_932_722_412)).toBe("1795932722412");
    expect(sqlLiteral("5b70413b-63d2-41ef-8e5b-5d53201d7625")).toBe("'5b70413b-63d2-41ef-8e5b-5d53201d7625'");
    expect(sqlLiteral("[1,2,9007199254740993]")).toBe("'[1,2,9007199254740993]'");
    expect(sqlLiteral("")).toBe("''");
    expect(sqlLiteral("it's")).toBe("'it''s'");
    expect(sqlLiteral("''")).toBe("''''''");
    expect(sqlLiteral("é \u{1F600}\n?1")).toBe("'é \u{1F600}\n?1'");
    expect(sqlLiteral(new Uint8Array([0, 1, 0xab, 0xff]))).toBe("X'0001abff'");
    expect(sqlLiteral(new Uint8Array(0))).toBe("X''");
    expect(sqlLiteral(new Uint8Array([5, 6, 7, 8]).subarray(1, 3))).toBe("X'0607'");
    expect(sqlLiteral("a".repeat(MAX_INLINE_TEXT))).toBe(`'${"a".repeat(MAX_INLINE_TEXT)}'`);
    expect(sqlLiteral(new Uint8Array(MAX_INLINE_BYTES))).toBe(`X'${"00".repeat(MAX_INLINE_BYTES)}'`);
    for (const value of [
      1.5,
      Number.NaN,
      Number.POSITIVE_INFINITY,
      2 ** 53,
      10n,
      null,
      undefined,
      true,
      new Uint8Array(MAX_INLINE_BYTES + 1),
      // A subclass may answer byteLength differently from what the driver binds.
      new (class Framed extends Uint8Array {
        override get byteLength() {
          return 1;
        }
      })([1, 2, 3]),
      "'".repeat(MAX_INLINE_TEXT + 1),
      new ArrayBuffer(1),
      [1],
      "nul\u0000",
      "lone \uD800 high",
      "lone \uDC00 low",
    ]) {
      expect(sqlLiteral(value)).toBeUndefined();
    }
  });

  it("reads back every written-in text and byte array as the value bound would be", async () => {
    const client = createClient({ url: ":memory:" });
    try {
      await fc.assert(
        fc.asyncProperty(
          fc.string({ unit: "binary", maxLength: 200 }),
          fc.uint8Array({ maxLength: MAX_INLINE_BYTES }),
          async (text, bytes) => {
            const statement = {
              sql: "SELECT ?1 AS t, typeof(?1) AS tt, ?2 AS b, typeof(?2) AS bt",
              args: [text, bytes],
            };
            const script = inlineStatement(statement);
            if (text.includes("\0") || wellFormedText(text) !== text) {
              expect(script).toBeUndefined();
              return;
            }
            const written = await client.execute(script!);
            const bound = await client.execute(statement);
            expect(written.rows[0]).toEqual(bound.rows[0]);
            expect(written.rows[0]?.t).toBe(text);
            expect(new Uint8Array(written.rows[0]?.b as ArrayBuffer)).toEqual(bytes);
          },
        ),
        { numRuns: 300, seed: 16 },
      );
    } finally {
      client.close();
    }
  });

  it("replaces numbered parameters, or gives up on the whole statement", () => {
    expect(
      inlineStatement({ sql: "UPDATE t SET a = ?1, b = ?2 WHERE c = ?1 LIMIT ?3", args: ["x", 7, 10] }),
    ).toBe("UPDATE t SET a = 'x', b = 7 WHERE c = 'x' LIMIT 10");
    expect(inlineStatement({ sql: "SELECT ?10, ?1", args: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10] })).toBe(
      "SELECT 10, 1",
    );
    expect(inlineStatement("SELECT 1")).toBe("SELECT 1");
    expect(inlineStatement({ sql: "SELECT 1-?1", args: [-5] })).toBe("SELECT 1-(-5)");
    expect(inlineStatement({ sql: "SELECT ?1, ?2", args: [1, "nul\u0000"] })).toBeUndefined();
    expect(inlineStatement({ sql: "SELECT ?1, ?2", args: [1] })).toBeUndefined();
    expect(inlineStatement({ sql: "SELECT :a", args: { a: 1 } })).toBeUndefined();
  });

  it("finds no ? in the store's statements but their numbered parameters", () => {
    const sql = buildStatements("outbox_messages");
    const all = Object.values(sql).flatMap((value): string[] =>
      typeof value === "string"
        ? [value]
        : Array.isArray(value)
          ? value.map((step: { sql: string }) => step.sql)
          : [value.read, value.take],
    );
    expect(all.length).toBeGreaterThan(15);
    for (const statement of all) expect(statement.replace(/\?\d+/g, "")).not.toContain("?");
  });

  it("leaves nothing a hostile text could do: it stays one string", async () => {
    const client = createClient({ url: ":memory:" });
    afterAll(() => client.close());
    await client.executeMultiple(
      "CREATE TABLE t (id INTEGER PRIMARY KEY, token TEXT); INSERT INTO t VALUES (1, 'a')",
    );
    for (const hostile of ["a' OR 1=1; DROP TABLE t; --", "a'; DELETE FROM t; --", "a' || '", "a\\'"]) {
      await client.executeMultiple(
        inlineStatement({ sql: "DELETE FROM t WHERE token = ?1", args: [hostile] })!,
      );
      expect((await client.execute("SELECT COUNT(*) AS n FROM t")).rows[0]?.n).toBe(1);
    }
    // Text that would end the SQL early is never written in: it runs prepared.
    const nul = { sql: "DELETE FROM t WHERE token = ?1", args: ["a\u0000' OR 1=1"] };
    expect(inlineStatement(nul)).toBeUndefined();
    expect((await client.execute(nul)).rowsAffected).toBe(0);
    await client.executeMultiple(inlineStatement({ sql: "DELETE FROM t WHERE token = ?1", args: ["a"] })!);
    expect((await client.execute("SELECT COUNT(*) AS n FROM t")).rows[0]?.n).toBe(0);
  });
});
