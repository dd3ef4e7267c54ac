/**
 * edge-outbox on Node.js: a plain node:http server takes orders, the outbox relays in-process
 * with start(), and SIGTERM shuts down gracefully (the batch in flight records its outcome).
 *
 *   WEBHOOK_URL=... WEBHOOK_SECRET=whsec_... npx tsx server.ts
 *   DATABASE_URL=postgres://... WEBHOOK_URL=... WEBHOOK_SECRET=... npx tsx server.ts   # PostgreSQL
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { createClient } from "@libsql/client";
import { Outbox } from "edge-outbox";
import { httpSender } from "edge-outbox/http";
import { LibsqlStore } from "edge-outbox/libsql";
import { PostgresStore } from "edge-outbox/postgres";

function env(name: string, fallback?: string): string {
  const value = process.env[name] ?? fallback;
  if (value === undefined) throw new Error(`set ${name}`);
  return value;
}

const sender = httpSender({ url: env("WEBHOOK_URL"), secret: env("WEBHOOK_SECRET") });
const options = { period: Number(env("OUTBOX_PERIOD_MS", "5000")) }; // how often the loop looks without a wake()
const url = env("DATABASE_URL", "file:orders.db");
// postgres://... runs on PostgreSQL (node-postgres), anything else on libSQL.
const db: OrdersDatabase = /^postgres(ql)?:/.test(url) ? await openPostgres(url) : await openLibsql(url);
const outbox = db.outbox;
outbox.start();

type Order = { id: string; total: number };

/** Orders and their outbox in one database. */
interface OrdersDatabase {
  outbox: Pick<Outbox<never>, "start" | "stop" | "wake" | "stats">;
  /** The order and its message in one transaction. */
  placeOrder(order: Order): Promise<void>;
  close(): Promise<void>;
}

async function placeOrder(order: Order): Promise<void> {
  await db.placeOrder(order);
  outbox.wake();
}

async function openLibsql(url: string): Promise<OrdersDatabase> {
  const client = createClient({ url });
  const store = new LibsqlStore(client);
  await store.migrate();
  await client.execute("CREATE TABLE IF NOT EXISTS orders (id TEXT PRIMARY KEY, total INTEGER NOT NULL)");
  const outbox = new Outbox(store, sender, options);
  return {
    outbox,
    // withTransaction waits for SQLite's one write lock asynchronously (the relay takes it too),
    // commits when the function resolves and rolls back when it throws.
    placeOrder: (order) =>
      store.withTransaction(async (tx) => {
        await tx.execute({
          sql: "INSERT INTO orders (id, total) VALUES (?, ?)",
          args: [order.id, order.total],
        });
        await outbox.addMessage(tx, { key: `order:${order.id}`, value: JSON.stringify(order) });
      }),
    close: async () => client.close(),
  };
}

async function openPostgres(url: string): Promise<OrdersDatabase> {
  const { default: pg } = await import("pg"); // only needed on PostgreSQL
  const pool = new pg.Pool({ connectionString: url });
  pool.on("error", (error) => console.error(`idle connection: ${error.message}`));
  const store = new PostgresStore<import("pg").PoolClient>(pool);
  await store.migrate();
  await pool.query("CREATE TABLE IF NOT EXISTS orders (id text PRIMARY KEY, total integer NOT NULL)");
  const outbox = new Outbox(store, sender, options);
  return {
    outbox,
    // withTransaction checks out a client, runs BEGIN ... COMMIT (ROLLBACK when it throws).
    placeOrder: (order) =>
      store.withTransaction(async (tx) => {
        await tx.query("INSERT INTO orders (id, total) VALUES ($1, $2)", [order.id, order.total]);
        await outbox.addMessage(tx, { key: `order:${order.id}`, value: JSON.stringify(order) });
      }),
    close: () => pool.end(),
  };
}

async function readJson(request: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  for await (const chunk of request) chunks.push(chunk as Buffer);
  return JSON.parse(Buffer.concat(chunks).toString("utf8"));
}

function reply(response: ServerResponse, status: number, body: unknown): void {
  response.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(body));
}

const server = createServer(async (request, response) => {
  try {
    if (request.method === "POST" && request.url === "/orders") {
      const order = (await readJson(request)) as Order;
      await placeOrder(order);
      return reply(response, 201, { placed: order.id });
    }
    if (request.method === "GET" && request.url === "/outbox/stats") {
      return reply(response, 200, await outbox.stats());
    }
    reply(response, 404, { error: "not found" });
  } catch (error) {
    console.error(error);
    reply(response, 500, { error: "internal error" });
  }
});

server.listen(Number(env("PORT", "3000")), env("HOST", "127.0.0.1"), () => {
  const address = server.address();
  if (address && typeof address === "object")
    console.log(`listening on http://${address.address}:${address.port}`);
});

// Graceful shutdown: refuse new connections, finish the batch in flight, close the database.
async function shutdown(signal: string): Promise<void> {
  console.log(`${signal}: shutting down`);
  server.close();
  server.closeIdleConnections();
  await outbox.stop();
  await db.close();
  console.log("stopped");
}
process.once("SIGTERM", () => void shutdown("SIGTERM"));
process.once("SIGINT", () => void shutdown("SIGINT"));
