/**
 * The Worker of the D1 benchmarks (bench/d1.ts), run in Miniflare: every side runs inside
 * workerd against its D1 binding, as in production, and the benchmark times each request from
 * Node. Endpoints (POST, query parameters):
 * - `/setup`: the tables (`bench_ours` and `bench_raw` for the relay, `bench_add` and
 *   `bench_add_raw` plus an `orders` table for addMessage);
 * - `/fill?table=&n=`: `n` order events into an outbox table through D1Store;
 * - `/relay?n=&batch=`: `outbox.tick()` over `bench_ours` with a null sender;
 * - `/minimal?n=&batch=`: a minimal hand-written relay over `bench_raw`;
 * - `/add?mode=ours|raw&batches=&per=`: `batches` batches of `per` orders each with its message.
 */
import { type D1Database, type D1PreparedStatement, D1Store } from "../../adapters/d1.ts";
import { Outbox, prepareMessage } from "../../mod.ts";
import { nullSender } from "./senders.ts";
import { orderMessage } from "./workload.ts";

interface Env {
  DB: D1Database;
}

const NOW = "CAST(unixepoch('subsec') * 1000 AS INTEGER)";

/**
 * The least a relay on the store's table can do: one claim (`UPDATE ... RETURNING` the rows)
 * and one delete of the ids it "sent" per batch, two round trips; no message objects, no
 * validation, no backoff, no telemetry.
 */
async function minimalRelay(db: D1Database, table: string, batch: number): Promise<number> {
  const t = `"${table}"`;
  const claim = db.prepare(`UPDATE ${t} SET claim_token = ?1, lease_until = ${NOW} + 30000
WHERE id IN (SELECT id FROM ${t} WHERE status = 0 AND available_at <= ${NOW}
  AND (lease_until IS NULL OR lease_until <= ${NOW}) ORDER BY created_at, id LIMIT ?2)
RETURNING id, key, value, headers, created_at, retries`);
  const remove = db.prepare(
    `DELETE FROM ${t} WHERE id IN (SELECT value FROM json_each(?1)) AND claim_token = ?2`,
  );
  let total = 0;
  // Bounded: each round deletes what it claimed, and an empty claim ends the loop.
  for (let round = 0; ; round++) {
    const token = `raw-${round}-${crypto.randomUUID()}`;
    const { results } = await claim.bind(token, batch).all<{ id: number }>();
    if (results.length === 0) return total;
    const done = await remove.bind(JSON.stringify(results.map((row) => row.id)), token).run();
    total += done.meta.changes;
  }
}

/** `n` order events into `store`'s table, 500 to a batch. */
async function fill(db: D1Database, store: D1Store, n: number): Promise<void> {
  for (let done = 0; done < n; ) {
    const statements: D1PreparedStatement[] = [];
    const count = Math.min(500, n - done);
    for (let i = 0; i < count; i++) {
      await store.addMessage(
        statements,
        prepareMessage(orderMessage(done + i), { maxMessageBytes: 1 << 20 }),
      );
    }
    await db.batch(statements);
    done += count;
  }
}

/** `batches` batches of `per` orders each with its message: through the store, or a raw INSERT. */
async function add(db: D1Database, mode: string, batches: number, per: number, from: number): Promise<void> {
  const store = new D1Store(db, { table: "bench_add" });
  const outbox = new Outbox(store, nullSender);
  const order = db.prepare("INSERT INTO orders (id, total) VALUES (?1, ?2)");
  const raw = db.prepare(
    `INSERT INTO "bench_add_raw" (key, value, headers, created_at, available_at) VALUES (?1, ?2, ?3, ?4, 0)`,
  );
  const encoder = new TextEncoder();
  let id = from;
  for (let b = 0; b < batches; b++) {
    const statements: D1PreparedStatement[] = [];
    for (let i = 0; i < per; i++, id++) {
      statements.push(order.bind(id, id % 10_000));
      const message = orderMessage(id);
      if (mode === "ours") await outbox.addMessage(statements, message);
      else
        statements.push(
          raw.bind(
            message.key,
            encoder.encode(message.value as string),
            JSON.stringify(message.headers),
            Date.now(),
          ),
        );
    }
    await db.batch(statements);
  }
}

export default {
  async fetch(request: Request, env: Env): Promise<Response> {
    const url = new URL(request.url);
    const param = (name: string) => Number(url.searchParams.get(name) ?? "0");
    const db = env.DB;
    switch (url.pathname) {
      case "/setup": {
        for (const table of ["bench_ours", "bench_raw", "bench_add", "bench_add_raw"])
          await new D1Store(db, { table }).migrate();
        await db
          .prepare("CREATE TABLE IF NOT EXISTS orders (id INTEGER PRIMARY KEY, total INTEGER NOT NULL)")
          .run();
        return Response.json({ ok: true });
      }
      case "/fill": {
        const table = url.searchParams.get("table") ?? "bench_ours";
        await fill(db, new D1Store(db, { table }), param("n"));
        return Response.json({ ok: true });
      }
      case "/relay": {
        const outbox = new Outbox(new D1Store(db, { table: "bench_ours" }), nullSender, {
          batchSize: param("batch"),
        });
        const result = await outbox.tick();
        return Response.json({ sent: result.sent });
      }
      case "/minimal":
        return Response.json({ sent: await minimalRelay(db, "bench_raw", param("batch")) });
      case "/add":
        await add(db, url.searchParams.get("mode") ?? "ours", param("batches"), param("per"), param("from"));
        return Response.json({ ok: true });
      case "/clear":
        await db.batch([
          db.prepare("DELETE FROM orders"),
          db.prepare(`DELETE FROM "bench_add"`),
          db.prepare(`DELETE FROM "bench_add_raw"`),
        ]);
        return Response.json({ ok: true });
      default:
        return new Response(null, { status: 404 });
    }
  },
};
