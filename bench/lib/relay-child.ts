/**
 * One relay process of benchmarks 7 and 16. Usage: relay-child.ts <db path> <batch size>, or
 * relay-child.ts <postgres:// URL> <batch size> <table> for a PostgresStore on a pg Pool.
 * Prints `{"ready":true}`, waits for a line on stdin (the start barrier), drains the outbox
 * with a counting null sender, then prints `{"ids":[...],"startedAt":ms,"endedAt":ms,"errors":n}`.
 */
import { createInterface } from "node:readline";
import { Outbox, StoreError, type TransactionalStore } from "../../mod.ts";
import { attachPostgresStore } from "./postgres.ts";
import { countingSender } from "./senders.ts";
import { sleep } from "./stats.ts";
import { attachStore } from "./store.ts";

const [path, batch, table] = process.argv.slice(2);
if (!path || !batch)
  throw new Error("usage: relay-child.ts <db path | postgres:// URL> <batch size> [table]");
const { store: attached, close } = /^postgres(ql)?:\/\//.test(path)
  ? attachPostgresStore(path, table ?? "outbox_messages")
  : attachLibsql(path);
// The relay uses only the store's claims and marks: its transaction type is moot here.
const store = attached as unknown as TransactionalStore<unknown>;

function attachLibsql(file: string) {
  const { client, store } = attachStore(file);
  return { store, close: async () => client.close() };
}
const ids: string[] = [];
let errors = 0;
const outbox = new Outbox(
  store,
  countingSender((id) => ids.push(id)),
  {
    batchSize: Number(batch),
    onError: () => {
      errors += 1;
    },
  },
);

console.log(JSON.stringify({ ready: true }));
const input = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
await input.next();
const startedAt = Date.now();
// Drain until a tick finds nothing: busy errors (another process holds the write lock past
// the busy timeout) are retried after a short pause, a few times at most.
for (let attempt = 0; attempt < 200; attempt++) {
  try {
    const result = await outbox.tick();
    if (result.batches === 0) break;
  } catch (error) {
    if (!(error instanceof StoreError) || !error.retryable) throw error;
    errors += 1;
    await sleep(5);
  }
}
const endedAt = Date.now();
console.log(JSON.stringify({ ids, startedAt, endedAt, errors }));
await close();
process.stdin.destroy();
