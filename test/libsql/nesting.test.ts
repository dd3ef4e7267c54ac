/**
 * addMessage(client) called inside a transaction open on that very client: refused at once
 * with what to do instead, while writes of other requests through the same client just wait.
 */
import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { Outbox, StoreError, ValidationError } from "../../mod.ts";
import { recordingSender } from "../support/senders.ts";
import { dbPath, openStore, tempDir } from "./helpers.ts";

const tmp = tempDir();
afterAll(() => tmp.cleanup());

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe("LibsqlStore addMessage with the client of an open transaction", () => {
  it("refuses it at once inside store.withTransaction, naming the fix; nothing is written", async () => {
    const { client, store, close } = await openStore(`file:${dbPath(tmp.dir)}`);
    try {
      await client.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY)");
      const outbox = new Outbox(store, recordingSender());
      const started = Date.now();
      const error = await store
        .withTransaction(async (tx) => {
          await tx.execute("INSERT INTO orders (id) VALUES (1)");
          await outbox.addMessage(client, { key: "order:1", value: "x" });
        })
        .catch((e: unknown) => e);
      expect(Date.now() - started).toBeLessThan(2_000); // busyTimeout is 5 s
      expect(error).toBeInstanceOf(ValidationError);
      expect((error as ValidationError).code).toBe("INVALID_MESSAGE");
      expect((error as ValidationError).message).toMatch(/Pass the transaction the callback received \(tx\)/);
      expect(await store.stats()).toMatchObject({ pending: 0 });
      expect((await client.execute("SELECT COUNT(*) AS n FROM orders")).rows[0]?.n).toBe(0);
    } finally {
      await close();
    }
  });

  it("lets another request's addMessage(client) wait for the transaction and succeed", async () => {
    const { client, store, close } = await openStore(`file:${dbPath(tmp.dir)}`);
    try {
      const outbox = new Outbox(store, recordingSender());
      let inside!: () => void;
      const opened = new Promise<void>((resolve) => {
        inside = resolve;
      });
      const request1 = store.withTransaction(async (tx) => {
        inside();
        await sleep(300);
        await outbox.addMessage(tx, { key: "one", value: "x" });
      });
      await opened;
      // Not inside the callback: a separate request on the same client.
      await outbox.addMessage(client, { key: "two", value: "x" });
      await request1;
      expect(await store.stats()).toMatchObject({ pending: 2 });
    } finally {
      await close();
    }
  });

  it("lets work the callback started without awaiting write through the client once it committed", async () => {
    const { client, store, close } = await openStore(`file:${dbPath(tmp.dir)}`);
    try {
      const outbox = new Outbox(store, recordingSender());
      let later!: Promise<void>;
      await store.withTransaction(async () => {
        later = sleep(100).then(() => outbox.addMessage(client, { key: "k", value: "x" }));
      });
      await later;
      expect(await store.stats()).toMatchObject({ pending: 1 });
    } finally {
      await close();
    }
  });

  it("says the message was not written when the lock stays held (a client.transaction of the caller's)", async () => {
    const { client, store, close } = await openStore(`file:${dbPath(tmp.dir)}`, { busyTimeout: 200 });
    try {
      const tx = await client.transaction("write");
      await tx.execute("CREATE TABLE IF NOT EXISTS orders (id INTEGER PRIMARY KEY)");
      const error = await new Outbox(store, recordingSender())
        .addMessage(client, { key: "k", value: "x" })
        .catch((e: unknown) => e);
      await tx.rollback();
      tx.close();
      expect(error).toBeInstanceOf(StoreError);
      expect((error as StoreError).code).toBe("STORE_BUSY");
      expect((error as StoreError).message).toMatch(/the message was NOT written, retry the call/);
      expect((error as StoreError).message).toMatch(/pass that transaction instead of the client/);
      expect((error as StoreError).message).not.toMatch(/next pass retries/);
    } finally {
      await close();
    }
  });
});

describe("LibsqlStore nesting detection without process.getBuiltinModule (Node 20.0-20.15)", () => {
  it("uses a global AsyncLocalStorage: still refused at once", { timeout: 60_000 }, () => {
    const out = execFileSync(
      process.execPath,
      ["--import", "tsx", join(import.meta.dirname, "fixtures/global-als.ts"), dbPath(tmp.dir)],
      { encoding: "utf8", timeout: 50_000 },
    );
    expect(out.trim()).toBe("ValidationError INVALID_MESSAGE fast");
  });
});
