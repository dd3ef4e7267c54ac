/**
 * Which failures the relay retries: a `StoreError` is `retryable` (code `STORE_BUSY`) for the
 * conditions a later attempt gets past and a non-retryable `STORE_ERROR` for the others, whose
 * retry would only repeat the failure (a wrong database name, a missing table). Written against
 * mutation survivors (TESTING.md): on the real server where the condition is cheap to cause
 * (a refused connection, a role over its connection limit, a database that does not exist), and
 * for the rest with errors of the shapes node-postgres and postgres.js raise.
 */
import pg from "pg";
import postgres from "postgres";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import {
  commitOutcomeUnknown,
  isCommitOutcomeUnknown,
  isConnectionLost,
  isRefusal,
  isRetryable,
  toStoreError,
} from "../../adapters/postgres/errors.ts";
import { PostgresStore } from "../../adapters/postgres.ts";
import { OutboxError, StoreError, ValidationError } from "../../mod.ts";
import { PG_URL, serverDatabase } from "./helpers.ts";

vi.setConfig({ testTimeout: 120_000, hookTimeout: 120_000 });

/** What `call` rejected with (fails the test when it resolves). */
async function failure(call: () => Promise<unknown>): Promise<StoreError> {
  const error = await call().then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(StoreError);
  return error as StoreError;
}

/** A store's stats() on a client of `kind` at `url`, expected to fail: its StoreError. */
async function statsFailure(kind: "pg" | "postgres.js", url: string): Promise<StoreError> {
  if (kind === "pg") {
    const pool = new pg.Pool({ connectionString: url, max: 1, connectionTimeoutMillis: 10_000 });
    pool.on("error", () => {});
    try {
      return await failure(() => new PostgresStore(pool).stats());
    } finally {
      await pool.end();
    }
  }
  const sql = postgres(url, { max: 1, onnotice: () => {}, connect_timeout: 10 });
  try {
    return await failure(() => new PostgresStore(sql).stats());
  } finally {
    await sql.end({ timeout: 1 });
  }
}

describe.runIf(PG_URL !== undefined)("failures to reach the server", () => {
  const url = serverDatabase("strength_failures");
  const role = `eo_limited_${process.pid}`;
  const urlAs = (user: string, database?: string) => {
    const u = new URL(url());
    u.username = user;
    if (database !== undefined) u.pathname = `/${database}`;
    return u.toString();
  };
  let admin: pg.Pool;
  beforeAll(async () => {
    admin = new pg.Pool({ connectionString: PG_URL, max: 1 });
    await admin.query(`DROP ROLE IF EXISTS "${role}"`);
    await admin.query(`CREATE ROLE "${role}" LOGIN CONNECTION LIMIT 0`);
  });
  afterAll(async () => {
    await admin?.query(`DROP ROLE IF EXISTS "${role}"`);
    await admin?.end();
  });

  for (const kind of ["pg", "postgres.js"] as const) {
    it(`${kind}: a refused connection is retryable (STORE_BUSY): the server may come up`, async () => {
      const error = await statsFailure(kind, "postgres://postgres@127.0.0.1:1/none");
      expect(error).toMatchObject({ retryable: true, code: "STORE_BUSY" });
      expect(error.message).toMatch(
        /^PostgreSQL failed while reading stats \(ECONNREFUSED\): .*; the next pass retries, nothing is lost$/,
      );
    });

    it(`${kind}: too many connections (53300) is retryable: connections free up`, async () => {
      const error = await statsFailure(kind, urlAs(role));
      expect(error).toMatchObject({ retryable: true, code: "STORE_BUSY" });
      expect(error.message).toContain("PostgreSQL failed while reading stats (53300): ");
    });

    it(`${kind}: a database that does not exist (3D000) is not retryable: a retry repeats it`, async () => {
      const error = await statsFailure(kind, urlAs("postgres", `eo_missing_${process.pid}`));
      expect(error).toMatchObject({ retryable: false, code: "STORE_ERROR" });
      expect(error.message).toMatch(/^PostgreSQL failed while reading stats \(3D000\): .*does not exist$/);
      expect(error.message).not.toContain("migrate()");
    });
  }
});

