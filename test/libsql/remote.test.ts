/**
 * LibsqlStore over a remote client: the real `@libsql/client` with an `http://` URL, speaking
 * Hrana over HTTP (v2) to a stand-in for sqld on 127.0.0.1 (test/support/hrana-server.ts) in
 * front of a real database file. This is the code path Turso deployments take: autocommit
 * requests, `batch` in write mode for a relay pass, interactive transactions for writers.
 */
import { type Client, createClient } from "@libsql/client";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { LibsqlStore } from "../../adapters/libsql.ts";
import { type Message, Outbox, prepareMessage } from "../../mod.ts";
import { commitMessages, describeStoreConformance } from "../conformance/store-conformance.ts";
import { type HranaServer, startHranaServer } from "../support/hrana-server.ts";
import { recordingSender } from "../support/senders.ts";
import { dbPath, tempDir } from "./helpers.ts";

const tmp = tempDir();
afterAll(() => tmp.cleanup());

/** A stand-in server on a fresh file, and a migrated store on a remote client for it. */
async function openRemote(): Promise<{
  server: HranaServer;
  client: Client;
  store: LibsqlStore;
  close: () => Promise<void>;
}> {
  const server = await startHranaServer(dbPath(tmp.dir));
  const client = createClient({ url: server.url });
  const store = new LibsqlStore(client);
  await store.migrate();
  return {
    server,
    client,
    store,
    close: async () => {
      client.close();
      await server.close();
    },
  };
}

describeStoreConformance("LibsqlStore (remote: Hrana over HTTP)", openRemote);

describe("LibsqlStore on a remote client", () => {
  let close: (() => Promise<void>) | undefined;
  afterEach(async () => {
    await close?.();
    close = undefined;
  });

  it("relays a backlog byte for byte with batched passes, and sends the server no PRAGMA", async () => {
    const remote = await openRemote();
    close = remote.close;
    const { client, store, server } = remote;
    const values = Array.from({ length: 45 }, (_, i) => new Uint8Array([i, 0, 255, 128, i]));
    // A writer's own transaction over HTTP: the order and its message commit together.
    const tx = await client.transaction("write");
    await tx.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY)");
    for (const [i, value] of values.entries()) {
      await tx.execute({ sql: "INSERT INTO orders (id) VALUES (?)", args: [i] });
      await store.addMessage(tx, prepareMessage({ key: `order:${i}`, value }, { maxMessageBytes: 64 }));
    }
    await tx.commit();
    const got: Message[] = [];
    const errors: unknown[] = [];
    const outbox = new Outbox(
      store,
      recordingSender((m) => {
        got.push(m);
        m.markAsSent();
      }),
      { batchSize: 10, onError: (e) => errors.push(e) },
    );
    expect(await outbox.tick()).toMatchObject({ batches: 5, sent: 45, failed: 0, dead: 0 });
    expect(errors).toEqual([]);
    expect(got.map((m) => m.key)).toEqual(values.map((_, i) => `order:${i}`));
    for (const [i, m] of got.entries()) expect(Array.from(m.value)).toEqual(Array.from(values[i]!));
    expect(await store.stats()).toEqual({ pending: 0, inFlight: 0, dead: 0, oldestPendingAt: null });
    expect(server.statements.filter((sql) => /pragma/i.test(sql))).toEqual([]);
  });

  it("waits out another client's open write transaction (SQLITE_BUSY over HTTP), then relays", async () => {
    const remote = await openRemote();
    close = remote.close;
    const { server, store } = remote;
    await commitMessages(
      store,
      [0, 1, 2].map((i) => ({ key: `k${i}`, value: `v${i}` })),
    );
    const holder = createClient({ url: server.url });
    try {
      // An interactive transaction that has written holds the write lock on its server stream.
      const tx = await holder.transaction("write");
      await tx.execute("CREATE TABLE held (x)");
      const refusedBefore = server.errors.filter((code) => code === "SQLITE_BUSY").length;
      const errors: unknown[] = [];
      const outbox = new Outbox(store, recordingSender(), { onError: (e) => errors.push(e) });
      const tick = outbox.tick();
      await new Promise((resolve) => setTimeout(resolve, 150));
      expect(await store.stats()).toMatchObject({ pending: 3, inFlight: 0 }); // readers do not wait
      await tx.commit();
      expect(await tick).toMatchObject({ sent: 3 });
      expect(errors).toEqual([]);
      // The relay's writes were refused busy while the lock was held, and retried.
      expect(server.errors.filter((code) => code === "SQLITE_BUSY").length).toBeGreaterThan(refusedBefore);
    } finally {
      holder.close();
    }
  });

  it("two relays on two remote clients deliver every message exactly once", async () => {
    const remote = await openRemote();
    close = remote.close;
    const { server, store } = remote;
    await commitMessages(
      store,
      Array.from({ length: 120 }, (_, i) => ({ key: `k:${i % 7}`, value: String(i) })),
    );
    const other = createClient({ url: server.url });
    const seen: string[] = [];
    const sender = recordingSender((m) => {
      seen.push(m.id);
      m.markAsSent();
    });
    try {
      const relays = [
        new Outbox(store, sender, { batchSize: 7 }),
        new Outbox(new LibsqlStore(other), sender, { batchSize: 7 }),
      ];
      const results = await Promise.all(relays.map((relay) => relay.tick()));
      expect(results.reduce((sum, r) => sum + r.sent, 0)).toBe(120);
    } finally {
      other.close();
    }
    expect(seen).toHaveLength(120);
    expect(new Set(seen).size).toBe(120);
    expect((await store.stats()).pending).toBe(0);
  });
});
