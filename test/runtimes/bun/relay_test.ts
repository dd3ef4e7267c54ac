import { expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createClient } from "@libsql/client";
import { LibsqlStore } from "../../../adapters/libsql.ts";
import { MemoryStore } from "../../../adapters/memory.ts";
import type { TransactionalStore } from "../../../mod.ts";
import { checkRelay, recordingReceiver } from "../shared/scenario.ts";

/** Relays from `store` to a Bun.serve receiver on 127.0.0.1 and expects no problem. */
async function relayToBunServe<T>(store: TransactionalStore<T>): Promise<void> {
  const receiver = recordingReceiver();
  const server = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: receiver.handle });
  try {
    expect(await checkRelay(store, `http://127.0.0.1:${server.port}/hook`, receiver.received)).toEqual([]);
  } finally {
    await server.stop(true);
  }
}

test("Outbox + MemoryStore relays to a Bun.serve receiver", () => relayToBunServe(new MemoryStore()));

test("Outbox + LibsqlStore on a file: database relays to a Bun.serve receiver", async () => {
  const dir = mkdtempSync(join(tmpdir(), "edge-outbox-bun-"));
  const client = createClient({ url: `file:${join(dir, "outbox.db")}` });
  try {
    const store = new LibsqlStore(client);
    await store.migrate();
    await relayToBunServe(store);
  } finally {
    client.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
