/**
 * A probe for benchmark 2 (not part of `npm run bench`): 500 writes per transaction through
 * each side in turn (order rotated every round, so load falls on every side alike), medians of
 * wall time and of this process's CPU time (`process.cpuUsage`, which other processes' load
 * disturbs less), each as a ratio to the minimal table. Sides: `minimal` (the minimal table's
 * INSERT), `loose` (a raw INSERT into a table with the store's columns and state index but no
 * constraints), `raw` (a raw INSERT into the store's table), `store` (`LibsqlStore.addMessage`
 * of a `prepareMessage` result), `outbox` (`Outbox.addMessage`).
 * `node --expose-gc --import tsx bench/add-paired-probe.ts [rounds=40]`
 */
import type { Transaction } from "@libsql/client";
import { Outbox, prepareMessage } from "../mod.ts";
import { tempDir } from "./lib/db.ts";
import { nullSender } from "./lib/senders.ts";
import { openStore } from "./lib/store.ts";
import { orderMessage } from "./lib/workload.ts";

const rounds = Number(process.argv[2] ?? 40);
const encoder = new TextEncoder();
const { dir, cleanup } = tempDir();
const { client, store } = await openStore(dir, "paired");
await client.executeMultiple(`CREATE TABLE minimal_outbox (id INTEGER PRIMARY KEY, key, value, headers, ts, retries,
  status, locked_until, lock_token, available_at);
CREATE INDEX minimal_outbox_ready ON minimal_outbox (status, available_at, id);
CREATE TABLE loose (id INTEGER PRIMARY KEY, key, value, headers, created_at, available_at, lease_until, claim_token,
  retries DEFAULT 0, status DEFAULT 0, last_error, sent_at);
CREATE INDEX loose_state ON loose (status, CASE status WHEN 0 THEN created_at WHEN 1 THEN sent_at END);`);
const outbox = new Outbox(store, nullSender);
const rawInto = (table: string) => (tx: Transaction, i: number) => {
  const m = orderMessage(i);
  return tx.execute({
    sql: `INSERT INTO "${table}" (key, value, headers, created_at, available_at) VALUES (?1, ?2, ?3, ?4, 0)`,
    args: [m.key, encoder.encode(m.value as string), JSON.stringify(m.headers ?? {}), Date.now()],
  });
};
const sides: Record<string, (tx: Transaction, i: number) => Promise<unknown>> = {
  minimal: (tx, i) => {
    const m = orderMessage(i);
    return tx.execute({
      sql: "INSERT INTO minimal_outbox (key, value, headers, ts, retries, status, available_at) VALUES (?1, ?2, ?3, ?4, 0, 0, ?4)",
      args: [m.key, encoder.encode(m.value as string), JSON.stringify(m.headers ?? {}), Date.now()],
    });
  },
  loose: rawInto("loose"),
  raw: rawInto(store.table),
  store: (tx, i) => store.addMessage(tx, prepareMessage(orderMessage(i), { maxMessageBytes: 1 << 20 })),
  outbox: (tx, i) => outbox.addMessage(tx, orderMessage(i)),
};
const names = Object.keys(sides);
const wall = new Map(names.map((n) => [n, [] as number[]]));
const cpu = new Map(names.map((n) => [n, [] as number[]]));
let i = 0;
for (let round = 0; round < rounds + 3; round++) {
  const order = names.slice(round % names.length).concat(names.slice(0, round % names.length));
  for (const name of order) {
    const started = performance.now();
    const cpuBefore = process.cpuUsage();
    const tx = await client.transaction("write");
    for (let k = 0; k < 500; k++) await sides[name]!(tx, i++);
    await tx.commit();
    tx.close();
    const used = process.cpuUsage(cpuBefore);
    if (round < 3) continue; // warm-up
    wall.get(name)!.push(performance.now() - started);
    cpu.get(name)!.push((used.user + used.system) / 1000);
  }
}
const median = (a: number[]) => [...a].sort((x, y) => x - y)[a.length >> 1]!;
const base = { wall: median(wall.get("minimal")!), cpu: median(cpu.get("minimal")!) };
for (const name of names) {
  const w = median(wall.get(name)!);
  const c = median(cpu.get(name)!);
  console.log(
    `${name.padEnd(8)} wall ${w.toFixed(1)} ms/tx ${(base.wall / w).toFixed(2)}x   cpu ${c.toFixed(1)} ms/tx ${(base.cpu / c).toFixed(2)}x`,
  );
}
client.close();
cleanup();
