/**
 * The stores the model-based tests drive, as factories of fresh, empty stores. A store added
 * later adds its factory here (or in its own file) and one test file that calls `runStoreModel`.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createClient } from "@libsql/client";
import { LibsqlStore } from "../../adapters/libsql.ts";
import { MemoryStore } from "../../adapters/memory.ts";
import type { ModelStoreFactory } from "./store-run.ts";

/** A fresh MemoryStore (sent messages are dropped at once: nothing to purge). */
export const memoryStore: ModelStoreFactory = async () => ({
  store: new MemoryStore(),
  close: async () => {},
});

let files = 0;

/**
 * A fresh LibsqlStore on a new database file, keeping sent rows for `purgeSent` when asked.
 * The file lives in a temporary directory removed on close.
 */
export const libsqlStore: ModelStoreFactory = async ({ keepSent }) => {
  const dir = mkdtempSync(join(tmpdir(), "edge-outbox-model-"));
  const client = createClient({ url: `file:${join(dir, `model-${++files}.db`)}` });
  const store = new LibsqlStore(client, keepSent ? { retention: { sent: "keep", keepFor: 3_600_000 } } : {});
  await store.migrate();
  return {
    store,
    purgeSent: keepSent ? (olderThan) => store.purgeSent(olderThan) : undefined,
    close: async () => {
      client.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
};
