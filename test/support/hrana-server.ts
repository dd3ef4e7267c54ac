/**
 * A stand-in for sqld's "Hrana over HTTP" API, version 2 (tursodatabase/libsql,
 * libsql-server/docs/HTTP_V2_SPEC.md, with the Hrana 1 and 2 data structures), on 127.0.0.1.
 * sqld cannot run here; this lets the real `@libsql/client`, given an `http://` URL, drive
 * LibsqlStore's remote code paths (autocommit statements, `batch` in write mode, interactive
 * transactions) against a real SQLite database file through the `libsql` package.
 *
 * Implemented: `GET /v2`; `POST /v2/pipeline` with `execute`, `batch` (conditions ok, error,
 * not, and, or), `sequence`, `store_sql`, `close_sql` and `close`. Each stream is its own
 * connection, tied to the client by a fresh random baton per response. Errors carry SQLite's
 * code (`SQLITE_BUSY`, ...), as sqld's do; the server never waits for a lock.
 */
import { randomUUID } from "node:crypto";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import Database from "libsql";

type Value =
  | { type: "null" }
  | { type: "integer"; value: string }
  | { type: "float"; value: number }
  | { type: "text"; value: string }
  | { type: "blob"; base64: string };

interface Stmt {
  sql?: string | null;
  sql_id?: number | null;
  args?: Value[];
  named_args?: { name: string; value: Value }[];
  want_rows?: boolean;
}

type BatchCond =
  | { type: "ok" | "error"; step: number }
  | { type: "not"; cond: BatchCond }
  | { type: "and" | "or"; conds: BatchCond[] };

type StreamRequest =
  | { type: "close" }
  | { type: "execute"; stmt: Stmt }
  | { type: "batch"; batch: { steps: { condition?: BatchCond | null; stmt: Stmt }[] } }
  | { type: "sequence"; sql?: string | null; sql_id?: number | null }
  | { type: "store_sql"; sql_id: number; sql: string }
  | { type: "close_sql"; sql_id: number };

interface StmtResult {
  cols: { name: string | null; decltype: string | null }[];
  rows: Value[][];
  affected_row_count: number;
  last_insert_rowid: string | null;
}

class HranaError extends Error {
  constructor(
    message: string,
    readonly code: string | null,
  ) {
    super(message);
  }
}

interface Stream {
  db: Database.Database;
  sqls: Map<number, string>;
}

function toValue(value: unknown): Value {
  if (value === null || value === undefined) return { type: "null" };
  if (typeof value === "bigint") return { type: "integer", value: String(value) };
  if (typeof value === "number") return { type: "float", value };
  if (typeof value === "string") return { type: "text", value };
  if (value instanceof Uint8Array) return { type: "blob", base64: Buffer.from(value).toString("base64") };
  if (value instanceof ArrayBuffer) return { type: "blob", base64: Buffer.from(value).toString("base64") };
  throw new HranaError(`cannot encode a ${typeof value}`, null);
}

function fromValue(value: Value): unknown {
  switch (value.type) {
    case "null":
      return null;
    case "integer":
      return BigInt(value.value);
    case "float":
      return value.value;
    case "text":
      return value.value;
    case "blob":
      return Buffer.from(value.base64, "base64");
  }
}

function sqlOf(stream: Stream, stmt: { sql?: string | null; sql_id?: number | null }): string {
  if (typeof stmt.sql === "string") return stmt.sql;
  const stored = stmt.sql_id === null || stmt.sql_id === undefined ? undefined : stream.sqls.get(stmt.sql_id);
  if (stored === undefined) throw new HranaError(`no SQL text with id ${stmt.sql_id}`, null);
  return stored;
}

function toHranaError(error: unknown): HranaError {
  if (error instanceof HranaError) return error;
  const e = error as { message?: unknown; code?: unknown };
  return new HranaError(String(e.message ?? error), typeof e.code === "string" ? e.code : null);
}

function execute(stream: Stream, stmt: Stmt): StmtResult {
  const statement = stream.db.prepare(sqlOf(stream, stmt));
  statement.safeIntegers(true);
  const named = stmt.named_args ?? [];
  const args: unknown =
    named.length > 0
      ? Object.fromEntries(named.map((a) => [a.name.replace(/^[:@$]/, ""), fromValue(a.value)]))
      : (stmt.args ?? []).map(fromValue);
  let returnsRows = true;
  try {
    statement.raw(true);
  } catch {
    returnsRows = false; // raw() refuses statements without result columns
  }
  if (!returnsRows) {
    const info = statement.run(args);
    return {
      cols: [],
      rows: [],
      affected_row_count: info.changes,
      last_insert_rowid: String(info.lastInsertRowid),
    };
  }
  const cols = statement.columns().map((c: { name: string; type: string | null }) => ({
    name: c.name,
    decltype: c.type ?? null,
  }));
  const rows = (statement.all(args) as unknown[][]).map((row) => row.map(toValue));
  return { cols, rows: stmt.want_rows === false ? [] : rows, affected_row_count: 0, last_insert_rowid: null };
}

