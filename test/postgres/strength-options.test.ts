/**
 * PostgresStore's options and the client it is given, checked before any SQL runs: the
 * defaults, the limits of names, the NOTIFY channel, and the message a wrong value or client
 * gets (what a user reads when the store refuses to start). Written against mutation survivors
 * (TESTING.md). No statement runs: the clients are never connected.
 */
import { neon } from "@neondatabase/serverless";
import pg from "pg";
import { afterAll, describe, expect, it } from "vitest";
import { notifyChannel, shortHash } from "../../adapters/postgres/options.ts";
import { PostgresStore } from "../../adapters/postgres.ts";
import { ValidationError } from "../../mod.ts";
import { freshTable, PG_URL, serverDatabase } from "./helpers.ts";

const nowhere = "postgres://nobody@127.0.0.1:1/none";
const pool = new pg.Pool({ connectionString: nowhere });
afterAll(async () => {
  await pool.end();
});

/** The ValidationError `make` throws (fails the test when it throws none). */
function refusal(make: () => unknown): ValidationError {
  try {
    make();
  } catch (error) {
    expect(error).toBeInstanceOf(ValidationError);
    expect(error).toMatchObject({ code: "INVALID_OPTIONS" });
    return error as ValidationError;
  }
  throw new Error("nothing was refused");
}

describe("PostgresStore options", () => {
  it("defaults to public.outbox_messages and its channel", () => {
    const store = new PostgresStore(pool);
    expect(store.schema).toBe("public");
    expect(store.table).toBe("outbox_messages");
    expect(store.channel).toBe("edge_outbox:public.outbox_messages");
  });

  it("takes names up to 63 characters, of letters, digits and _ after a letter or _", () => {
    for (const name of ["a".repeat(63), "_", "_x9", "Z_9", "outbox"]) {
      const store = new PostgresStore(pool, { schema: name, table: name });
      expect([store.schema, store.table]).toEqual([name, name]);
    }
    // Only the schema is kept from pg_*; only the table from the version table's name.
    expect(new PostgresStore(pool, { table: "pg_outbox" }).table).toBe("pg_outbox");
    expect(new PostgresStore(pool, { schema: "edge_outbox_schema" }).schema).toBe("edge_outbox_schema");
    expect(new PostgresStore(pool, { schema: "pgx" }).schema).toBe("pgx");
  });

  it("says what a bad name must be, and what it got", () => {
    expect(refusal(() => new PostgresStore(pool, { table: "a b" })).message).toBe(
      'table must be a plain SQL identifier (a letter or _, then up to 62 letters, digits or _), got "a b"',
    );
    expect(refusal(() => new PostgresStore(pool, { schema: 7 as never })).message).toBe(
      "schema must be a plain SQL identifier (a letter or _, then up to 62 letters, digits or _), got 7",
    );
    expect(refusal(() => new PostgresStore(pool, { table: "a".repeat(64) })).message).toContain(
      "table must be",
    );
    expect(refusal(() => new PostgresStore(pool, { table: "x-" })).message).toContain("table must be");
    // Only a string is a name, even one whose text would be.
    expect(refusal(() => new PostgresStore(pool, { table: ["outbox"] as never })).message).toBe(
      'table must be a plain SQL identifier (a letter or _, then up to 62 letters, digits or _), got ["outbox"]',
    );
    expect(refusal(() => new PostgresStore(pool, { schema: "PG_Temp" })).message).toBe(
      'schema must not start with "pg_" (reserved by PostgreSQL), got "PG_Temp"',
    );
    expect(refusal(() => new PostgresStore(pool, { table: "edge_outbox_schema" })).message).toBe(
      `table must not be "edge_outbox_schema" (the store's version table)`,
    );
  });

  it("says what bad options, notify and prepare values it got", () => {
    expect(refusal(() => new PostgresStore(pool, null as never)).message).toBe(
      "options must be an object, got null",
    );
    expect(refusal(() => new PostgresStore(pool, "x" as never)).message).toBe(
      "options must be an object, got x",
    );
    expect(refusal(() => new PostgresStore(pool, { notify: 1 as never })).message).toBe(
      "notify must be a boolean, got 1",
    );
    expect(refusal(() => new PostgresStore(pool, { prepare: "no" as never })).message).toBe(
      "prepare must be a boolean, got no",
    );
    expect(new PostgresStore(pool, { notify: true, prepare: false }).table).toBe("outbox_messages");
  });
});

