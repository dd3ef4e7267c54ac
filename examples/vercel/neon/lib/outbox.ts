/**
 * The outbox of the Vercel + Neon variant: Neon's serverless `Pool` (PostgreSQL over
 * WebSockets, with interactive transactions) holds the orders and the outbox, so an order and
 * its message commit in one transaction. Webhooks go out signed (Standard Webhooks).
 *
 * Neon's HTTP `neon()` function cannot hold a transaction open, so it cannot carry the outbox
 * (edge-outbox refuses it). Node 22 and later (Vercel's default) have a global WebSocket; on
 * Node 20 add `neonConfig.webSocketConstructor = ws` (from the `ws` package).
 */
import { Pool, type PoolClient } from "@neondatabase/serverless";
import { Outbox } from "edge-outbox";
import { httpSender } from "edge-outbox/http";
import { PostgresStore } from "edge-outbox/postgres";

function env(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`set ${name}`);
  return value;
}

/** One pool per function instance, reused across invocations (Fluid compute keeps it warm). */
export const pool = new Pool({ connectionString: env("DATABASE_URL") });
// An idle connection Neon closes (scale to zero) must not take the function down.
pool.on("error", (error: Error) => console.error("idle Neon connection failed", error));

/** Run `await store.migrate()` once per deployment (it is idempotent), e.g. from a build step. */
export const store = new PostgresStore<PoolClient>(pool);

export const outbox = new Outbox(
  store,
  httpSender({ url: env("WEBHOOK_URL"), secret: env("WEBHOOK_SECRET") }),
);
