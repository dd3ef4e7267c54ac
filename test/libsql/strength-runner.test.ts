/**
 * LibsqlStore's writes outside a relay pass: what `addMessage` takes and says, how
 * `withTransaction` ends (commit, rollback, a failed commit), which busy message an application
 * gets, and a first use that met a busy lock. Written against mutation survivors (TESTING.md).
 */
import { createClient } from "@libsql/client";
import { afterAll, describe, expect, it } from "vitest";
import { LibsqlStore } from "../../adapters/libsql.ts";
import { prepareMessage, StoreError, ValidationError } from "../../mod.ts";
import { dbPath, openStore, tempDir } from "./helpers.ts";

const tmp = tempDir();
afterAll(() => tmp.cleanup());

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const message = (key: string) => prepareMessage({ key, value: "v" }, { maxMessageBytes: 64 });
const failure = (promise: Promise<unknown>) =>
  promise.then(
    () => undefined,
    (e: unknown) => e,
  );
const pendingOf = async (store: LibsqlStore) => (await store.stats()).pending;

describe("LibsqlStore.addMessage's tx", () => {
  it("refuses what is neither a transaction, a client nor an array, writing nothing", async () => {
    const { store, close } = await openStore(":memory:");
    try {
      for (const tx of [null, undefined, {}, { execute: 1 }, "stmts"]) {
        const error = await failure(store.addMessage(tx as never, message("k")));
        expect(error).toBeInstanceOf(ValidationError);
        expect(error).toMatchObject({
          code: "INVALID_MESSAGE",
          message: "tx must be a libSQL Transaction, a Client, or an array of statements for client.batch()",
        });
      }
      expect(await pendingOf(store)).toBe(0);
    } finally {
      await close();
    }
  });

  it("turns a failed write in the caller's transaction into a StoreError naming it", async () => {
    const { client, close } = await openStore(":memory:");
    try {
      const unmigrated = new LibsqlStore(client, { table: "never_migrated" });
      const tx = await client.transaction("write");
      try {
        const error = await failure(unmigrated.addMessage(tx, message("k")));
        expect(error).toBeInstanceOf(StoreError);
        expect((error as StoreError).message).toMatch(
          /^libSQL failed while adding a message \(SQLITE_ERROR\): .*no such table.*did you run `await store\.migrate\(\)`\?/,
        );
        expect(error).toMatchObject({ retryable: false, code: "STORE_ERROR" });
      } finally {
        tx.close();
      }
    } finally {
      await close();
    }
  });

  it("writes through a transaction of the application's own (visible once it commits)", async () => {
    const { client, store, close } = await openStore(`file:${dbPath(tmp.dir)}`);
    try {
      const tx = await client.transaction("write");
      await store.addMessage(tx, message("mine"));
      await tx.commit();
      tx.close();
      const { messages } = await store.fetchAndLock({ batchSize: 5, leaseDuration: 1000, ordering: "none" });
      expect(messages.map((m) => m.key)).toEqual(["mine"]);
    } finally {
      await close();
    }
  });
});

describe("LibsqlStore.withTransaction", () => {
  it("rolls back and rethrows the callback's own error, and leaves the store usable", async () => {
    const { store, close } = await openStore(`file:${dbPath(tmp.dir)}`);
    try {
      const mine = new Error("the application's");
      const thrown = await failure(
        store.withTransaction(async (tx) => {
          await store.addMessage(tx, message("a"));
          throw mine;
        }),
      );
      expect(thrown).toBe(mine);
      expect(await pendingOf(store)).toBe(0);
      // Closed either way: the next transaction takes the lock and commits.
      expect(
        await store.withTransaction(async (tx) => {
          await store.addMessage(tx, message("b"));
          return "done";
        }),
      ).toBe("done");
      expect(await pendingOf(store)).toBe(1);
    } finally {
      await close();
    }
  });

  it("reports a failed commit as a StoreError naming the commit", async () => {
    const { store, close } = await openStore(`file:${dbPath(tmp.dir)}`);
    try {
      const error = await failure(
        store.withTransaction(async (tx) => {
          await store.addMessage(tx, message("a"));
          // Ended under the store's feet: its own COMMIT then has no transaction to commit.
          await tx.executeMultiple("COMMIT");
        }),
      );
      expect(error).toBeInstanceOf(StoreError);
      expect((error as StoreError).message).toMatch(/^libSQL failed while committing a transaction/);
      // The store is still usable.
      await store.withTransaction(async (tx) => store.addMessage(tx, message("b")));
      expect(await pendingOf(store)).toBe(2);
    } finally {
      await close();
    }
  });
});

