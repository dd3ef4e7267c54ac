/**
 * LibsqlStore's own choices around the SQL: which clients it takes, the journal mode it sets,
 * when a pass purges kept rows, and a pass's counts on both client kinds. Written against
 * mutation survivors (TESTING.md).
 */
import { createClient } from "@libsql/client";
import { afterAll, afterEach, describe, expect, it, vi } from "vitest";
import { LibsqlStore } from "../../adapters/libsql.ts";
import { prepareMessage, ValidationError } from "../../mod.ts";
import { commitMessages } from "../conformance/store-conformance.ts";
import { dbPath, openStore, tempDir } from "./helpers.ts";

const tmp = tempDir();
afterAll(() => tmp.cleanup());

const claim = { batchSize: 10, leaseDuration: 30_000, ordering: "none" } as const;

let close: (() => Promise<void>) | undefined;
afterEach(async () => {
  vi.useRealTimers();
  await close?.();
  close = undefined;
});

describe("LibsqlStore construction", () => {
  it("refuses a client that lacks execute or transaction", () => {
    const noop = () => {};
    for (const client of [{ execute: noop }, { transaction: noop }, null, undefined]) {
      expect(() => new LibsqlStore(client as never)).toThrow(ValidationError);
    }
    expect(new LibsqlStore({ execute: noop, transaction: noop } as never).table).toBe("outbox_messages");
  });

  it("refuses the reserved names in any case, and names beyond a plain identifier", () => {
    const client = { execute() {}, transaction() {} } as never;
    for (const table of ["EDGE_Outbox_Schema", "Sqlite_x", "a-b", "a\nb", 7]) {
      expect(() => new LibsqlStore(client, { table: table as string })).toThrow(ValidationError);
    }
    for (const table of ["edge_outbox_schema2", "my_sqlite_table", "Z9", "_"]) {
      expect(new LibsqlStore(client, { table }).table).toBe(table);
    }
  });

  it("says why it refuses a table name and what it got, for a name that is not text too", () => {
    const client = { execute() {}, transaction() {} } as never;
    const open = (table: unknown) => () => new LibsqlStore(client, { table: table as string });
    const plain =
      "table must be a plain SQL identifier (a letter or _, then up to 62 letters, digits or _), got";
    expect(open("a-b")).toThrow(new ValidationError(`${plain} "a-b"`));
    expect(open(7)).toThrow(new ValidationError(`${plain} 7`));
    // Text only: an object whose text is an identifier is still refused with a ValidationError.
    expect(open({ toString: () => "outbox" })).toThrow(new ValidationError(`${plain} {}`));
    const reserved =
      'table must not start with "sqlite_" (reserved by SQLite) nor be "edge_outbox_schema", got';
    expect(open("Sqlite_x")).toThrow(new ValidationError(`${reserved} "Sqlite_x"`));
    expect(open("EDGE_outbox_schema")).toThrow(new ValidationError(`${reserved} "EDGE_outbox_schema"`));
  });

  it("refuses options that are not an object, and a wal that is not a boolean", () => {
    const client = { execute() {}, transaction() {} } as never;
    expect(() => new LibsqlStore(client, null as never)).toThrow(/options must be an object/);
    expect(() => new LibsqlStore(client, "x" as never)).toThrow(/options must be an object/);
    expect(() => new LibsqlStore(client, { wal: "yes" as never })).toThrow(/wal must be a boolean/);
  });
});

describe("LibsqlStore journal mode", () => {
  it("switches a local file to WAL on first use unless wal is false", async () => {
    const mode = async (wal: boolean | undefined) => {
      const opened = await openStore(`file:${dbPath(tmp.dir)}`, wal === undefined ? {} : { wal });
      try {
        await commitMessages(opened.store, [{ key: "a", value: "a" }]);
        const result = await opened.client.execute("PRAGMA journal_mode");
        return String(result.rows[0]?.journal_mode);
      } finally {
        await opened.close();
      }
    };
    expect(await mode(undefined)).toBe("wal");
    expect(await mode(true)).toBe("wal");
    expect(await mode(false)).toBe("delete");
  });

  it("works on a client passed to addMessage that is not the store's own", async () => {
    const path = dbPath(tmp.dir);
    const opened = await openStore(`file:${path}`, { wal: false });
    close = opened.close;
    const other = createClient({ url: `file:${path}` });
    try {
      await opened.store.addMessage(
        other,
        prepareMessage({ key: "from-other", value: "1" }, { maxMessageBytes: 64 }),
      );
    } finally {
      other.close();
    }
    const { messages } = await opened.store.fetchAndLock(claim);
    expect(messages.map((m) => m.key)).toEqual(["from-other"]);
  });
});

describe("LibsqlStore retention during passes", () => {
  it("purges kept rows from recordAndFetch too, at most once a minute, and only after a sent mark", async () => {
    const {
      client,
      store,
      close: closeStore,
    } = await openStore(`file:${dbPath(tmp.dir)}`, {
      retention: { sent: "keep", keepFor: 100 },
    });
    close = closeStore;
    const sentRows = async () =>
      Number((await client.execute("SELECT COUNT(*) AS n FROM outbox_messages WHERE status = 1")).rows[0]?.n);
    await commitMessages(
      store,
      ["a", "b", "c", "d"].map((key) => ({ key, value: key })),
    );
    const first = await store.fetchAndLock({ ...claim, batchSize: 1 });
    const second = await store.recordAndFetch(
      { token: first.token, sent: [first.messages[0]!.id], retry: [], dead: [] },
      { ...claim, batchSize: 1 },
    );
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(await sentRows()).toBe(1);
    vi.useFakeTimers({ toFake: ["Date"] });
    vi.setSystemTime(Date.now() + 61_000);
    // A pass that marks nothing sent does not purge.
    const third = await store.recordAndFetch(
      {
        token: second.claim.token,
        sent: [],
        retry: [{ id: second.claim.messages[0]!.id, delay: 60_000, availableAt: new Date() }],
        dead: [],
      },
      { ...claim, batchSize: 1 },
    );
    expect(await sentRows()).toBe(1);
    // One that does purges a (older than keepFor on the database's clock), keeping its own c.
    await store.recordAndFetch(
      { token: third.claim.token, sent: [third.claim.messages[0]!.id], retry: [], dead: [] },
      { ...claim, batchSize: 1 },
    );
    const rows = await client.execute("SELECT key FROM outbox_messages WHERE status = 1");
    expect(rows.rows.map((r) => r.key)).toEqual(["c"]);
  });
});