describe("the NOTIFY channel", () => {
  it("is the full name up to 63 bytes, then 40 characters and a hash of the whole", () => {
    const table63 = "t".repeat(63 - "edge_outbox:public.".length);
    expect(notifyChannel("public", table63)).toBe(`edge_outbox:public.${table63}`);
    const long = `${table63}u`;
    const full = `edge_outbox:public.${long}`;
    expect(notifyChannel("public", long)).toBe(`${full.slice(0, 40)}~${shortHash(full)}`);
    expect(new PostgresStore(pool, { table: long }).channel).toBe(notifyChannel("public", long));
  });

  it("hashes with 32-bit FNV-1a, as 8 hex digits", () => {
    // Reference values of FNV-1a 32 (offset basis 0x811c9dc5, prime 0x01000193).
    expect(shortHash("")).toBe("811c9dc5");
    expect(shortHash("a")).toBe("e40c292c");
    expect(shortHash("foobar")).toBe("bf9cf968");
    // Leading zeros kept: always 8 digits.
    expect(shortHash("k120")).toBe("0493fd3b");
    expect(shortHash("edge_outbox:public.outbox_messages")).toMatch(/^[0-9a-f]{8}$/);
  });
});

describe("the client given to the store", () => {
  it("refuses Neon's HTTP query function, saying what to use instead", () => {
    expect(refusal(() => new PostgresStore(neon(nowhere) as never)).message).toMatch(
      /^Neon's HTTP query function neon\(\) cannot take part in a transaction.*use the Pool or Client of @neondatabase\/serverless/,
    );
  });

  it("names the shape it got when it is no client", () => {
    const message = (db: unknown) => refusal(() => new PostgresStore(db as never)).message;
    const start =
      "db must be a node-postgres Pool or Client, a postgres.js sql, a PGlite instance, or a Neon Pool or Client, got ";
    expect(message(null)).toBe(`${start}null`);
    expect(message("postgres://x")).toBe(`${start}a string (pass a client, not a connection string)`);
    expect(message(() => {})).toBe(`${start}a function without unsafe() and begin() (not a postgres.js sql)`);
    class Connection {}
    expect(message(new Connection())).toBe(`${start}an object (Connection) of another shape`);
    expect(message(Object.create(null))).toBe(`${start}an object (Object) of another shape`);
    // A class without a name, and a constructor whose name is no text, read as Object.
    const Anonymous = [class {}][0] as new () => object;
    expect(message(new Anonymous())).toBe(`${start}an object (Object) of another shape`);
    expect(message({ constructor: { name: 5 } })).toBe(`${start}an object (Object) of another shape`);
    expect(message(42)).toBe(`${start}number`);
    expect(message(undefined)).toBe(`${start}undefined`);
  });

  it("refuses half a node-postgres client: query without connect, connect without query, a function with both", () => {
    const refused = (db: unknown) => refusal(() => new PostgresStore(db as never));
    const halves = [
      { query: async () => ({ rows: [] }) },
      { connect: async () => {} },
      { query: async () => ({ rows: [] }), connect: "yes" },
      // A Pool's counters with neither method.
      { totalCount: 0, release: () => {} },
      Object.assign(() => {}, { query: async () => ({ rows: [] }), connect: async () => {} }),
    ];
    for (const db of halves) {
      expect(refused(db), JSON.stringify(Object.keys(db))).toBeInstanceOf(ValidationError);
      expect(refused(db).message).toMatch(/^db must be a node-postgres Pool or Client/);
    }
  });
});

describe.runIf(PG_URL !== undefined)("prepare (node-postgres)", () => {
  const url = serverDatabase("strength_options");
  it.each([
    [undefined, true],
    [false, false],
    [true, true],
  ])("prepare: %s runs the store's statements as prepared statements: %s", async (prepare, prepared) => {
    // One connection, so the session the store used is the one asked.
    const one = new pg.Pool({ connectionString: url(), max: 1 });
    try {
      const store = new PostgresStore(one, {
        table: freshTable(),
        ...(prepare === undefined ? {} : { prepare }),
      });
      await store.migrate();
      expect(await store.stats()).toMatchObject({ pending: 0 });
      const { rows } = await one.query(
        "SELECT name FROM pg_prepared_statements WHERE name LIKE 'edge\\_outbox\\_%'",
      );
      expect(rows.length > 0).toBe(prepared);
    } finally {
      await one.end();
    }
  });
});
