/**
 * Calls the Vercel example's routes the way Vercel does (a web `Request` in, a `Response` out)
 * and prints one JSON line for test/runtimes/node.test.ts. Run with tsx from examples/vercel so
 * that its tsconfig "paths" map edge-outbox to the sources.
 */
type Handler = (request: Request) => Promise<Response>;

// Imported by URL so that the repository's type check (which has no "paths") does not follow
// them; examples/vercel/tsconfig.json type-checks them.
const example = (path: string) => new URL(`../../../examples/vercel/${path}`, import.meta.url).href;
const { GET } = (await import(example("app/api/outbox/route.ts"))) as { GET: Handler };
const { POST } = (await import(example("app/api/orders/route.ts"))) as { POST: Handler };
const { client, store } = (await import(example("lib/outbox.ts"))) as {
  client: { execute(sql: string): Promise<unknown>; close(): void };
  store: { migrate(): Promise<void> };
};

await store.migrate();
await client.execute("CREATE TABLE IF NOT EXISTS orders (id TEXT PRIMARY KEY, total INTEGER NOT NULL)");

const cronUrl = "https://example.vercel.app/api/outbox";
const unauthorized = (await GET(new Request(cronUrl))).status;
const wrongSecret = (await GET(new Request(cronUrl, { headers: { authorization: "Bearer nope" } }))).status;

let post = 0;
for (const id of ["v1", "v2"]) {
  const response = await POST(
    new Request("https://example.vercel.app/api/orders", {
      method: "POST",
      body: JSON.stringify({ id, total: 1 }),
    }),
  );
  post = response.status;
}

const response = await GET(
  new Request(cronUrl, { headers: { authorization: `Bearer ${process.env.CRON_SECRET}` } }),
);
const { sent, failed, dead } = (await response.json()) as { sent: number; failed: number; dead: number };
client.close();
console.log(
  JSON.stringify({ unauthorized, wrongSecret, post, tick: { status: response.status, sent, failed, dead } }),
);
