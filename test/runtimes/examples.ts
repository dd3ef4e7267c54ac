/**
 * The shared check of the long-running server examples (Bun, Node): place orders over HTTP,
 * see them arrive signed at a loopback receiver, then shut down with SIGTERM.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Webhook } from "standardwebhooks";
import { expect } from "vitest";
import { waitFor } from "../support/senders.ts";
import { runtimeEnv, startReceiver, startServer, webhookSecret } from "./support.ts";

/** Runs the example server `args` (in `cwd`) against a fresh `file:` database. */
export async function checkServerExample(
  command: string,
  args: string[],
  cwd: string,
  env: Record<string, string> = {},
): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "edge-outbox-example-"));
  const receiver = await startReceiver();
  const secret = webhookSecret();
  const server = await startServer(command, args, {
    cwd,
    env: runtimeEnv({
      PORT: "0",
      HOST: "127.0.0.1",
      DATABASE_URL: `file:${join(dir, "orders.db")}`,
      WEBHOOK_URL: `${receiver.url}/hooks`,
      WEBHOOK_SECRET: secret,
      // A loop period far beyond the waits below: only wake() can deliver in time.
      OUTBOX_PERIOD_MS: "600000",
      ...env,
    }),
  });
  try {
    const ids = ["n1", "n2", "n3"];
    for (const id of ids) {
      const response = await fetch(`${server.url}/orders`, {
        method: "POST",
        body: JSON.stringify({ id, total: 5 }),
      });
      expect(response.status, server.output()).toBe(201);
    }
    await waitFor(() => receiver.requests.length >= ids.length, 20_000);
    expect(receiver.requests.map((r) => JSON.parse(r.body).id).sort()).toEqual(ids);
    const verifier = new Webhook(secret);
    for (const request of receiver.requests)
      verifier.verify(request.body, request.headers as Record<string, string>);
    // The receiver has answered; the relay records the outcomes just after.
    let stats: unknown;
    await waitFor(async () => {
      stats = await (await fetch(`${server.url}/outbox/stats`)).json();
      return (stats as { inFlight: number }).inFlight === 0;
    }, 20_000);
    expect(stats).toMatchObject({ pending: 0, inFlight: 0, dead: 0 });

    const exit = await server.stop("SIGTERM");
    expect(exit.code, exit.output).toBe(0);
    expect(exit.output).toContain("stopped");
  } finally {
    await server.stop("SIGKILL");
    await receiver.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
