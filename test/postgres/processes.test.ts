/**
 * Real relay processes on one PostgreSQL database (the server named by EDGE_OUTBOX_PG_URL):
 * relays racing with 0 duplicates, relays SIGKILLed mid-batch losing nothing, and a producer
 * whose rolled-back transactions' messages are never delivered. Every relay POSTs what it
 * delivers to a receiver here.
 */
import pg from "pg";
import { describe, expect, it, vi } from "vitest";
import { PostgresStore } from "../../adapters/postgres.ts";
import { startReceiver } from "../libsql/helpers.ts";
import { type Child, childProcesses, counts } from "../support/child-processes.ts";
import { waitFor } from "../support/senders.ts";
import { freshTable, PG_URL, serverDatabase } from "./helpers.ts";

// PGlite and child processes need CPU a loaded machine may not have.
vi.setConfig({ testTimeout: 120_000, hookTimeout: 120_000 });

const url = serverDatabase("processes");

const run = childProcesses("test/postgres/fixtures");

async function preparedDatabase() {
  const pool = new pg.Pool({ connectionString: url(), max: 2 });
  const table = freshTable();
  const store = new PostgresStore(pool, { table });
  await store.migrate();
  await pool.query("CREATE TABLE IF NOT EXISTS orders (id integer PRIMARY KEY)");
  await pool.query("TRUNCATE orders");
  return { table, store, close: () => pool.end() };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe.runIf(PG_URL !== undefined)("PostgresStore across processes (server)", () => {
  it("three relays (node-postgres and postgres.js) and a producer deliver every message exactly once, no rolled-back one", {
    timeout: 300_000,
  }, async () => {
    const total = 400;
    const { table, store, close } = await preparedDatabase();
    const receiver = await startReceiver();
    try {
      const relays = [
        ["r1", "pg"],
        ["r2", "postgres.js"],
        ["r3", "pg"],
      ].map(([name, driver]) =>
        run("relay.ts", [url(), table, receiver.url, name!, driver!, "30000", "5000"]),
      );
      const producer = run("producer.ts", [url(), table, String(total)]);
      expect(await producer.exited, producer.output).toBe(0);
      await waitFor(() => new Set(receiver.deliveries.map((d) => d.value)).size >= total, 60_000).catch(
        () => {
          throw new Error(`not all delivered: ${relays.map((r) => r.output).join("\n")}`);
        },
      );
      await waitFor(async () => (await store.stats()).pending + (await store.stats()).inFlight === 0, 10_000);
      for (const relay of relays) relay.process.kill("SIGTERM");
      await Promise.all(relays.map((relay) => relay.exited));

      const delivered = counts(receiver.deliveries.map((d) => d.value));
      expect([...delivered.keys()].filter((v) => v.startsWith("rolled-back"))).toEqual([]);
      expect(delivered.size).toBe(total);
      expect([...delivered.values()].filter((n) => n > 1)).toEqual([]);
      expect(receiver.deliveries).toHaveLength(total);
      // Every relay took part: the work was shared, not serialised behind one.
      expect(new Set(receiver.deliveries.map((d) => d.relay)).size).toBe(3);
      expect(await store.stats()).toEqual({ pending: 0, inFlight: 0, dead: 0, oldestPendingAt: null });
    } finally {
      await receiver.close();
      await close();
    }
  });

  it("relays SIGKILLed mid-batch again and again lose nothing; duplicates stay within what was in flight", {
    timeout: 600_000,
  }, async () => {
    const total = 400;
    const batchSize = 10;
    const { table, store, close } = await preparedDatabase();
    // A slow receiver keeps relays inside their send for a while: each kill lands mid-batch.
    const receiver = await startReceiver(40);
    try {
      const names = ["r1", "r2", "r3"];
      const everyRelay: Child[] = [];
      const relay = (name: string) => {
        const driver = name === "r2" ? "postgres.js" : "pg";
        const child = run("relay.ts", [url(), table, receiver.url, name, driver, "1000", "500"]);
        everyRelay.push(child);
        return child;
      };
      const relays = new Map(names.map((name) => [name, relay(name)]));
      const producer = run("producer.ts", [url(), table, String(total)]);
      const rounds = 4;
      let midBatch = 0;
      for (let round = 0; round < rounds; round++) {
        // A relay takes seconds to start on a loaded machine: wait until all of them run.
        await waitFor(() => [...relays.values()].every((r) => r.output.includes("ready")), 120_000);
        await sleep(150);
        // Prefer a relay whose batch the receiver holds (delivered, not yet recorded as sent).
        await waitFor(() => receiver.answering.size > 0, 10_000).catch(() => {});
        const busy = names.find((name) => receiver.answering.has(name));
        if (busy) midBatch += 1;
        const victim = busy ?? names[round % names.length]!;
        relays.get(victim)!.process.kill("SIGKILL");
        await relays.get(victim)!.exited;
        relays.set(victim, relay(victim));
      }
      expect(await producer.exited, producer.output).toBe(0);
      await waitFor(async () => {
        const stats = await store.stats();
        return stats.pending + stats.inFlight === 0;
      }, 60_000);
      for (const child of relays.values()) child.process.kill("SIGTERM");
      await Promise.all([...relays.values()].map((child) => child.exited));

      const delivered = counts(receiver.deliveries.map((d) => d.value));
      expect([...delivered.keys()].filter((v) => v.startsWith("rolled-back"))).toEqual([]);
      expect(delivered.size).toBe(total);
      expect(midBatch).toBeGreaterThan(0);
      // Each kill re-sends at most the one batch its relay held; so does a send that timed out
      // (a starved machine), which the relay reports on stderr.
      const timeouts = everyRelay.reduce(
        (n, relay) => n + (relay.output.match(/within sendTimeout/g)?.length ?? 0),
        0,
      );
      expect(receiver.deliveries.length - total).toBeLessThanOrEqual(batchSize * (rounds + timeouts));
      expect((await store.stats()).dead).toBe(0);
    } finally {
      await receiver.close();
      await close();
    }
  });
});
