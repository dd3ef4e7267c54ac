import { createClient } from "@libsql/client";
import { afterAll, describe, expect, it } from "vitest";
import { isBusy, toStoreError } from "../../adapters/libsql/errors.ts";
import { LibsqlStore } from "../../adapters/libsql.ts";
import { Outbox, OutboxError, prepareMessage, StoreError } from "../../mod.ts";
import { commitMessages } from "../conformance/store-conformance.ts";
import { recordingSender, waitFor } from "../support/senders.ts";
import { dbPath, openStore, rowId, tempDir } from "./helpers.ts";

const tmp = tempDir();
afterAll(() => tmp.cleanup());

const claim = { batchSize: 10, leaseDuration: 30_000, ordering: "none" } as const;
const five = ["a", "b", "c", "d", "e"].map((key) => ({ key, value: key }));

async function rejection(promise: Promise<unknown>): Promise<StoreError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(StoreError);
  return error as StoreError;
}

/** A migrated store and a second client (another connection) on one new database file. */
async function sharedFile(busyTimeout: number) {
  const path = dbPath(tmp.dir);
  const opened = await openStore(`file:${path}`, { busyTimeout });
  const other = createClient({ url: `file:${path}` });
  return {
    ...opened,
    other,
    close: async () => {
      other.close();
      await opened.close();
    },
  };
}

