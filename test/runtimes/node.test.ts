/**
 * Node.js: the Node example run as a server process (node:http, start()/wake(), SIGTERM), the
 * Vercel cron route driven as Vercel calls it, and a type check of the Node, Vercel and
 * Cloudflare examples against the sources (through each example's tsconfig "paths").
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { checkServerExample } from "./examples.ts";
import { bin, ROOT, run, runtimeEnv, startReceiver, webhookSecret } from "./support.ts";

describe("Node.js examples", { timeout: 90_000 }, () => {
  // tsc is CPU-bound: allow for a loaded 2-core machine.
  it("type-check", { timeout: 150_000 }, async () => {
    const examples = ["node", "vercel", "cloudflare"];
    const results = await Promise.all(
      examples.map((example) =>
        run(bin("tsc"), ["-p", `examples/${example}/tsconfig.json`], { timeoutMs: 140_000 }),
      ),
    );
    results.forEach((result, i) => {
      expect(result.code, `examples/${examples[i]}: ${result.output}`).toBe(0);
    });
  });

  it("runs the Node example: orders relayed at once by wake(), graceful SIGTERM", async () => {
    await checkServerExample(bin("tsx"), ["server.ts"], join(ROOT, "examples/node"));
  });

  it("runs the Vercel cron route: 401 without the secret, then a tick that relays", async () => {
    const dir = mkdtempSync(join(tmpdir(), "edge-outbox-vercel-"));
    const receiver = await startReceiver();
    try {
      const result = await run(bin("tsx"), [join(ROOT, "test/runtimes/node/vercel-harness.ts")], {
        cwd: join(ROOT, "examples/vercel"),
        env: runtimeEnv({
          TURSO_DATABASE_URL: `file:${join(dir, "app.db")}`,
          WEBHOOK_URL: `${receiver.url}/hooks`,
          WEBHOOK_SECRET: webhookSecret(),
          CRON_SECRET: "vercel-cron-secret",
        }),
        timeoutMs: 30_000,
      });
      expect(result.code, result.output).toBe(0);
      const report = JSON.parse(result.output.trim().split("\n").at(-1)!);
      expect(report).toEqual({
        unauthorized: 401,
        wrongSecret: 401,
        post: 201,
        tick: { status: 200, sent: 2, failed: 0, dead: 0 },
      });
      expect(receiver.requests.map((r) => JSON.parse(r.body).id)).toEqual(["v1", "v2"]);
    } finally {
      await receiver.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