function holds(
  cond: BatchCond | null | undefined,
  results: (StmtResult | null)[],
  errors: unknown[],
): boolean {
  if (cond === null || cond === undefined) return true;
  switch (cond.type) {
    case "ok":
      return results[cond.step] !== null && results[cond.step] !== undefined;
    case "error":
      return errors[cond.step] !== null && errors[cond.step] !== undefined;
    case "not":
      return !holds(cond.cond, results, errors);
    case "and":
      return cond.conds.every((c) => holds(c, results, errors));
    case "or":
      return cond.conds.some((c) => holds(c, results, errors));
  }
}

/** A running stand-in: its base URL, the SQL texts it ran and the error codes it answered (in order), and `close`. */
export interface HranaServer {
  url: string;
  statements: string[];
  errors: (string | null)[];
  close(): Promise<void>;
}

/** Starts the stand-in on 127.0.0.1 in front of the database file at `path`. */
export async function startHranaServer(path: string): Promise<HranaServer> {
  const streams = new Map<string, Stream>();
  const statements: string[] = [];
  const errors: (string | null)[] = [];

  // sqld keeps its databases in WAL mode: readers never wait for the writer.
  const setup = new Database(path);
  setup.exec("PRAGMA journal_mode = WAL");
  setup.close();
  const openStream = (): Stream => ({ db: new Database(path, { timeout: 0 }), sqls: new Map() });
  // libsql-js leaves a statement that failed busy in progress (libsql-client-ts#352), which
  // would wedge the connection; sqld has no such problem, so the stand-in starts afresh.
  const asHranaError = (error: unknown): HranaError => {
    const e = toHranaError(error);
    errors.push(e.code);
    return e;
  };
  const recover = (stream: Stream, error: unknown) => {
    if (!String((error as { code?: unknown }).code ?? "").startsWith("SQLITE_BUSY")) return;
    stream.db.close();
    stream.db = new Database(path, { timeout: 0 });
  };

  const handle = (stream: Stream, request: StreamRequest): object => {
    switch (request.type) {
      case "execute":
        statements.push(sqlOf(stream, request.stmt));
        return { type: "execute", result: execute(stream, request.stmt) };
      case "batch": {
        const results: (StmtResult | null)[] = [];
        const errors: ({ message: string; code: string | null } | null)[] = [];
        for (const step of request.batch.steps) {
          if (!holds(step.condition, results, errors)) {
            results.push(null);
            errors.push(null);
            continue;
          }
          try {
            statements.push(sqlOf(stream, step.stmt));
            results.push(execute(stream, step.stmt));
            errors.push(null);
          } catch (error) {
            recover(stream, error);
            const e = asHranaError(error);
            results.push(null);
            errors.push({ message: e.message, code: e.code });
          }
        }
        return { type: "batch", result: { step_results: results, step_errors: errors } };
      }
      case "sequence":
        statements.push(sqlOf(stream, request));
        stream.db.exec(sqlOf(stream, request));
        return { type: "sequence" };
      case "store_sql":
        stream.sqls.set(request.sql_id, request.sql);
        return { type: "store_sql" };
      case "close_sql":
        stream.sqls.delete(request.sql_id);
        return { type: "close_sql" };
      case "close":
        return { type: "close" };
      default:
        throw new HranaError(
          `unsupported request ${JSON.stringify((request as { type?: unknown }).type)}`,
          null,
        );
    }
  };

  const pipeline = (body: { baton?: string | null; requests: StreamRequest[] }) => {
    let stream: Stream | undefined;
    if (body.baton === null || body.baton === undefined) stream = openStream();
    else {
      stream = streams.get(body.baton);
      streams.delete(body.baton);
      if (stream === undefined) throw new HranaError("unknown or expired baton", null);
    }
    const results = body.requests.map((request) => {
      try {
        return { type: "ok", response: handle(stream, request) };
      } catch (error) {
        recover(stream, error);
        const e = asHranaError(error);
        return { type: "error", error: { message: e.message, code: e.code } };
      }
    });
    const closed = body.requests.some((r) => r.type === "close");
    let baton: string | null = null;
    if (closed) stream.db.close();
    else {
      baton = randomUUID();
      streams.set(baton, stream);
    }
    return { baton, base_url: null, results };
  };

  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => {
      const send = (status: number, body?: object) => {
        res.writeHead(status, { "content-type": "application/json" });
        res.end(body === undefined ? undefined : JSON.stringify(body));
      };
      try {
        if (req.method === "GET" && req.url === "/v2") return send(200, {});
        if (req.method === "POST" && req.url === "/v2/pipeline") {
          return send(200, pipeline(JSON.parse(Buffer.concat(chunks).toString("utf8"))));
        }
        send(404, { message: "not found" });
      } catch (error) {
        send(400, { message: toHranaError(error).message });
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    statements,
    errors,
    close: async () => {
      for (const stream of streams.values()) stream.db.close();
      streams.clear();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