describe("LibsqlStore.addMessage(client) failing busy", () => {
  it("says a store.withTransaction stayed open when one of another request held the lock all along", async () => {
    const { client, store, close } = await openStore(`file:${dbPath(tmp.dir)}`, { busyTimeout: 100 });
    try {
      let opened!: () => void;
      const inside = new Promise<void>((resolve) => {
        opened = resolve;
      });
      const request1 = store.withTransaction(async (tx) => {
        opened();
        await sleep(600);
        await store.addMessage(tx, message("one"));
      });
      await inside;
      // Another request: not inside the callback, so it waits for the lock, here too briefly.
      const error = await failure(store.addMessage(client, message("two")));
      await request1;
      expect(error).toBeInstanceOf(StoreError);
      expect(error).toMatchObject({ code: "STORE_BUSY", retryable: true });
      const text = (error as StoreError).message;
      const detail = ((error as StoreError).cause as Error).message;
      expect(text).toMatch(/^libSQL database busy or locked while adding a message \(SQLITE_BUSY/);
      expect(text).toContain(`: ${detail}; the message was NOT written`);
      expect(text).toContain(
        "; the message was NOT written, retry the call. A store.withTransaction on this same client stayed open the whole time: if this call runs inside it, pass its transaction (tx) instead of the client.",
      );
      expect(text).not.toContain("next pass retries");
      // The libSQL error stays as the cause, for logs.
      expect((error as StoreError).cause).toMatchObject({ code: "SQLITE_BUSY" });
      expect(await pendingOf(store)).toBe(1);
    } finally {
      await close();
    }
  });

  it("does not blame a store.withTransaction that has ended (after one that failed, too)", async () => {
    const { client, store, close } = await openStore(`file:${dbPath(tmp.dir)}`, { busyTimeout: 100 });
    try {
      await store.withTransaction(async (tx) => store.addMessage(tx, message("a")));
      await failure(
        store.withTransaction(async () => {
          throw new Error("x");
        }),
      );
      const holder = await client.transaction("write");
      await holder.execute("CREATE TABLE IF NOT EXISTS orders (id INTEGER PRIMARY KEY)");
      const error = await failure(store.addMessage(client, message("b")));
      await holder.rollback();
      holder.close();
      expect(error).toBeInstanceOf(StoreError);
      const text = (error as StoreError).message;
      expect(text).toContain(
        "; the message was NOT written, retry the call. If a transaction of yours is open on this client around this call, pass that transaction instead of the client.",
      );
      expect(text).not.toContain("stayed open");
    } finally {
      await close();
    }
  });

  it("passes other failures through unchanged", async () => {
    const { client, close } = await openStore(":memory:");
    try {
      const unmigrated = new LibsqlStore(client, { table: "never_migrated" });
      const error = await failure(unmigrated.addMessage(client, message("k")));
      expect(error).toBeInstanceOf(StoreError);
      expect((error as StoreError).message).toMatch(/^libSQL failed while adding a message \(SQLITE_ERROR\)/);
      expect((error as StoreError).message).not.toContain("NOT written");
    } finally {
      await close();
    }
  });
});

describe("LibsqlStore's first use meeting a busy lock", () => {
  it("fails busy while WAL cannot be enabled, then enables it on the next call", async () => {
    const path = dbPath(tmp.dir);
    const other = createClient({ url: `file:${path}` });
    try {
      const holder = await other.transaction("write");
      await holder.execute("CREATE TABLE held (x)");
      const client = createClient({ url: `file:${path}` });
      try {
        const store = new LibsqlStore(client, { busyTimeout: 50 });
        const error = await failure(store.migrate());
        expect(error).toBeInstanceOf(StoreError);
        expect(error).toMatchObject({ code: "STORE_BUSY", retryable: true });
        expect((error as StoreError).message).toMatch(/^libSQL database busy or locked while enabling WAL/);
        await holder.rollback();
        holder.close();
        await store.migrate();
        expect((await client.execute("PRAGMA journal_mode")).rows[0]?.journal_mode).toBe("wal");
        await store.addMessage(client, message("k"));
        expect(await pendingOf(store)).toBe(1);
      } finally {
        client.close();
      }
    } finally {
      other.close();
    }
  });
});

describe("LibsqlStore's busyTimeout option", () => {
  it("is refused when it is not a whole number of milliseconds, naming it", () => {
    const client = { execute() {}, transaction() {} } as never;
    for (const busyTimeout of [-1, 1.5, "100", Number.NaN]) {
      expect(() => new LibsqlStore(client, { busyTimeout: busyTimeout as number })).toThrow(
        new ValidationError(
          `busyTimeout must be an integer number of milliseconds >= 0, got ${String(busyTimeout)}`,
        ),
      );
    }
    expect(new LibsqlStore(client, { busyTimeout: 0 }).table).toBe("outbox_messages");
  });
});

describe("LibsqlStore's more writes", () => {
  it("refuses a client that is not a libSQL Client, saying what it takes", () => {
    expect(() => new LibsqlStore({} as never)).toThrow(
      new ValidationError("client must be a libSQL Client (createClient from @libsql/client)"),
    );
  });

  it("pushes the INSERT onto an array of statements, committed with the caller's writes by one batch", async () => {
    const { client, store, close } = await openStore(`file:${dbPath(tmp.dir)}`);
    try {
      await client.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY)");
      const stmts: { sql: string; args: unknown[] }[] = [
        { sql: "INSERT INTO orders (id) VALUES (?)", args: [1] },
      ];
      await store.addMessage(stmts as never, message("order:1"));
      expect(stmts).toHaveLength(2);
      expect(await pendingOf(store)).toBe(0);
      await client.batch(stmts as never, "write");
      expect(await pendingOf(store)).toBe(1);
    } finally {
      await close();
    }
  });

  it("fails a write in the caller's deferred transaction at once when it meets a busy lock (no retry inside a transaction)", async () => {
    const path = dbPath(tmp.dir);
    const { client, store, close } = await openStore(`file:${path}`, { busyTimeout: 3_000 });
    const other = createClient({ url: `file:${path}` });
    try {
      const holder = await other.transaction("write");
      await holder.execute("CREATE TABLE IF NOT EXISTS held (x)");
      const tx = await client.transaction("deferred");
      const started = Date.now();
      const error = await failure(store.addMessage(tx, message("k")));
      const waited = Date.now() - started;
      tx.close();
      await holder.rollback();
      holder.close();
      expect(error).toBeInstanceOf(StoreError);
      expect(error).toMatchObject({ code: "STORE_BUSY" });
      expect((error as StoreError).message).toMatch(/^libSQL database busy or locked while adding a message/);
      expect(waited).toBeLessThan(2_000);
    } finally {
      other.close();
      await close();
    }
  });

  it("names the begin of a transaction that could not take the lock", async () => {
    const path = dbPath(tmp.dir);
    const { store, close } = await openStore(`file:${path}`, { busyTimeout: 50 });
    const other = createClient({ url: `file:${path}` });
    try {
      const holder = await other.transaction("write");
      await holder.execute("CREATE TABLE IF NOT EXISTS held (x)");
      const error = await failure(store.withTransaction(async () => "never"));
      await holder.rollback();
      holder.close();
      expect((error as StoreError).message).toMatch(
        /^libSQL database busy or locked while beginning a transaction/,
      );
    } finally {
      other.close();
      await close();
    }
  });

  it("keeps a :memory: store usable after its transactions commit and roll back", async () => {
    const { store, close } = await openStore(":memory:", { busyTimeout: 500 });
    try {
      await store.withTransaction(async (tx) => store.addMessage(tx, message("a")));
      await failure(
        store.withTransaction(async () => {
          throw new Error("x");
        }),
      );
      expect(await pendingOf(store)).toBe(1);
      await store.withTransaction(async (tx) => store.addMessage(tx, message("b")));
      expect(await pendingOf(store)).toBe(2);
    } finally {
      await close();
    }
  });
});

