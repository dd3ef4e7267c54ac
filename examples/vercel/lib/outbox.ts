/**
 * The outbox of the Vercel example, shared by its routes: Turso (libSQL over HTTP) holds the
 * orders and the outbox; webhooks go out signed (Standard Webhooks).
 */
import { createClient } from "@libsql/client";
import { Outbox } from "edge-outbox";
import { httpSender } from "edge-outbox/http";
import { LibsqlStore } from "edge-outbox/libsql";

function env(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`set ${name}`);
  return value;
}

export const client = createClient({
  url: env("TURSO_DATABASE_URL"),
  authToken: process.env.TURSO_AUTH_TOKEN,
});

/** Run `await store.migrate()` once per deployment (it is idempotent), e.g. from a build step. */
export const store = new LibsqlStore(client);

export const outbox = new Outbox(
  store,
  httpSender({ url: env("WEBHOOK_URL"), secret: env("WEBHOOK_SECRET") }),
);
