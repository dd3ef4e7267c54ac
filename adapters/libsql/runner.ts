/**
 * How the libSQL store runs its statements so that contention never corrupts a connection.
 *
 * The local driver (libsql-js, as of 0.5) leaves a statement that failed with `SQLITE_BUSY` in
 * progress until the garbage collector finalizes it. Until then every COMMIT on that pooled
 * connection fails, and autocommit writes on it are silently left uncommitted while holding the
 * write lock (tursodatabase/libsql-client-ts#352). So on local clients the store takes the
 * write lock first with a no-op write through `executeMultiple`, whose failures are finalized
 * at once, and only then runs its statement, in a short transaction that cannot meet a busy
 * lock any more. Remote clients (Turso/sqld) run each statement as one autocommit request.
 *
 * @module
 */
import type { Client, InStatement, ResultSet, Transaction } from "@libsql/client";
import { retryBusy } from "./errors.ts";
import { SCHEMA_TABLE } from "./sql.ts";

// A write that changes nothing but takes the write lock (tested: it fails busy while another
// connection holds the lock). The schema table exists once `migrate()` has run.
const TAKE_WRITE_LOCK = `DELETE FROM ${SCHEMA_TABLE} WHERE 0`;

/** Runs statements for one store; see the module comment. */
export class Runner {
  readonly #client: Client;
  readonly #busyTimeout: number;
  readonly #local: boolean;
  readonly #wal: boolean;
  #ready: Promise<void> | undefined;

  constructor(client: Client, busyTimeout: number, wal: boolean) {
    this.#client = client;
    this.#busyTimeout = busyTimeout;
    this.#local = client.protocol === "file";
    this.#wal = wal && this.#local;
  }

  /** A runner for another client (an application's own, passed to `addMessage`). */
  forClient(client: Client): Runner {
    return client === this.#client ? this : new Runner(client, this.#busyTimeout, false);
  }

  /** A statement that writes: retried while busy (it did nothing then), never half-applied. */
  write(doing: string, statement: InStatement): Promise<ResultSet> {
    return this.#prepared(doing, () =>
      this.#local ? this.#inLock((tx) => tx.execute(statement)) : this.#client.execute(statement),
    );
  }

  /**
   * Statements that write, in order, atomically: locally in one lock-first transaction, remotely
   * as one `batch` in write mode. Retried as a whole while busy (nothing was applied then).
   */
  writeAll(doing: string, statements: InStatement[]): Promise<ResultSet[]> {
    return this.#prepared(doing, () =>
      this.#local ? this.#inLock((tx) => tx.batch(statements)) : this.#client.batch(statements, "write"),
    );
  }

  /** A statement that only reads (WAL readers do not wait for the writer). */
  read(doing: string, statement: InStatement): Promise<ResultSet> {
    return this.#prepared(doing, () => this.#client.execute(statement));
  }

  /** One statement whose result does not matter (DDL); locally through `executeMultiple`. */
  async script(doing: string, sql: string): Promise<void> {
    await this.#prepared<unknown>(doing, () =>
      this.#local ? this.#client.executeMultiple(sql) : this.#client.execute(sql),
    );
  }

  /**
   * A write transaction holding the write lock, for the caller to commit or roll back and
   * close. Waits (asynchronously) up to `busyTimeout` for the lock.
   */
  begin(doing: string): Promise<Transaction> {
    return this.#prepared(doing, () =>
      this.#local ? this.#lockedTransaction() : this.#client.transaction("write"),
    );
  }

  /** Runs `fn` in a short lock-first transaction and commits it. */
  async #inLock<R>(fn: (tx: Transaction) => Promise<R>): Promise<R> {
    const tx = await this.#lockedTransaction();
    try {
      const result = await fn(tx);
      await tx.commit();
      return result;
    } finally {
      tx.close();
    }
  }

  async #lockedTransaction(): Promise<Transaction> {
    // A deferred BEGIN takes no lock, so it cannot fail busy; the no-op write then takes it.
    const tx = await this.#client.transaction("deferred");
    try {
      await tx.executeMultiple(TAKE_WRITE_LOCK);
      return tx;
    } catch (error) {
      tx.close();
      throw error;
    }
  }

  #prepared<R>(doing: string, attempt: () => Promise<R>): Promise<R> {
    return this.#prepare().then(() => retryBusy(this.#busyTimeout, doing, attempt));
  }

  /**
   * Once, on local files: WAL, so readers never wait for the writer (the mode is kept in the
   * file). Through `executeMultiple`, so a busy failure leaves the connection clean. Pragmas
   * mean nothing to remote servers.
   */
  #prepare(): Promise<void> {
    if (!this.#wal) return Promise.resolve();
    this.#ready ??= retryBusy(this.#busyTimeout, "enabling WAL", () =>
      this.#client.executeMultiple("PRAGMA journal_mode = WAL"),
    ).catch((error: unknown) => {
      this.#ready = undefined;
      throw error;
    });
    return this.#ready;
  }
}
