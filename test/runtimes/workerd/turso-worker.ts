/**
 * A Worker relaying a Turso outbox: `LibsqlStore` over `@libsql/client/web` (Hrana over HTTP,
 * fetch only), as a Worker talks to Turso. Used by test/runtimes/workerd/turso.test.ts, where
 * the database is the Hrana stand-in on 127.0.0.1.
 *
 * A client, store and outbox are made per request (and the outbox disposed of at its end):
 * Workers forbid using one request's I/O objects (the client's HTTP streams) from another.
 */
import { createClient } from "@libsql/client/web";
import { LibsqlStore } from "../../../adapters/libsql.ts";
import { Outbox } from "../../../mod.ts";
import { exactCountSender } from "../../support/exact-count-sender.ts";

interface Env {
  DATABASE_URL: string;
  WEBHOOK_URL: string;
  WEBHOOK_SECRET: string;
}

function open(env: Env) {
  const client = createClient({ url: env.DATABASE_URL });
  const store = new LibsqlStore(client);
  const errors: string[] = [];
  const outbox = new Outbox(store, exactCountSender(env), {
    batchSize: 5,
    maxRetries: 5,
    sendTimeout: 5_000,
    backoff: { initialDelay: 1, maxDelay: 1 },
    onError: (error) => errors.push(String(error)),
  });
  return { client, store, outbox, errors };
}

export default {
  async fetch(request: Request, env: Env): Promise<Response> {
    const url = new URL(request.url);
    const { client, store, outbox, errors } = open(env);
    try {
      if (url.pathname === "/migrate") {
        await store.migrate();
        await client.execute("CREATE TABLE IF NOT EXISTS orders (id TEXT PRIMARY KEY)");
        return new Response(null, { status: 204 });
      }
      if (url.pathname === "/orders") {
        const ids = (await request.json()) as string[];
        // The orders and their messages in one interactive transaction over HTTP.
        await store.withTransaction(async (tx) => {
          for (const id of ids) {
            await tx.execute({ sql: "INSERT INTO orders (id) VALUES (?)", args: [id] });
            await outbox.addMessage(tx, { key: `order:${id}`, value: JSON.stringify({ id }) });
          }
        });
        return new Response(null, { status: 204 });
      }
      if (url.pathname === "/tick") {
        const result = await outbox.tick();
        return Response.json({ result, errors });
      }
      if (url.pathname === "/stats") return Response.json(await store.stats());
      return new Response("not found", { status: 404 });
    } catch (error) {
      return Response.json({ error: String(error), errors }, { status: 500 });
    } finally {
      await outbox[Symbol.asyncDispose]();
      client.close();
    }
  },
};
