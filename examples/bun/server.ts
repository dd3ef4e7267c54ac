/**
 * edge-outbox on Bun: Bun.serve takes orders; the outbox relays in-process with start(),
 * and wake() sends a committed order at once instead of waiting for the next period.
 *
 *   WEBHOOK_URL=... WEBHOOK_SECRET=whsec_... bun run server.ts
 */
import { createClient } from "@libsql/client";
import { Outbox } from "edge-outbox";
import { httpSender } from "edge-outbox/http";
import { LibsqlStore } from "edge-outbox/libsql";

function env(name: string, fallback?: string): string {
  const value = Bun.env[name] ?? fallback;
  if (value === undefined) throw new Error(`set ${name}`);
  return value;
}

const client = createClient({ url: env("DATABASE_URL", "file:orders.db") });
const store = new LibsqlStore(client);
await store.migrate();
await client.execute("CREATE TABLE IF NOT EXISTS orders (id TEXT PRIMARY KEY, total INTEGER NOT NULL)");

const outbox = new Outbox(store, httpSender({ url: env("WEBHOOK_URL"), secret: env("WEBHOOK_SECRET") }), {
  period: Number(env("OUTBOX_PERIOD_MS", "5000")), // how often the loop looks without a wake()
});
outbox.start();

const server = Bun.serve({
  hostname: env("HOST", "127.0.0.1"),
  port: Number(env("PORT", "3000")),
  routes: {
    "/orders": {
      async POST(request) {
        const order = (await request.json()) as { id: string; total: number };
        // Waits for the write lock asynchronously; commits on resolve, rolls back on a throw.
        await store.withTransaction(async (tx) => {
          await tx.execute({
            sql: "INSERT INTO orders (id, total) VALUES (?, ?)",
            args: [order.id, order.total],
          });
          await outbox.addMessage(tx, { key: `order:${order.id}`, value: JSON.stringify(order) });
        });
        outbox.wake(); // relay now; the loop would otherwise pick it up within `period`
        return Response.json({ placed: order.id }, { status: 201 });
      },
    },
    "/outbox/stats": { GET: async () => Response.json(await outbox.stats()) },
  },
  fetch: () => new Response("not found", { status: 404 }),
});
console.log(`listening on ${server.url}`);

// Graceful shutdown: stop taking requests, let the batch in flight record its outcome, close.
for (const signal of ["SIGTERM", "SIGINT"] as const) {
  process.on(signal, async () => {
    await server.stop();
    await outbox.stop();
    client.close();
    console.log("stopped");
    process.exit(0);
  });
}
