/**
 * A probe for benchmark 2 (not part of `npm run bench`): writes 3,000 warm-up messages, then
 * `n` more, in transactions of 500, through one side: `minimal` (the minimal table's INSERT),
 * `raw` (a raw INSERT into the store's table) or `add` (`Outbox.addMessage`). Run it under
 * callgrind twice, with `n` 3000 and 0, and divide the difference by 3,000 for the instructions
 * per message, which the machine's load does not change:
 * `valgrind --tool=callgrind --callgrind-out-file=/dev/null node --import tsx bench/add-cost-probe.ts add 3000`
 */
import type { Transaction } from "@libsql/client";
import { LibsqlStore } from "../adapters/libsql.ts";
import { Outbox } from "../mod.ts";
import { openDb, tempDir } from "./lib/db.ts";
import { nullSender } from "./lib/senders.ts";
import { orderMessage } from "./lib/workload.ts";

const [side, nText] = process.argv.slice(2) as [string, string];
const n = Number(nText);
const encoder = new TextEncoder();
const { dir, cleanup } = tempDir();
const { client } = openDb(dir, "cg");
await client.executeMultiple(`CREATE TABLE minimal_outbox (id INTEGER PRIMARY KEY, key, value, headers, ts, retries,
  status, locked_until, lock_token, available_at);
CREATE INDEX minimal_outbox_ready ON minimal_outbox (status, available_at, id);`);
const store = new LibsqlStore(client, { table: "outbox" });
await store.migrate();
const outbox = new Outbox(store, nullSender);
const sides: Record<string, (tx: Transaction, i: number) => Promise<unknown>> = {
  minimal: (tx, i) => {
    const m = orderMessage(i);
    return tx.execute({
      sql: "INSERT INTO minimal_outbox (key, value, headers, ts, retries, status, available_at) VALUES (?1, ?2, ?3, ?4, 0, 0, ?4)",
      args: [m.key, encoder.encode(m.value as string), JSON.stringify(m.headers ?? {}), Date.now()],
    });
  },
  raw: (tx, i) => {
    const m = orderMessage(i);
    return tx.execute({
      sql: `INSERT INTO "outbox" (key, value, headers, created_at, available_at) VALUES (?1, ?2, ?3, ?4, 0)`,
      args: [m.key, encoder.encode(m.value as string), JSON.stringify(m.headers ?? {}), Date.now()],
    });
  },
  add: (tx, i) => outbox.addMessage(tx, orderMessage(i)),
};
const write = sides[side];
if (write === undefined || !Number.isSafeInteger(n))
  throw new Error("usage: add-cost-probe.ts minimal|raw|add <n>");
let i = 0;
for (const count of [3000, n]) {
  for (let done = 0; done < count; done += 500) {
    const tx = await client.transaction("write");
    for (let k = 0; k < 500; k++) await write(tx, i++);
    await tx.commit();
    tx.close();
  }
}
client.close();
cleanup();
