/**
 * Turning PostgreSQL and driver failures into `StoreError`s, with `retryable` for the
 * conditions a later attempt gets past.
 *
 * @module
 */
import { OutboxError, StoreError } from "../../mod.ts";

/**
 * SQLSTATEs a later attempt gets past: serialization failure, deadlock, lock not available
 * (`lock_timeout`), query canceled (`statement_timeout`), the server shutting down or
 * terminating the backend (`pg_terminate_backend`), too many connections, out of resources.
 */
const RETRYABLE_STATES = new Set(["40001", "40P01", "55P03", "57014", "57P01", "57P02", "57P03", "53300"]);
// Class 08 (connection exception) and 53 (insufficient resources) are transient as a whole.
const RETRYABLE_CLASSES = new Set(["08", "53"]);
// Socket-level and driver-level codes of a connection that dropped or never came up.
const TRANSIENT_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "EPIPE",
  "ETIMEDOUT",
  "EAI_AGAIN",
  "CONNECTION_CLOSED",
  "CONNECTION_ENDED",
  "CONNECTION_DESTROYED",
  "CONNECT_TIMEOUT",
]);
/**
 * SQLSTATEs the server sends only as it ends the session: shut down or terminated (57P01-57P03),
 * its database dropped (57P04), idle too long (57P05; 25P03 inside a transaction). They tell a
 * lost connection in any language: node-postgres passes the severity as the server translated
 * it (`FEHLER`, `ERREUR`); the SQLSTATE is never translated.
 */
const SESSION_ENDED = new Set(["57P01", "57P02", "57P03", "57P04", "57P05", "25P03"]);
const SQLSTATE = /^[0-9A-Z]{5}$/;
// node-postgres reports a dropped connection with a message and no code.
const DROPPED =
  /connection terminated|terminating connection|connection (was )?(closed|ended)|not queryable|timeout exceeded when trying to connect|socket hang up/i;

interface PgErrorLike {
  code?: unknown;
  message?: unknown;
  errno?: unknown;
  severity?: unknown;
}

/**
 * Whether `error` ended the connection it came from: a FATAL (or PANIC) report or a SQLSTATE
 * sent only as the session ends (57P01-57P05, 25P03), after which the server closes it
 * (`pg_terminate_backend`, say), or a socket that dropped; never
 * a refusal ({@link isRefusal}), which came over a working connection. A pool replaces such a
 * connection; a single client is gone for good.
 */
export function isConnectionLost(error: unknown): boolean {
  if (typeof error !== "object" || error === null) return false;
  // Whatever its text says: a user's trigger may RAISE 'connection closed'.
  if (isRefusal(error)) return false;
  const { code, message, severity } = error as PgErrorLike;
  if (severity === "FATAL" || severity === "PANIC") return true;
  // Not class 08 as such: the server also sends it on a session that goes on (08P01 for a
  // statement given the wrong number of values, 08001 from dblink); a Client hears of a closed
  // connection by its 'end' event anyway.
  if (typeof code === "string" && (TRANSIENT_CODES.has(code) || SESSION_ENDED.has(code))) return true;
  return typeof message === "string" && DROPPED.test(message);
}

/** Whether `error` is a condition (see above) that a later attempt is expected to get past. */
export function isRetryable(error: unknown): boolean {
  if (typeof error !== "object" || error === null) return false;
  const { code, message } = error as PgErrorLike;
  if (typeof code === "string") {
    if (RETRYABLE_STATES.has(code) || TRANSIENT_CODES.has(code)) return true;
    if (SQLSTATE.test(code)) return RETRYABLE_CLASSES.has(code.slice(0, 2));
  }
  return typeof message === "string" && DROPPED.test(message);
}

/**
 * `error` as an {@link OutboxError}: retryable conditions become a retryable `StoreError`
 * (code `STORE_BUSY`), anything else a non-retryable `STORE_ERROR`. The driver's error stays as
 * `cause`; the message names what the store was doing and the SQLSTATE, never the connection
 * string.
 */
export function toStoreError(error: unknown, doing: string): OutboxError {
  if (error instanceof OutboxError) return error;
  const e = (typeof error === "object" && error !== null ? error : {}) as PgErrorLike;
  const detail = describe(error);
  const code = typeof e.code === "string" ? e.code : "";
  const hint = code === "42P01" ? " (did you run `await store.migrate()`?)" : "";
  if (isRetryable(error)) {
    return new StoreError(
      `PostgreSQL failed while ${doing}${code ? ` (${code})` : ""}: ${detail}; the next pass retries, nothing is lost`,
      { retryable: true, code: "STORE_BUSY", cause: error },
    );
  }
  return new StoreError(`PostgreSQL failed while ${doing}${code ? ` (${code})` : ""}: ${detail}${hint}`, {
    retryable: false,
    code: "STORE_ERROR",
    cause: error,
  });
}

/**
 * Whether `error` is surely PostgreSQL's own answer refusing a statement (a report with a
 * severity and its SQLSTATE, on a session that goes on): the statement did not take effect.
 * Not a lost connection, a client-side timeout, a FATAL report, a session-ending SQLSTATE, or a
 * connection exception (class 08: an older PgBouncer sends it at severity ERROR before it
 * closes the connection, as dblink does for a remote server), after any of which a COMMIT's
 * outcome is called unknown, erring on the safe side. Decided by the SQLSTATE, so that a server
 * reporting in another language (`FEHLER`) is understood the same.
 */
export function isRefusal(error: unknown): boolean {
  if (typeof error !== "object" || error === null) return false;
  const { code, severity } = error as PgErrorLike;
  if (typeof severity !== "string" || severity === "FATAL" || severity === "PANIC") return false;
  return (
    typeof code === "string" && SQLSTATE.test(code) && !code.startsWith("08") && !SESSION_ENDED.has(code)
  );
}

const unknownOutcomes = new WeakSet<object>();

/**
 * The error of a COMMIT sent on a working connection that got no answer (`error`: the
 * connection was lost, or a client-side timeout): PostgreSQL may have committed the transaction
 * or not, so running it again could write everything twice. Not retryable.
 */
export function commitOutcomeUnknown(error: unknown): StoreError {
  const unknown = new StoreError(
    `the transaction's COMMIT got no answer (${describe(error)}): PostgreSQL may or may not have committed it; check whether its writes are there before running it again`,
    { retryable: false, code: "STORE_ERROR", cause: error },
  );
  unknownOutcomes.add(unknown);
  return unknown;
}

/** Whether `error` is a {@link commitOutcomeUnknown} error. */
export function isCommitOutcomeUnknown(error: unknown): boolean {
  return typeof error === "object" && error !== null && unknownOutcomes.has(error);
}

/** A driver error's message, or the thrown value as text. */
function describe(error: unknown): string {
  const message = typeof error === "object" && error !== null ? (error as PgErrorLike).message : undefined;
  return typeof message === "string" ? message : String(error);
}
