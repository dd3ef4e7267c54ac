/**
 * The structural D1 types accept a binding typed the way `@cloudflare/workers-types` types it
 * (its shapes restated here: the package is not a dependency), so `new D1Store(env.DB)`
 * compiles in a user's Worker. A compile-time check, run by `tsc -p tsconfig.test.json`; the
 * test itself only makes vitest load the file.
 */
import { expect, it } from "vitest";
import type { D1Database as OurD1Database } from "../../adapters/d1.ts";

// The shapes of @cloudflare/workers-types 4.x, as a Worker's `env.DB` has them.
interface WorkersD1Meta {
  duration: number;
  size_after: number;
  rows_read: number;
  rows_written: number;
  last_row_id: number;
  changed_db: boolean;
  changes: number;
}
interface WorkersD1Response {
  success: true;
  meta: WorkersD1Meta & Record<string, unknown>;
  error?: never;
}
type WorkersD1Result<T = unknown> = WorkersD1Response & { results: T[] };
interface WorkersD1ExecResult {
  count: number;
  duration: number;
}
declare abstract class WorkersD1PreparedStatement {
  bind(...values: unknown[]): WorkersD1PreparedStatement;
  first<T = unknown>(colName: string): Promise<T | null>;
  run<T = Record<string, unknown>>(): Promise<WorkersD1Result<T>>;
  all<T = Record<string, unknown>>(): Promise<WorkersD1Result<T>>;
  raw<T = unknown[]>(options?: { columnNames?: false }): Promise<T[]>;
}
declare abstract class WorkersD1Database {
  prepare(query: string): WorkersD1PreparedStatement;
  batch<T = unknown>(statements: WorkersD1PreparedStatement[]): Promise<WorkersD1Result<T>[]>;
  exec(query: string): Promise<WorkersD1ExecResult>;
  withSession(constraintOrBookmark?: string): unknown;
  dump(): Promise<ArrayBuffer>;
}

/** Compiles only if a binding typed by workers-types is one of ours. */
function accepts(db: WorkersD1Database): OurD1Database {
  return db;
}

it("accepts a D1 binding typed by @cloudflare/workers-types (checked by tsc)", () => {
  expect(typeof accepts).toBe("function");
});
