/**
 * The Vercel + Neon example (examples/vercel/neon) on the real server: its routes driven as
 * Vercel calls them, with the example's own Neon Pool reaching PostgreSQL through a local
 * WebSocket relay (what Neon's proxy does). An order and its message commit together; a
 * duplicate order rolls back with its message; the cron route relays signed webhooks.
 */
import { join } from "node:path";
import { Webhook } from "standardwebhooks";
import { describe, expect, it, vi } from "vitest";
import { bin, ROOT, run, runtimeEnv, startReceiver, webhookSecret } from "../runtimes/support.ts";
import { PG_URL, serverDatabase } from "./helpers.ts";

vi.setConfig({ testTimeout: 120_000, hookTimeout: 120_000 });

const url = serverDatabase("vercel");

describe.runIf(PG_URL !== undefined)("Vercel + Neon example", () => {
  it("POST /api/orders commits the order with its message (a duplicate rolls both back); the cron route relays", async () => {
    const receiver = await startReceiver();
    const secret = webhookSecret();
    try {
      const result = await run(bin("tsx"), [join(ROOT, "test/postgres/vercel-neon-harness.ts")], {
        cwd: join(ROOT, "examples/vercel"),
        env: runtimeEnv({
          DATABASE_URL: url(),
          WEBHOOK_URL: `${receiver.url}/hooks`,
          WEBHOOK_SECRET: secret,
          CRON_SECRET: "vercel-cron-secret",
        }),
        timeoutMs: 90_000,
      });
      expect(result.code, result.output).toBe(0);
      const report = JSON.parse(result.output.trim().split("\n").at(-1) ?? "");
      expect(report).toEqual({
        unauthorized: 401,
        placed: [201, 201, 409],
        pending: 2,
        orders: ["n1", "n2"],
        tick: { status: 200, sent: 2, failed: 0, dead: 0 },
      });
      expect(receiver.requests.map((r) => JSON.parse(r.body).id)).toEqual(["n1", "n2"]);
      const verifier = new Webhook(secret);
      for (const request of receiver.requests)
        verifier.verify(request.body, request.headers as Record<string, string>);
    } finally {
      await receiver.close();
    }
  });
});
