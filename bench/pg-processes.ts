/**
 * Benchmark 16: 1, 2 and 4 relay processes on one PostgreSQL table (the harness of benchmark 7:
 * each process its own node-postgres Pool and PostgresStore, draining with tick() from a
 * common start). Total throughput, and deliveries per id across all processes.
 */
import pg from "pg";
import { PostgresStore } from "../adapters/postgres.ts";
import { benchDatabase, fillStore } from "./lib/postgres.ts";
import { type Benchmark, num, type Section } from "./lib/report.ts";
import { processesTable, relayProcesses } from "./processes.ts";

export const postgresProcessesBenchmark: Benchmark = {
  id: 16,
  slug: "pg-processes",
  title: "PostgreSQL relay processes 1, 2, 4 on one table",
  async run({ quick }): Promise<Section> {
    const n = quick ? 3_000 : 15_000;
    const rounds = quick ? 1 : 3;
    const batchSize = 100;
    const database = await benchDatabase("processes");
    const pool = new pg.Pool({ connectionString: database.url, max: 2 });
    try {
      let runs = 0;
      const { table, allExact } = await processesTable(n, rounds, async (processes) => {
        const name = `procs_${processes}_${++runs}`;
        const store = new PostgresStore(pool, { table: name });
        await store.migrate();
        await fillStore(store, n);
        const result = await relayProcesses([database.url, String(batchSize), name], n, processes);
        await pool.query(`DROP TABLE public."${name}"`);
        return result;
      });
      return {
        id: 16,
        title: this.title,
        target: "zero duplicates and nothing missing with any number of processes; throughput reported",
        verdict: allExact ? "met" : "missed",
        tables: [table],
        notes: [
          `${num(n)} order messages loaded first into a fresh table, then every process (node + tsx, its own node-postgres Pool of 2 and PostgresStore) starts on a common signal and drains with tick(); batchSize ${batchSize}, a null sender that records ids; median of ${rounds} round(s); the local PostgreSQL 15 on the same 2 cores as the relays. Deliveries are counted per id across all processes.`,
        ],
      };
    } finally {
      await pool.end();
      await database.drop();
    }
  },
};
