/**
 * The relay of benchmark 6, in its own process so its resident set is its own. Run with
 * `node --expose-gc`. Usage: memory-child.ts <dir> <total> <chunk> <batch size>.
 * Writes `chunk` messages, drains them with tick(), collects garbage and samples RSS, until
 * `total` messages went through; prints `{"samples":[{relayed, rss, heap}], "gc": boolean}` (bytes).
 * Without `--expose-gc` it samples without forcing a collection.
 */
import { Outbox } from "../../mod.ts";
import { nullSender } from "./senders.ts";
import { fillStore, openStore } from "./store.ts";

const [dir, totalArg, chunkArg, batchArg] = process.argv.slice(2);
if (!dir || !totalArg || !chunkArg || !batchArg) {
  throw new Error("usage: memory-child.ts <dir> <total> <chunk> <batch size>");
}
const total = Number(totalArg);
const chunk = Number(chunkArg);
const gc = (globalThis as { gc?: () => void }).gc;
const fixture = await openStore(dir, "memory");
const outbox = new Outbox(fixture.store, nullSender, { batchSize: Number(batchArg) });
const samples: { relayed: number; rss: number; heap: number }[] = [];
let relayed = 0;
const tick = () => new Promise((resolve) => setTimeout(resolve, 20));
const sample = async () => {
  // Without --expose-gc this samples what the process holds under V8's own collection
  // schedule. With it, what it keeps: native statement handles of the driver are freed by
  // finalizers that run after a collection, on a later turn of the loop, hence two rounds.
  if (gc) {
    gc();
    await tick();
    gc();
    await tick();
  }
  const usage = process.memoryUsage();
  samples.push({ relayed, rss: usage.rss, heap: usage.heapUsed });
};
await sample();
while (relayed < total) {
  await fillStore(fixture.store, chunk, chunk, relayed);
  const result = await outbox.tick();
  if (result.sent !== chunk) throw new Error(`expected ${chunk} sent, got ${result.sent}`);
  relayed += result.sent;
  await sample();
}
fixture.close();
console.log(JSON.stringify({ samples, gc: gc !== undefined }));
