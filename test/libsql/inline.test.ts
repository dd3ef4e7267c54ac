import { createClient } from "@libsql/client";
import { afterAll, describe, expect, it } from "vitest";
import { inlineStatement, sqlLiteral } from "../../adapters/libsql/inline.ts";
import { buildStatements } from "../../adapters/sqlite/sql.ts";

describe("inlining arguments into SQL", () => {
  it("writes in safe integers and plain strings only", () => {
    expect(sqlLiteral(0)).toBe("0");
    expect(sqlLiteral(-42)).toBe("(-42)");
    expect(sqlLiteral(1_795_932_722_412)).toBe("1795932722412");
    expect(sqlLiteral("5b70413b-63d2-41ef-8e5b-5d53201d7625")).toBe("'5b70413b-63d2-41ef-8e5b-5d53201d7625'");
    expect(sqlLiteral("[1,2,9007199254740993]")).toBe("'[1,2,9007199254740993]'");
    expect(sqlLiteral("")).toBe("''");
    for (const value of [
      1.5,
      Number.NaN,
      Number.POSITIVE_INFINITY,
      2 ** 53,
      10n,
      null,
      undefined,
      true,
      new Uint8Array([1]),
      "it's",
      "x'; DROP TABLE outbox_messages; --",
      "a b",
      "line\nbreak",
      "nul\u0000",
      "é",
      '"quoted"',
      "?1",
    ]) {
      expect(sqlLiteral(value)).toBeUndefined();
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
    expect(inlineStatement({ sql: "SELECT ?1, ?2", args: [1, "it's"] })).toBeUndefined();
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

  it("leaves nothing a hostile token could do: it runs prepared instead", async () => {
    const client = createClient({ url: ":memory:" });
    afterAll(() => client.close());
    await client.executeMultiple(
      "CREATE TABLE t (id INTEGER PRIMARY KEY, token TEXT); INSERT INTO t VALUES (1, 'a')",
    );
    const hostile = "a' OR 1=1; DROP TABLE t; --";
    const statement = { sql: "DELETE FROM t WHERE token = ?1", args: [hostile] };
    expect(inlineStatement(statement)).toBeUndefined();
    expect((await client.execute(statement)).rowsAffected).toBe(0);
    await client.executeMultiple(inlineStatement({ sql: "DELETE FROM t WHERE token = ?1", args: ["a"] })!);
    expect((await client.execute("SELECT COUNT(*) AS n FROM t")).rows[0]?.n).toBe(0);
  });
});