describe("LibsqlStore's journal mode on the clients it writes through", () => {
  const journal = async (url: string) => {
    const c = createClient({ url });
    try {
      return String((await c.execute("PRAGMA journal_mode")).rows[0]?.journal_mode);
    } finally {
      c.close();
    }
  };

  it("enables WAL when a store's first call is addMessage through its own client", async () => {
    const path = dbPath(tmp.dir);
    const first = await openStore(`file:${path}`, { wal: false });
    await first.close();
    expect(await journal(`file:${path}`)).toBe("delete");
    const client = createClient({ url: `file:${path}` });
    try {
      await new LibsqlStore(client).addMessage(client, message("k"));
    } finally {
      client.close();
    }
    expect(await journal(`file:${path}`)).toBe("wal");
  });

  it("never switches the journal mode through an application's other client", async () => {
    const path = dbPath(tmp.dir);
    const { store, close } = await openStore(`file:${path}`, { wal: false });
    const other = createClient({ url: `file:${path}` });
    try {
      await store.addMessage(other, message("k"));
    } finally {
      other.close();
      await close();
    }
    expect(await journal(`file:${path}`)).toBe("delete");
  });
});

describe("LibsqlStore.migrate() on a table already up to date", () => {
  it("neither takes nor waits for the write lock (a start-up beside a busy writer)", async () => {
    const path = dbPath(tmp.dir);
    const { store, close } = await openStore(`file:${path}`, { busyTimeout: 100 });
    const other = createClient({ url: `file:${path}` });
    try {
      const holder = await other.transaction("write");
      await holder.execute("CREATE TABLE IF NOT EXISTS held (x)");
      try {
        await store.migrate();
        const another = createClient({ url: `file:${path}` });
        await new LibsqlStore(another, { busyTimeout: 100 }).migrate().finally(() => another.close());
      } finally {
        await holder.rollback();
        holder.close();
      }
    } finally {
      other.close();
      await close();
    }
  });
});

describe("LibsqlStore on a UTF-16 database", () => {
  it("refuses to migrate, saying why, and creates nothing", async () => {
    const path = dbPath(tmp.dir);
    const client = createClient({ url: `file:${path}` });
    try {
      await client.execute('PRAGMA encoding = "UTF-16le"');
      await client.execute("CREATE TABLE app (x)");
      const error = await failure(new LibsqlStore(client).migrate());
      expect(error).toBeInstanceOf(StoreError);
      expect(error).toMatchObject({
        retryable: false,
        message:
          "the database's text encoding is UTF-16; edge-outbox needs UTF-8, SQLite's default (a new database file starts with it)",
      });
      const tables = await client.execute("SELECT name FROM sqlite_schema WHERE type = 'table'");
      expect(tables.rows.map((r) => r.name)).toEqual(["app"]);
    } finally {
      client.close();
    }
  });
});