describe.runIf(PG_URL !== undefined)("transactions when the connection fails", () => {
  const url = serverDatabase("strength_tx");
  const message = { key: "k", value: new Uint8Array([1]), headers: {}, timestamp: new Date() };

  it("pg Pool: no connection for a transaction or a migration is retryable, naming which", async () => {
    const pool = new pg.Pool({ connectionString: "postgres://postgres@127.0.0.1:1/none", max: 2 });
    pool.on("error", () => {});
    try {
      const store = new PostgresStore(pool);
      const tx = await failure(() => store.withTransaction(async () => 1));
      expect(tx).toMatchObject({ retryable: true, code: "STORE_BUSY" });
      expect(tx.message).toContain("PostgreSQL failed while connecting for a transaction (ECONNREFUSED)");
      const migrate = await failure(() => store.migrate());
      expect(migrate).toMatchObject({ retryable: true, code: "STORE_BUSY" });
      expect(migrate.message).toContain(
        "PostgreSQL failed while connecting for a transaction (ECONNREFUSED)",
      );
    } finally {
      await pool.end();
    }
  });

  it("pg Client ended by its owner: every call is a non-retryable error saying to make a new one", async () => {
    const client = new pg.Client({ connectionString: url() });
    client.on("error", () => {});
    await client.connect();
    const store = new PostgresStore(client, { table: `ended_${process.pid}` });
    await store.migrate();
    await client.end();
    for (const call of [() => store.stats(), () => store.withTransaction(async () => 1)]) {
      const error = await failure(call);
      expect(error).toMatchObject({ retryable: false, code: "STORE_ERROR" });
      // Named as users know it (it read "the Client Client's" before: the class name doubled).
      expect(error.message).toMatch(/^the node-postgres Client's connection has ended/);
      expect(error.message).toContain(
        "connection has ended (closed, or terminated by the server) and a Client never reconnects: create a new Client and PostgresStore, or pass a Pool, which replaces dropped connections",
      );
    }
  });

  it("a PoolClient kept for the store is one connection: it migrates, runs transactions, relays", async () => {
    const pool = new pg.Pool({ connectionString: url(), max: 2 });
    const kept = await pool.connect();
    try {
      const store = new PostgresStore(kept, { table: `kept_${process.pid}` });
      await store.migrate();
      await store.withTransaction((tx) => store.addMessage(tx, message));
      await store.addMessage(kept, message);
      const claim = await store.fetchAndLock({ batchSize: 10, leaseDuration: 30_000, ordering: "none" });
      expect(claim.messages).toHaveLength(2);
      expect(
        await store.markAsSent(
          claim.token,
          claim.messages.map((m) => m.id),
        ),
      ).toBe(2);
      // Still the same single connection: the pool never lent out a second one.
      expect(pool.totalCount).toBe(1);
    } finally {
      kept.release();
      await pool.end();
    }
  });

  it("a Pool whose idle connection was killed: a transaction either works or fails retryably, and the next works", async () => {
    const name = `begin_${process.pid}`;
    const pool = new pg.Pool({ connectionString: url(), max: 1, application_name: name });
    pool.on("error", () => {});
    const admin = new pg.Pool({ connectionString: url(), max: 1 });
    try {
      const store = new PostgresStore(pool, { table: `begin_${process.pid}` });
      await store.migrate();
      // The pool's only connection is killed while idle: the next BEGIN runs on a dead socket.
      await admin.query(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1",
        [name],
      );
      await new Promise((resolve) => setTimeout(resolve, 200));
      const outcome = await store.withTransaction(async () => 1).catch((e: unknown) => e);
      if (outcome !== 1) {
        expect(outcome).toBeInstanceOf(StoreError);
        expect(outcome).toMatchObject({ retryable: true });
      }
      // A dead connection is never handed out again.
      expect(await store.withTransaction(async () => 2)).toBe(2);
      expect(await store.stats()).toMatchObject({ pending: 0 });
    } finally {
      await pool.end();
      await admin.end();
    }
  });
});

describe("the failures a later attempt gets past", () => {
  // SQLSTATEs: serialization failure, deadlock, lock_timeout, statement_timeout, admin shutdown,
  // crash shutdown, cannot connect now, too many connections; class 08 (connection exception)
  // and class 53 (insufficient resources) as a whole.
  const retryableStates = [
    "40001",
    "40P01",
    "55P03",
    "57014",
    "57P01",
    "57P02",
    "57P03",
    "53300",
    "08000",
    "08006",
    "08P01",
    "53100",
    "53200",
  ];
  // Socket and driver codes of a connection that dropped or never came up (node-postgres passes
  // the socket's, postgres.js its own).
  const transientCodes = [
    "ECONNREFUSED",
    "ECONNRESET",
    "EPIPE",
    "ETIMEDOUT",
    "EAI_AGAIN",
    "CONNECTION_CLOSED",
    "CONNECTION_ENDED",
    "CONNECTION_DESTROYED",
    "CONNECT_TIMEOUT",
  ];
  // node-postgres's messages of a dropped connection, which carry no code.
  const droppedMessages = [
    "Connection terminated unexpectedly",
    "terminating connection due to administrator command",
    "Connection terminated due to connection timeout",
    "connection closed",
    "Connection was closed",
    "connection ended",
    "Client has encountered a connection error and is not queryable",
    "timeout exceeded when trying to connect",
    "socket hang up",
  ];

  it.each([...retryableStates, ...transientCodes])("%s is a retryable STORE_BUSY", (code) => {
    const error = toStoreError(Object.assign(new Error("it failed"), { code }), "claiming messages");
    expect(error).toBeInstanceOf(StoreError);
    expect(error).toMatchObject({ retryable: true, code: "STORE_BUSY" });
    expect(error.message).toBe(
      `PostgreSQL failed while claiming messages (${code}): it failed; the next pass retries, nothing is lost`,
    );
    expect(error.cause).toBeInstanceOf(Error);
  });

  it.each(droppedMessages)("%s (no code) is a retryable STORE_BUSY", (message) => {
    const error = toStoreError(new Error(message), "reading stats");
    expect(error).toMatchObject({ retryable: true, code: "STORE_BUSY" });
    expect(error.message).toBe(
      `PostgreSQL failed while reading stats: ${message}; the next pass retries, nothing is lost`,
    );
  });

  it.each([
    ["23505", "a unique violation"],
    ["42601", "a syntax error"],
    ["3D000", "a database that does not exist"],
    ["28P01", "a wrong password"],
    ["22P02", "a bad input"],
    ["54000", "a program limit"],
    ["XX000", "an internal error"],
    ["ENOTFOUND", "a host that does not exist"],
    ["40001x", "a code of another form"],
    // Not SQLSTATEs, though a class-08 SQLSTATE is part of them: no class is read from them.
    ["08001x", "a code longer than a SQLSTATE"],
    ["08_08001", "a code with a prefix"],
    ["08p01", "a code in lower case"],
  ])("%s (%s) is a non-retryable STORE_ERROR", (code) => {
    const error = toStoreError(Object.assign(new Error("it failed"), { code }), "adding a message");
    expect(error).toMatchObject({ retryable: false, code: "STORE_ERROR" });
    expect(error.message).toBe(`PostgreSQL failed while adding a message (${code}): it failed`);
  });

  it("a missing table (42P01) is not retryable and says to run migrate()", () => {
    const error = toStoreError(
      Object.assign(new Error('relation "x" does not exist'), { code: "42P01" }),
      "reading stats",
    );
    expect(error).toMatchObject({ retryable: false, code: "STORE_ERROR" });
    expect(error.message).toBe(
      'PostgreSQL failed while reading stats (42P01): relation "x" does not exist (did you run `await store.migrate()`?)',
    );
  });

  it("anything that is not an error object is a non-retryable STORE_ERROR with its text", () => {
    for (const thrown of ["boom", 42, null, undefined, { message: 7, code: 40001 }]) {
      const error = toStoreError(thrown, "reading stats");
      expect(error, String(thrown)).toMatchObject({ retryable: false, code: "STORE_ERROR", cause: thrown });
      expect(error.message).toBe(`PostgreSQL failed while reading stats: ${String(thrown)}`);
      expect(isRetryable(thrown)).toBe(false);
      expect(isConnectionLost(thrown)).toBe(false);
    }
  });

  it("an OutboxError passes through as it is", () => {
    const own = new ValidationError("bad");
    expect(toStoreError(own, "reading stats")).toBe(own);
    const busy = new StoreError("busy", { retryable: true });
    expect(toStoreError(busy, "reading stats")).toBe(busy);
    expect(busy).toBeInstanceOf(OutboxError);
  });

  it("a FATAL or PANIC report or a dropped socket ends the connection; an ordinary error does not", () => {
    for (const severity of ["FATAL", "PANIC"]) {
      expect(isConnectionLost({ code: "57P01", message: "x", severity })).toBe(true);
    }
    expect(isConnectionLost({ code: "57014", message: "canceling statement", severity: "ERROR" })).toBe(
      false,
    );
    expect(isConnectionLost({ code: "40001", message: "could not serialize", severity: "ERROR" })).toBe(
      false,
    );
    for (const code of transientCodes) expect(isConnectionLost({ code, message: "x" }), code).toBe(true);
    for (const message of droppedMessages) expect(isConnectionLost(new Error(message)), message).toBe(true);
    expect(isConnectionLost(new Error("syntax error at or near"))).toBe(false);
    expect(isConnectionLost({ code: 1, message: 2, severity: 3 })).toBe(false);
    // The server's own refusal came over a working connection, even worded like a dropped one.
    expect(isConnectionLost({ code: "P0001", message: "connection closed", severity: "ERROR" })).toBe(false);
    expect(isConnectionLost({ code: "P0001", message: "connection closed", severity: "FATAL" })).toBe(true);
  });
});

describe("an unanswered COMMIT", () => {
  it("only PostgreSQL's own ERROR answer with a SQLSTATE is a refusal (the statement did not take effect)", () => {
    expect(isRefusal({ severity: "ERROR", code: "23505", message: "duplicate key" })).toBe(true);
    expect(isRefusal({ severity: "ERROR", code: "40001", message: "could not serialize" })).toBe(true);
    // Not an answer: a FATAL report, a socket's or driver's code, a timeout, nothing at all.
    expect(isRefusal({ severity: "FATAL", code: "57P01", message: "terminating connection" })).toBe(false);
    expect(isRefusal({ severity: "ERROR", message: "no code" })).toBe(false);
    expect(isRefusal({ code: "CONNECTION_CLOSED", message: "write CONNECTION_CLOSED" })).toBe(false);
    expect(isRefusal(new Error("Query read timeout"))).toBe(false);
    for (const value of [null, undefined, "ERROR", 40001]) expect(isRefusal(value)).toBe(false);
  });

  it("reads the SQLSTATE, not the severity's words: a server reporting in German, an old PgBouncer's ERROR 08P01", () => {
    // node-postgres passes the severity as the server translated it (lc_messages = de_DE).
    const raised = { severity: "FEHLER", code: "P0001", message: "connection closed by the audit trigger" };
    expect(isRefusal(raised)).toBe(true);
    expect(isConnectionLost(raised)).toBe(false);
    const deferred = { severity: "FEHLER", code: "23505", message: "doppelter Schlüsselwert" };
    expect(isRefusal(deferred)).toBe(true);
    // Sessions the server ends, whatever the severity reads: shut down, terminated, database
    // dropped, idle too long, idle in a transaction too long.
    for (const code of ["57P01", "57P02", "57P03", "57P04", "57P05", "25P03"]) {
      const ended = { severity: "SCHWERWIEGEND", code, message: "Verbindung wird abgebrochen" };
      expect(isRefusal(ended), code).toBe(false);
      expect(isConnectionLost(ended), code).toBe(true);
    }
    // A connection exception at severity ERROR (an older PgBouncer before it closes the
    // connection, dblink for its remote server) is no sure refusal: a COMMIT that got it may
    // have committed. Nor does it end the session by itself: the server sends 08P01 for a
    // statement given the wrong number of values and goes on.
    const pooler = { severity: "ERROR", code: "08P01", message: "server conn crashed?" };
    expect(isRefusal(pooler)).toBe(false);
    expect(isConnectionLost(pooler)).toBe(false);
    expect(isRefusal({ severity: "FEHLER", code: "08001", message: "dblink" })).toBe(false);
    expect(isConnectionLost({ severity: "FATAL", code: "08P01", message: "x" })).toBe(true);
    // A code without a severity is a driver's or a socket's, never the server's answer.
    expect(isRefusal({ code: "EPIPE", message: "write EPIPE" })).toBe(false);
    expect(isRefusal({ severity: "ERROR", code: "2350", message: "not a SQLSTATE" })).toBe(false);
    expect(isRefusal({ severity: "PANIC", code: "XX000", message: "x" })).toBe(false);
    expect(isRefusal({ severity: "ERROR", code: 23505, message: "a number is no SQLSTATE" })).toBe(false);
    // A FATAL or PANIC report ends the session whatever its SQLSTATE (too many connections, a
    // conflict with recovery, an internal error).
    for (const [severity, code] of [
      ["FATAL", "53300"],
      ["FATAL", "40001"],
      ["PANIC", "XX000"],
    ]) {
      expect(isConnectionLost({ severity, code, message: "x" }), `${severity} ${code}`).toBe(true);
    }
  });

  it("is a non-retryable StoreError naming what happened to the connection, and is recognised as such", () => {
    const lost = new Error("Connection terminated unexpectedly");
    const unknown = commitOutcomeUnknown(lost);
    expect(unknown).toBeInstanceOf(StoreError);
    expect(unknown).toMatchObject({ retryable: false, code: "STORE_ERROR", cause: lost });
    expect(unknown.message).toBe(
      "the transaction's COMMIT got no answer (Connection terminated unexpectedly): PostgreSQL may or may not have committed it; check whether its writes are there before running it again",
    );
    expect(commitOutcomeUnknown("socket hang up").message).toMatch(
      /^the transaction's COMMIT got no answer \(socket hang up\)/,
    );
    expect(commitOutcomeUnknown(null).message).toMatch(/^the transaction's COMMIT got no answer \(null\)/);
    expect(isCommitOutcomeUnknown(unknown)).toBe(true);
    expect(isCommitOutcomeUnknown(new StoreError(unknown.message, { retryable: false }))).toBe(false);
    for (const value of [null, undefined, unknown.message]) expect(isCommitOutcomeUnknown(value)).toBe(false);
  });
});
