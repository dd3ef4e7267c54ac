/**
 * Named prepared statements on node-postgres (and Neon's pg-compatible clients): which name a
 * statement gets, how many are prepared at most, and recovery when the server dropped a
 * statement the client believes it prepared (`DISCARD ALL`, `DEALLOCATE ALL`: a pooler's
 * session reset, say).
 *
 * @module
 */
import { StoreError } from "../../mod.ts";
import type { PgQueryable } from "./driver.ts";
import type { Row } from "./rows.ts";

/**
 * How many distinct statement texts this process prepares at most; the others run unnamed
 * (parsed and planned each time). Each prepared statement costs memory in every server
 * connection that ran it (the claim's plan is tens of KB), and node-postgres never deallocates
 * one: with a schema or table per tenant, unbounded naming would grow every backend with the
 * number of tenants. 64 covers the statements of several outbox tables (about 12 MB per connection at most).
 */
export const MAX_PREPARED_STATEMENTS = 64;

/** Prefix of every name the store prepares. */
const PREFIX = "edge_outbox_";

// Per process: each distinct text gets the next number, so one text always has one name and two
// texts never share one. A name only has to be unique on a connection, and a connection is this
// process's own (behind a pooler in transaction mode, set `prepare: false`).
const names = new Map<string, string>();

/** The name `text` is prepared under, or undefined once the bound is reached (run it unnamed). */
export function preparedName(text: string): string | undefined {
  let name = names.get(text);
  if (name === undefined && names.size < MAX_PREPARED_STATEMENTS) {
    name = `${PREFIX}${names.size + 1}`;
    names.set(text, name);
  }
  return name;
}

/** What node-postgres keeps on a `Client`/`PoolClient`: the statements it believes it prepared. */
interface PgConnectionState {
  connection?: { parsedStatements?: Record<string, string> };
  getTransactionStatus?(): string | null;
}

// Connections whose record may name statements of ours the server no longer has.
const unsure = new WeakSet<object>();

/** Whether `error` is the server's "prepared statement ... does not exist" (26000). */
function isMissingStatement(error: unknown): boolean {
  return (error as { code?: unknown } | null)?.code === "26000";
}

/** Drops from the client's record every statement of ours the server no longer has. */
async function reconcile(target: PgQueryable, parsed: Record<string, string>): Promise<void> {
  const { rows } = await target.query({
    text: `SELECT name FROM pg_prepared_statements WHERE starts_with(name, '${PREFIX}')`,
    rowMode: "array",
  });
  const onServer = new Set((rows as Row[]).map((row) => String(row[0])));
  for (const name of Object.keys(parsed)) {
    if (name.startsWith(PREFIX) && !onServer.has(name)) delete parsed[name];
  }
}

/**
 * Runs one of the store's statements on a node-postgres (or Neon) `target` as a named prepared
 * statement: each connection parses and plans it once, then only binds and executes it (the
 * claim's plan costs as much as running it).
 *
 * When the server forgot the statement (26000): the client's record is corrected, and the
 * statement runs again when that is safe: on a `Pool` (which discarded the connection) or on a
 * client outside any transaction. Inside a transaction, which the failure aborted, it is a
 * retryable `StoreError`: the caller runs the transaction again, and the next one works.
 */
export async function runPrepared(
  target: PgQueryable,
  text: string,
  args: readonly unknown[],
): Promise<Row[]> {
  const name = preparedName(text);
  const config = { text, values: [...args], rowMode: "array" as const };
  if (name === undefined) return (await target.query(config)).rows as Row[];
  const client = target as PgQueryable & PgConnectionState;
  const parsed = client.connection?.parsedStatements;
  if (parsed !== undefined && unsure.has(parsed) && client.getTransactionStatus?.() !== "E") {
    await reconcile(target, parsed);
    unsure.delete(parsed);
  }
  const run = async () => (await target.query({ ...config, name })).rows as Row[];
  try {
    return await run();
  } catch (error) {
    if (!isMissingStatement(error)) throw error;
    const isPool = typeof (target as { totalCount?: unknown }).totalCount === "number";
    if (parsed === undefined) {
      if (isPool) return await run();
      throw error;
    }
    delete parsed[name];
    unsure.add(parsed);
    if (client.getTransactionStatus?.() === "I") {
      await reconcile(target, parsed);
      unsure.delete(parsed);
      return await run();
    }
    throw new StoreError(
      `the server no longer has the store's prepared statement ${name} (DISCARD ALL or DEALLOCATE ran on this connection, a pooler's session reset?), which aborted your transaction: run the transaction again (the statement is prepared anew); behind a pooler that resets sessions, set the store's prepare: false`,
      { retryable: true, code: "STORE_BUSY", cause: error },
    );
  }
}
