import { createClient } from "@libsql/client";
import { LibsqlStore } from "../../../adapters/libsql.ts";
import { MemoryStore } from "../../../adapters/memory.ts";
import type { TransactionalStore } from "../../../mod.ts";
import { checkRelay, recordingReceiver } from "../shared/scenario.ts";

/** Relays from `store` to a Deno.serve receiver on 127.0.0.1; throws on any problem. */
async function relayToDenoServe<T>(store: TransactionalStore<T>): Promise<void> {
  const receiver = recordingReceiver();
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, receiver.handle);
  try {
    const problems = await checkRelay(store, `http://127.0.0.1:${server.addr.port}/hook`, receiver.received);
    if (problems.length > 0) throw new Error(problems.join("\n"));
  } finally {
    await server.shutdown();
  }
}

Deno.test("Outbox + MemoryStore relays to a Deno.serve receiver", () => relayToDenoServe(new MemoryStore()));

Deno.test("Outbox + LibsqlStore on a file: database relays to a Deno.serve receiver", async () => {
  const dir = await Deno.makeTempDir({ prefix: "edge-outbox-deno-" });
  const client = createClient({ url: `file:${dir}/outbox.db` });
  try {
    const store = new LibsqlStore(client);
    await store.migrate();
    await relayToDenoServe(store);
  } finally {
    client.close();
    await Deno.remove(dir, { recursive: true });
  }
});
