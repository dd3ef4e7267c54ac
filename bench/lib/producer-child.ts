/**
 * A producer in its own process: commits `rate` messages a second (ten transactions a second)
 * for `seconds` to a migrated libSQL file, through `Outbox.addMessage`, as an application
 * would. Prints `{"ready":true}` once open, starts on a line on stdin, and prints
 * `{"produced":N}` when done. Its own process: a relay's writes blocked by a transaction held
 * open in the same (synchronous) libSQL process would wait out the busy timeout.
 * Usage: producer-child.ts <db path> <rate> <seconds>
 */
import { createInterface } from "node:readline";
import { createClient } from "@libsql/client";
import { LibsqlStore } from "../../adapters/libsql.ts";
import { Outbox } from "../../mod.ts";

const [path, rateText, secondsText] = process.argv.slice(2);
const rate = Number(rateText);
const total = rate * Number(secondsText);
const client = createClient({ url: `file:${path}` });
const store = new LibsqlStore(client);
const outbox = new Outbox(store, { send: async (m) => m });
console.log(JSON.stringify({ ready: true }));
await createInterface({ input: process.stdin })[Symbol.asyncIterator]().next();

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const perCommit = Math.max(1, Math.round(rate / 10));
const started = performance.now();
let produced = 0;
for (let i = 0; produced < total; i++) {
  const wait = started + i * 100 - performance.now();
  if (wait > 0) await sleep(wait);
  const n = Math.min(perCommit, total - produced);
  await store.withTransaction(async (tx) => {
    for (let j = 0; j < n; j++) {
      await outbox.addMessage(tx, { key: `k${(produced + j) % 50}`, value: `{"n":${produced + j}}` });
    }
  });
  produced += n;
}
console.log(JSON.stringify({ produced }));
client.close();
process.exit(0);
