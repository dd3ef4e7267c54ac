/**
 * How the libSQL store runs its statements so that contention never corrupts a connection.
 *
 * The local driver (libsql-js, as of 0.5) leaves a statement that failed with `SQLITE_BUSY` in
 * progress until the garbage collector finalizes it. Until then every COMMIT on that pooled
 * connection fails, and autocommit writes on it are silently left uncommitted while holding the
 * write lock (tursodatabase/libsql-client-ts#352). So on local clients the store takes the
 * write lock first with a write through `executeMultiple` (a no-op, or a relay pass's first
 * statement), whose failures are finalized at once, and only then runs its statements, in a
 * short transaction that cannot meet a busy lock any more. Remote clients (Turso/sqld) run
 * each statement as one autocommit request, and a group of them as one `batch`.
 *
 * @module
 */
import type { Client, InStatement, ResultSet, Transaction } from "@libsql/client";
import { SCHEMA_TABLE } from "../sqlite/schema.ts";
import { retryBusy } from "./errors.ts";

// A write that changes nothing but takes the write lock (tested: it fails busy while another
// connection holds the lock). The schema table exists once `migrate()` has run.
export const TAKE_WRITE_LOCK = `DELETE FROM ${SCHEMA_TABLE} WHERE 0`;

/**
 * One statement of {@link Runner.writeSteps}. Its `script`, when set, is the statement with its
 * arguments written in (see inline.ts): locally it runs through `executeMultiple`, a fraction
 * of the driver's cost, for steps whose result is not needed.
 */
export interface WriteStep {
  statement: InStatement;
  /** Or made from the results of the steps before it; undefined runs `statement` instead. */
  script?: string | ((results: readonly (ResultSet | undefined)[]) => string | undefined) | undefined;
}

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

  /** Whether the client is local (`file:`, `:memory:`): its statements cost no round trip. */
  get local(): boolean {
    return this.#local;
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
   * Steps that write, in order, atomically: locally in one lock-first transaction (a first
   * step with a script takes the lock itself), remotely as one `batch` in write mode. Retried
   * as a whole while busy (nothing was applied then). Results in step order; a step run
   * locally as its script has none.
   */
  writeSteps(doing: string, steps: readonly WriteStep[]): Promise<(ResultSet | undefined)[]> {
    return this.#prepared(doing, () => {
      if (!this.#local)
        return this.#client.batch(
          steps.map((step) => step.statement),
          "write",
        );
      const [first, ...rest] = steps;
      const lock = typeof first?.script === "string" ? first.script : undefined;
      return this.#inLock(async (tx) => {
        const results: (ResultSet | undefined)[] = lock === undefined ? [] : [undefined];
        for (const step of lock === undefined ? steps : rest) {
          const script = typeof step.script === "function" ? step.script(results) : step.script;
          if (script === undefined) results.push(await tx.execute(step.statement));
          else {
            await tx.executeMultiple(script);
            results.push(undefined);
          }
        }
        return results;
      }, lock);
    });
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

  /** Runs `fn` in a short lock-first transaction (`lock` takes it) and commits it. */
  async #inLock<R>(fn: (tx: Transaction) => Promise<R>, lock = TAKE_WRITE_LOCK): Promise<R> {
    const tx = await this.#lockedTransaction(lock);
    try {
      const result = await fn(tx);
      // Through `executeMultiple` for the same reason as the steps' scripts (see inline.ts);
      // `close()` then finds the transaction ended and only gives the connection back.
      await tx.executeMultiple("COMMIT");
      return result;
    } finally {
      tx.close();
    }
  }

  async #lockedTransaction(lock = TAKE_WRITE_LOCK): Promise<Transaction> {
    // A deferred BEGIN takes no lock, so it cannot fail busy; the first write, through
    // `executeMultiple`, then takes it.
    const tx = await this.#client.transaction("deferred");
    try {
      await tx.executeMultiple(lock);
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
