/**
 * edge-outbox on Deno (Deploy or self-hosted): Deno.serve takes orders, Deno.cron relays.
 *
 *   deno run -A --unstable-cron main.ts
 */
import { createApp } from "./app.ts";

function env(name: string, fallback?: string): string {
  const value = Deno.env.get(name) ?? fallback;
  if (value === undefined) throw new Error(`set ${name}`);
  return value;
}

const app = await createApp({
  databaseUrl: env("DATABASE_URL", "file:orders.db"),
  authToken: Deno.env.get("DATABASE_AUTH_TOKEN"),
  webhookUrl: env("WEBHOOK_URL"),
  webhookSecret: env("WEBHOOK_SECRET"),
  cronSecret: env("CRON_SECRET"),
});

// Once a minute, relay for at most 50 s so that two runs never pile up.
Deno.cron("relay outbox", "* * * * *", async () => {
  const result = await app.outbox.tick({ budgetMs: 50_000 });
  if (result.batches > 0) console.log("[outbox]", result);
});

Deno.serve({ port: Number(env("PORT", "8000")) }, app.fetch);
