/**
 * addMessage inside an application's transaction on a local file writes its row with the
 * arguments written into the SQL (adapters/libsql/inline.ts): what a relay then claims must be
 * exactly what was added, whatever the text or bytes, on both sides of where the store stops
 * writing values in and binds them instead.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MAX_INLINE_BYTES } from "../../adapters/libsql/inline.ts";
import type { LibsqlTx } from "../../adapters/libsql.ts";
import { type Message, type NewMessage, Outbox, type PreparedMessage, wellFormedText } from "../../mod.ts";
import { dbPath, openStore, tempDir } from "./helpers.ts";

const { dir, cleanup } = tempDir();
afterAll(cleanup);

const noSend = { send: async (messages: Message[]) => messages };
const claimAll = { batchSize: 100, leaseDuration: 30_000, ordering: "none" } as const;

describe("addMessage in a transaction, written in or bound", () => {
  let opened: Awaited<ReturnType<typeof openStore>>;
  beforeAll(async () => {
    opened = await openStore(`file:${dbPath(dir)}`);
  });
  afterAll(() => opened.close());

  it("claims back exactly the keys, values and headers it was given", async () => {
    const { store } = opened;
    const outbox = new Outbox<LibsqlTx>(store, noSend);
    const bytes = (n: number) => Uint8Array.from({ length: n }, (_, i) => (i * 37 + 11) & 255);
    const added: (NewMessage & { headers: Record<string, string> })[] = [
      { key: "it's 'quoted'", value: "value with ' and '' and ;--", headers: { "x-q": "a'b" } },
      { key: "nul\u0000key", value: "nul\u0000value", headers: {} },
      { key: "lone \uD800 surrogate", value: "😀 4-byte \u{10FFFF}", headers: { "x-e": "\u00e9" } },
      { key: "binary at the limit", value: bytes(MAX_INLINE_BYTES), headers: {} },
      { key: "binary past the limit", value: bytes(MAX_INLINE_BYTES + 1), headers: {} },
      { key: "text past the limit", value: "é".repeat(MAX_INLINE_BYTES), headers: {} },
      { key: "empty", value: new Uint8Array(0), headers: {} },
      { key: "?1 ?2 X'00'", value: "?1", headers: { "x-p": "?3" } },
    ];
    await store.withTransaction(async (tx) => {
      for (const message of added) await outbox.addMessage(tx, message);
    });
    const claim = await store.fetchAndLock(claimAll);
    const encoder = new TextEncoder();
    expect(claim.messages.map((m) => ({ key: m.key, value: m.value, headers: m.headers }))).toEqual(
      added.map((m) => ({
        key: wellFormedText(m.key),
        value: typeof m.value === "string" ? encoder.encode(m.value) : m.value,
        headers: m.headers,
      })),
    );
  });

  it("adds nothing when the transaction rolls back, and fails like any statement", async () => {
    const { store, client } = opened;
    const outbox = new Outbox<LibsqlTx>(store, noSend);
    const before = (await store.stats()).pending;
    await expect(
      store.withTransaction(async (tx) => {
        await outbox.addMessage(tx, { key: "rolled back", value: "x" });
        throw new Error("the application's own failure");
      }),
    ).rejects.toThrow("the application's own failure");
    expect((await store.stats()).pending).toBe(before);

    const tx = await client.transaction("write");
    await tx.commit();
    const error = await outbox.addMessage(tx, { key: "closed", value: "x" }).catch((e: unknown) => e);
    expect(error).toMatchObject({ name: "StoreError" });
    expect((await store.stats()).pending).toBe(before);
  });

  it("fails a busy write cleanly in a deferred transaction: the retry in it commits", async () => {
    const path = dbPath(dir);
    const mine = await openStore(`file:${path}`);
    const other = await openStore(`file:${path}`);
    try {
      const outbox = new Outbox<LibsqlTx>(mine.store, noSend);
      const holder = await other.client.transaction("write");
      await other.store.addMessage(holder, prepared("holder", new Uint8Array(1)));
      const tx = await mine.client.transaction("deferred");
      // Written in (a small value) and bound (one over the limit) alike.
      const values = ["small", "x".repeat(MAX_INLINE_BYTES + 1)];
      for (const value of values) {
        const error = await outbox.addMessage(tx, { key: "busy", value }).catch((e: unknown) => e);
        expect(error).toMatchObject({ name: "StoreError", code: "STORE_BUSY", retryable: true });
        expect((error as Error).message).toContain(
          "the message was NOT written, retry the call in the same transaction",
        );
        expect((error as Error).message).not.toContain("nothing is lost");
      }
      await holder.commit();
      for (const value of values) await outbox.addMessage(tx, { key: "busy", value });
      await tx.commit();
      const claim = await mine.store.fetchAndLock(claimAll);
      expect(claim.messages.map((m) => m.text())).toEqual(["\u0000", ...values]);
    } finally {
      await mine.close();
      await other.close();
    }
  });

  it("accepts a transaction-like object that only has execute", async () => {
    const { client, store } = opened;
    const before = (await store.stats()).pending;
    const tx = await client.transaction("write");
    const executeOnly = { execute: tx.execute.bind(tx) } as unknown as LibsqlTx;
    await new Outbox<LibsqlTx>(store, noSend).addMessage(executeOnly, { key: "execute only", value: "x" });
    await tx.commit();
    expect((await store.stats()).pending).toBe(before + 1);
  });

  it("stores exactly the bytes a view shows, not its whole buffer", async () => {
    const path = dbPath(dir);
    const fresh = await openStore(`file:${path}`);
    try {
      const buffer = Uint8Array.from({ length: 64 }, (_, i) => i);
      await fresh.store.withTransaction((tx) =>
        fresh.store.addMessage(tx, prepared("view", buffer.subarray(10, 20))),
      );
      const claim = await fresh.store.fetchAndLock(claimAll);
      expect(claim.messages[0]?.value).toEqual(buffer.slice(10, 20));
    } finally {
      await fresh.close();
    }
  });
});

function prepared(key: string, value: Uint8Array<ArrayBuffer>): PreparedMessage {
  return { key, value, headers: {}, timestamp: new Date() };
}
