/**
 * Calls the Vercel + Neon example's routes the way Vercel does (a web `Request` in, a
 * `Response` out), with Neon's Pool reaching the local PostgreSQL through the WebSocket relay of
 * `ws-proxy.ts`, and prints one JSON line for test/postgres/vercel-neon.test.ts. Run with tsx
 * from examples/vercel so that its tsconfig "paths" map edge-outbox to the sources.
 */
import { startNeonProxy } from "./ws-proxy.ts";

type Handler = (request: Request) => Promise<Response>;

// Before the example's modules load: neonConfig is read when the Pool connects.
const proxy = await startNeonProxy();
// Imported by URL so that the repository's type check (which has no "paths") does not follow
// them; examples/vercel/tsconfig.json type-checks them.
const example = (path: string) => new URL(`../../examples/vercel/neon/${path}`, import.meta.url).href;
const { GET } = (await import(example("app/api/outbox/route.ts"))) as { GET: Handler };
const { POST } = (await import(example("app/api/orders/route.ts"))) as { POST: Handler };
const { pool, store } = (await import(example("lib/outbox.ts"))) as {
  pool: { query(sql: string): Promise<{ rows: Record<string, unknown>[] }>; end(): Promise<void> };
  store: { migrate(): Promise<void>; stats(): Promise<{ pending: number }> };
};

await store.migrate();
await pool.query("CREATE TABLE IF NOT EXISTS orders (id text PRIMARY KEY, total integer NOT NULL)");

const cronUrl = "https://example.vercel.app/api/outbox";
const unauthorized = (await GET(new Request(cronUrl))).status;

const placed: number[] = [];
for (const id of ["n1", "n2", "n1"]) {
  const response = await POST(
    new Request("https://example.vercel.app/api/orders", {
      method: "POST",
      body: JSON.stringify({ id, total: 1 }),
    }),
  );
  placed.push(response.status);
}
const pending = (await store.stats()).pending;

const response = await GET(
  new Request(cronUrl, { headers: { authorization: `Bearer ${process.env.CRON_SECRET}` } }),
);
const { sent, failed, dead } = (await response.json()) as { sent: number; failed: number; dead: number };
const orders = (await pool.query("SELECT id FROM orders ORDER BY id")).rows.map((row) => row.id);
await pool.end();
await proxy.close();
console.log(
  JSON.stringify({
    unauthorized,
    placed,
    pending,
    orders,
    tick: { status: response.status, sent, failed, dead },
  }),
);
