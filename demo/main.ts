/**
 * The edge-outbox demo: `npm run demo` (after `npm install`, nothing else to set up).
 *
 * Writes orders into a libSQL file database, each with its `order.created` message in the same
 * transaction; a relay (`outbox.start()`, woken after every commit) delivers the messages over
 * signed HTTP to a loopback receiver that fails now and then on purpose. Prints live progress,
 * then a summary, and exits 0 when every order's message was delivered once or, for the one
 * poisoned order, declared dead.
 *
 *   npm run demo                      # 200 orders
 *   npm run demo -- --orders 1000     # more
 *   npm run demo -- --quick           # 40 orders, no pacing (used by test/demo.test.ts)
 *   npm run demo -- --keep            # keep the database file and print its path
 */
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { createClient } from "@libsql/client";
import { httpSender } from "../adapters/http.ts";
import { LibsqlStore, type LibsqlTx } from "../adapters/libsql.ts";
import { Outbox } from "../mod.ts";
import { createOrdersTable, orderFor, placeOrder } from "./orders.ts";
import { type Progress, ProgressPrinter } from "./progress.ts";
import { startReceiver } from "./receiver.ts";
import { printSummary } from "./summary.ts";

const { values } = parseArgs({
  options: {
    orders: { type: "string" },
    quick: { type: "boolean", default: false },
    keep: { type: "boolean", default: false },
  },
});
const quick = values.quick ?? false;
const total = Number(values.orders ?? (quick ? 40 : 200));
if (!Number.isSafeInteger(total) || total < 1 || total > 1_000_000) {
  console.error(`--orders must be an integer between 1 and 1000000, got ${values.orders}`);
  process.exit(2);
}
// A third of the way in, so its failure shows while other orders still flow.
const poisonedId = Math.max(1, Math.floor(total / 3));
// Pacing spreads the writes over about two seconds so the progress line has something to show.
const pauseMs = quick ? 0 : Math.max(0, Math.min(10, Math.floor(2_000 / total)));

const dir = mkdtempSync(join(tmpdir(), "edge-outbox-demo-"));
const dbPath = join(dir, "demo.db");
const client = createClient({ url: `file:${dbPath}` });
const store = new LibsqlStore(client);
await store.migrate();
await createOrdersTable(client);

const secret = `whsec_${randomBytes(24).toString("base64")}`;
const receiver = await startReceiver(secret);
const errors: unknown[] = [];
const outbox = new Outbox<LibsqlTx>(store, httpSender({ url: receiver.url, secret, concurrency: 8 }), {
  batchSize: 25,
  // Backoff waits end between wakes: a short period picks retried messages up quickly.
  period: 100,
  maxRetries: 3,
  // Small delays so that retries happen within the demo's few seconds.
  backoff: { initialDelay: 50, maxDelay: 400 },
  onError: (error) => errors.push(error),
});

console.log(`edge-outbox demo: ${total} orders -> libSQL ${dbPath}`);
console.log(`receiver: ${receiver.url} (verifies signatures; fails some requests on purpose)\n`);

const started = performance.now();
let written = 0;
const printer = new ProgressPrinter();
const snapshot = async (): Promise<Progress> => {
  const stats = await store.stats();
  return {
    elapsedMs: performance.now() - started,
    written,
    total,
    sent: receiver.counts.delivered,
    pending: stats.pending + stats.inFlight,
    dead: stats.dead,
    retries: receiver.counts.failedOnPurpose,
  };
};
let sampling = false;
const ticker = setInterval(() => {
  if (sampling) return;
  sampling = true;
  snapshot()
    .then((p) => printer.update(p))
    .catch(() => {})
    .finally(() => {
      sampling = false;
    });
}, printer.intervalMs);

let exitCode = 0;
let final: Progress | undefined;
try {
  outbox.start();
  for (let id = 1; id <= total; id++) {
    await placeOrder(client, outbox, orderFor(id, id === poisonedId));
    written += 1;
    outbox.wake();
    if (pauseMs > 0) await new Promise((resolve) => setTimeout(resolve, pauseMs));
  }
  // Bounded wait for the relay to settle every message: delivered, or dead.
  const deadline = Date.now() + 30_000;
  for (;;) {
    final = await snapshot();
    if (final.pending === 0 && final.sent + final.dead >= total) break;
    if (Date.now() > deadline) {
      exitCode = 1;
      console.error("\nthe relay did not settle within 30 s");
      break;
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
} finally {
  clearInterval(ticker);
  await outbox.stop();
}
final = await snapshot();
printer.finish(final);

const dead = await store.listDead();
const ordersRow = await client.execute("SELECT count(*) AS n FROM orders");
const ordersWritten = Number(ordersRow.rows[0]?.n ?? 0);
const ok = printSummary({
  ordersWritten,
  progress: final,
  counts: receiver.counts,
  dead,
  errors,
  expectDead: 1,
  paced: pauseMs > 0,
});
if (!ok) exitCode = 1;

await receiver.close();
client.close();
if (values.keep) console.log(`\ndatabase kept: ${dbPath}`);
else rmSync(dir, { recursive: true, force: true });
process.exitCode = exitCode;
