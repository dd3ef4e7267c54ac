/** A database of its own on the PostgreSQL server for the PostgreSQL benchmarks, and filling it. */
import pg from "pg";
import { PostgresStore } from "../../adapters/postgres.ts";
import { prepareMessage } from "../../mod.ts";
import { orderMessage } from "./workload.ts";

/** The server: `EDGE_OUTBOX_PG_URL`, else the local one the project's machines run. */
export const SERVER_URL = process.env.EDGE_OUTBOX_PG_URL || "postgres://postgres@127.0.0.1:5432/test";

/** A fresh database on the server; `drop` removes it. */
export async function benchDatabase(label: string): Promise<{ url: string; drop: () => Promise<void> }> {
  const name = `eo_bench_${label}_${process.pid}`;
  const admin = new pg.Client({ connectionString: SERVER_URL });
  await admin.connect();
  await admin.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
  await admin.query(`CREATE DATABASE "${name}"`);
  await admin.end();
  const url = new URL(SERVER_URL);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    drop: async () => {
      const client = new pg.Client({ connectionString: SERVER_URL });
      await client.connect();
      await client.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
      await client.end();
    },
  };
}

/** Commits `n` order messages through `store`, 500 per transaction. */
export async function fillStore(store: PostgresStore, n: number, first = 0): Promise<void> {
  for (let done = 0; done < n; ) {
    const count = Math.min(500, n - done);
    await store.withTransaction(async (tx) => {
      for (let k = 0; k < count; k++) {
        await store.addMessage(
          tx,
          prepareMessage(orderMessage(first + done + k), { maxMessageBytes: 1 << 20 }),
        );
      }
    });
    done += count;
  }
}

/** A store on an already migrated `table` of the database at `url`, for a child process; `close` ends its pool. */
export function attachPostgresStore(
  url: string,
  table: string,
): { store: PostgresStore; close: () => Promise<void> } {
  const pool = new pg.Pool({ connectionString: url, max: 2 });
  pool.on("error", () => {});
  return { store: new PostgresStore(pool, { table }), close: () => pool.end() };
}
