/**
 * The relay of benchmark 6, in its own process so its resident set is its own. Run with
 * `node --expose-gc`. Usage: memory-child.ts <dir> <total> <chunk> <batch size>.
 * Writes `chunk` messages, drains them with tick(), collects garbage and samples RSS, until
 * `total` messages went through; prints `{"samples":[{"relayed":n,"rss":bytes,"heap":bytes}]}`.
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
const sample = () => {
  gc?.();
  const usage = process.memoryUsage();
  samples.push({ relayed, rss: usage.rss, heap: usage.heapUsed });
};
sample();
while (relayed < total) {
  await fillStore(fixture.store, chunk, chunk, relayed);
  const result = await outbox.tick();
  if (result.sent !== chunk) throw new Error(`expected ${chunk} sent, got ${result.sent}`);
  relayed += result.sent;
  sample();
}
fixture.close();
console.log(JSON.stringify({ samples, gc: gc !== undefined }));
