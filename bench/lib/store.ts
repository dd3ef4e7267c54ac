/** LibsqlStore on a temporary file database, the way every libSQL benchmark opens it. */
import type { Client } from "@libsql/client";
import { LibsqlStore } from "../../adapters/libsql.ts";
import { connect, openDb } from "./db.ts";
import { preparedOrders } from "./workload.ts";

/** A migrated store on a fresh file database. */
export interface StoreFixture {
  client: Client;
  store: LibsqlStore;
  path: string;
  close(): void;
}

/** Opens a fresh database in `dir` and migrates a LibsqlStore on it. */
export async function openStore(dir: string, name = "store"): Promise<StoreFixture> {
  const { client, path } = openDb(dir, name);
  const store = new LibsqlStore(client);
  await store.migrate();
  return { client, store, path, close: () => client.close() };
}

/** Another client and store on an existing, migrated database file. */
export function attachStore(path: string): { client: Client; store: LibsqlStore } {
  const client = connect(path);
  return { client, store: new LibsqlStore(client) };
}

/**
 * Writes `n` order messages through `store.addMessage`, `chunk` per committed transaction
 * (the way an application would, only with bigger transactions to load quickly).
 */
export async function fillStore(store: LibsqlStore, n: number, chunk = 5_000, from = 0): Promise<void> {
  for (let done = 0; done < n; done += chunk) {
    const messages = preparedOrders(Math.min(chunk, n - done), from + done);
    await store.withTransaction(async (tx) => {
      for (const m of messages) await store.addMessage(tx, m);
    });
    // The driver settles without I/O: let timers and its finalizers run between chunks.
    await new Promise((resolve) => setImmediate(resolve));
  }
}

/** Loads `n` messages into `store` (not timed), then times `drain`; returns messages per second. */
export async function timedDrain(
  store: LibsqlStore,
  n: number,
  drain: () => Promise<number>,
): Promise<number> {
  await fillStore(store, n);
  const started = performance.now();
  const sent = await drain();
  const seconds = (performance.now() - started) / 1000;
  if (sent !== n) throw new Error(`drained ${sent} of ${n}`);
  return n / seconds;
}
