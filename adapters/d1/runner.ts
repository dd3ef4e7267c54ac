/**
 * How the D1 store runs its statements: one statement, or several as one `batch` (one round
 * trip, one implicit transaction). Every failure comes out as a `StoreError`.
 *
 * @module
 */
import type { SqlStatement } from "../sqlite/pass.ts";
import type { Row } from "../sqlite/rows.ts";
import type { D1Database, D1PreparedStatement, D1Result } from "./binding.ts";
import { toStoreError } from "./errors.ts";

/** Runs statements on one D1 binding; see the module comment. */
export class D1Runner {
  readonly db: D1Database;

  constructor(db: D1Database) {
    this.db = db;
  }

  /** `statement` prepared and bound on this database, to run or to put in a batch. */
  prepare(statement: SqlStatement | string): D1PreparedStatement {
    if (typeof statement === "string") return this.db.prepare(statement);
    return this.db.prepare(statement.sql).bind(...statement.args);
  }

  /** The rows of one statement. */
  async rows(doing: string, statement: SqlStatement | string): Promise<Row[]> {
    try {
      return (await this.prepare(statement).all()).results as Row[];
    } catch (error) {
      throw toStoreError(error, doing);
    }
  }

  /** One writing statement; returns the rows it changed. */
  async change(doing: string, statement: SqlStatement | string): Promise<number> {
    try {
      return (await this.prepare(statement).run()).meta.changes ?? 0;
    } catch (error) {
      throw toStoreError(error, doing);
    }
  }

  /** Statements as one batch: all or nothing, results in order. */
  batch(doing: string, statements: readonly (SqlStatement | string)[]): Promise<D1Result[]> {
    return this.batchPrepared(
      doing,
      statements.map((s) => this.prepare(s)),
    );
  }

  /** Prepared statements as one batch (none: nothing runs; D1 refuses an empty batch). */
  async batchPrepared(doing: string, statements: D1PreparedStatement[]): Promise<D1Result[]> {
    if (statements.length === 0) return [];
    try {
      return await this.db.batch(statements);
    } catch (error) {
      throw toStoreError(error, doing);
    }
  }
}