describe("LibsqlStore under a held write lock", () => {
  it("fails passes with a retryable STORE_BUSY while another connection holds the lock, then delivers everything", async () => {
    const { client, store, other, close } = await sharedFile(100);
    try {
      await commitMessages(store, five);
      const sender = recordingSender();
      const outbox = new Outbox(store, sender);
      const holder = await other.transaction("write"); // BEGIN IMMEDIATE: the write lock
      await holder.execute("CREATE TABLE IF NOT EXISTS unrelated (x)");

      const busy = await rejection(outbox.tick());
      expect(busy).toMatchObject({ code: "STORE_BUSY", retryable: true });
      expect(busy.message).toMatch(/busy or locked while claiming messages \(SQLITE_BUSY/);
      expect(await rejection(store.withTransaction(async () => {}))).toMatchObject({ code: "STORE_BUSY" });
      expect(await rejection(store.markAsSent("t", ["1"]))).toMatchObject({ retryable: true });
      const lateMessage = prepareMessage({ key: "late", value: "x" }, { maxMessageBytes: 10 });
      expect(await rejection(store.addMessage(client, lateMessage))).toMatchObject({ code: "STORE_BUSY" });
      // WAL: reading goes on beside the writer; nothing was claimed or lost.
      expect(await store.stats()).toMatchObject({ pending: 5, inFlight: 0 });

      await holder.commit();
      // The failed statements left the client usable: the next pass delivers everything.
      expect(await outbox.tick()).toMatchObject({ sent: 5, failed: 0 });
      expect([...sender.delivered].map(rowId).sort()).toEqual(["1", "2", "3", "4", "5"]);
      // Committed for real (libsql-js leaves busy-failed statements in progress, which would
      // leave later autocommit writes uncommitted): another connection sees the rows gone.
      expect(
        (await other.execute("SELECT COUNT(*) AS n FROM outbox_messages WHERE status = 0")).rows[0]?.n,
      ).toBe(0);
      // And the application's own transactions on this client still commit.
      const tx = await client.transaction("write");
      await tx.execute("CREATE TABLE later (x)");
      await tx.commit();
      tx.close();
      expect((await other.execute("SELECT COUNT(*) AS n FROM later")).rows[0]?.n).toBe(0);
    } finally {
      await close();
    }
  });

  it("keeps a running loop alive through busy passes (errors go to onError)", async () => {
    const { store, other, close } = await sharedFile(20);
    const errors: unknown[] = [];
    const sender = recordingSender();
    const outbox = new Outbox(store, sender, { period: 10, onError: (e) => errors.push(e) });
    try {
      const holder = await other.transaction("write");
      await commitMessages(store, five).catch(() => {}); // busy too: the lock is held
      outbox.start();
      await waitFor(() => errors.length >= 2);
      await holder.commit();
      await commitMessages(store, five);
      outbox.wake();
      await waitFor(() => sender.delivered.length === 5);
      expect(errors.every((e) => e instanceof StoreError && e.retryable)).toBe(true);
    } finally {
      await outbox.stop();
      await close();
    }
  });

  it("waits without blocking the event loop, so a lock held by the same process can be released", async () => {
    const { store, other, close } = await sharedFile(10_000);
    try {
      await commitMessages(store, five);
      const holder = await other.transaction("write");
      // A blocking busy handler would freeze this timer and wait out the whole timeout.
      setTimeout(() => void holder.commit(), 100);
      const started = Date.now();
      const { messages } = await store.fetchAndLock(claim);
      expect(messages).toHaveLength(5);
      expect(Date.now() - started).toBeLessThan(9_000);
    } finally {
      await close();
    }
  });
});

describe("LibsqlStore on :memory: (one connection)", () => {
  it("keeps the database across transactions; the store waits for an open transaction, then fails busy", async () => {
    const { client, store, close } = await openStore(":memory:", { busyTimeout: 50 });
    try {
      const tx = await client.transaction("write");
      await store.addMessage(tx, prepareMessage({ key: "k", value: "v" }, { maxMessageBytes: 10 }));
      // The transaction holds the only connection: the store's statements cannot run meanwhile.
      const busy = await rejection(store.fetchAndLock(claim));
      expect(busy).toMatchObject({ code: "STORE_BUSY", retryable: true });
      expect(busy.message).toMatch(/TRANSACTION_ACTIVE/);
      // With a longer budget the claim waits for the commit instead.
      const waiting = new LibsqlStore(client, { busyTimeout: 10_000 }).fetchAndLock(claim);
      setTimeout(() => void tx.commit(), 50);
      expect((await waiting).messages.map((m) => m.key)).toEqual(["k"]);
      // Still the same database after the transaction (older clients opened a fresh one here).
      expect(await store.stats()).toMatchObject({ inFlight: 1 });
    } finally {
      await close();
    }
  });
});

describe("LibsqlStore error classification", () => {
  it.each([
    [{ code: "SQLITE_BUSY" }, true],
    [{ code: "SQLITE_BUSY", extendedCode: "SQLITE_BUSY_SNAPSHOT", rawCode: 517 }, true],
    [{ code: "SQLITE_UNKNOWN", rawCode: 261 }, true],
    [{ code: "SQLITE_LOCKED", extendedCode: "SQLITE_LOCKED_SHAREDCACHE" }, true],
    [{ code: "TRANSACTION_ACTIVE" }, true],
    [{ code: "SQLITE_CONSTRAINT", extendedCode: "SQLITE_CONSTRAINT_UNIQUE", rawCode: 2067 }, false],
    [{ code: "SQLITE_ERROR", rawCode: 1 }, false],
    [new TypeError("boom"), false],
  ])("isBusy(%j) is %s", (error, busy) => {
    expect(isBusy(error)).toBe(busy);
    const mapped = toStoreError(Object.assign(new Error("m"), error), "testing");
    expect(mapped).toBeInstanceOf(StoreError);
    expect((mapped as StoreError).retryable).toBe(busy);
    expect(mapped.code).toBe(busy ? "STORE_BUSY" : "STORE_ERROR");
  });

  it("treats dropped remote connections as retryable, passes OutboxErrors through", () => {
    const dropped = toStoreError(
      Object.assign(new Error("socket closed"), { code: "HRANA_WEBSOCKET_ERROR" }),
      "x",
    );
    expect(dropped).toMatchObject({ code: "STORE_ERROR", retryable: true });
    const own = new OutboxError("LEASE_LOST", "mine");
    expect(toStoreError(own, "x")).toBe(own);
  });
});
