/**
 * D1Store inside a Worker in workerd (Miniflare): the Worker is bundled with esbuild as wrangler
 * would (`bundleWorker`), writes orders and their messages in one `env.DB.batch`, and relays them with
 * `outbox.tick()` to a receiver on 127.0.0.1 that fails every message's first attempt, so that
 * each one is retried, and verifies every signature with the reference `standardwebhooks`.
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { Miniflare } from "miniflare";
import { Webhook } from "standardwebhooks";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { webhookSecret } from "../runtimes/support.ts";
import { bundleWorker } from "../support/worker-bundle.ts";

interface Delivery {
  id: string;
  status: number;
  body: string;
  headers: Record<string, string>;
}

/** A receiver that answers 503 to the first attempt of each message id, 204 afterwards. */
async function flakyReceiver(): Promise<{ url: string; deliveries: Delivery[]; server: Server }> {
  const deliveries: Delivery[] = [];
  const seen = new Set<string>();
  const server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on("data", (chunk: Buffer) => chunks.push(chunk));
    request.on("end", () => {
      const id = String(request.headers["webhook-id"]);
      const status = seen.has(id) ? 204 : 503;
      seen.add(id);
      deliveries.push({
        id,
        status,
        body: Buffer.concat(chunks).toString("utf8"),
        headers: request.headers as Record<string, string>,
      });
      response.writeHead(status).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks`, deliveries, server };
}

describe("D1Store in a Worker (workerd, Miniflare's D1)", { timeout: 120_000 }, () => {
  let mf: Miniflare;
  let receiver: Awaited<ReturnType<typeof flakyReceiver>>;
  const secret = webhookSecret();
  const call = async (path: string, init?: { method: string; body: string }) => {
    const response = await mf.dispatchFetch(`http://worker${path}`, init);
    const text = await response.text();
    return { status: response.status, json: text === "" ? undefined : JSON.parse(text) };
  };

  beforeAll(async () => {
    receiver = await flakyReceiver();
    mf = new Miniflare({
      modules: true,
      script: await bundleWorker("test/d1/fixtures/relay-worker.ts"),
      compatibilityDate: "2025-01-01",
      d1Databases: ["DB"],
      bindings: { WEBHOOK_URL: receiver.url, WEBHOOK_SECRET: secret },
    });
    expect((await call("/migrate")).status).toBe(204);
  }, 120_000);

  afterAll(async () => {
    await mf?.dispose();
    receiver?.server.closeAllConnections();
    await new Promise((resolve) => receiver?.server.close(resolve));
  });

  it("relays every committed order once, retrying failed attempts; a failed batch leaves no message", async () => {
    const ids = Array.from({ length: 10 }, (_, i) => `order-${i}`);
    for (const id of ids) {
      const posted = await call("/orders", { method: "POST", body: JSON.stringify({ id, total: 10 }) });
      expect(posted.status).toBe(202);
    }
    // The same order again: its INSERT violates the primary key, so the whole batch (the message
    // with it) rolls back.
    const duplicate = await call("/orders", {
      method: "POST",
      body: JSON.stringify({ id: "order-0", total: 99 }),
    });
    expect(duplicate.status).toBe(409);
    expect((await call("/stats")).json).toMatchObject({ pending: 10, inFlight: 0, dead: 0 });

    // Two relays side by side, then more ticks until drained (bounded).
    const first = await Promise.all([call("/tick"), call("/tick")]);
    for (const tick of first) expect(tick.status).toBe(200);
    for (let i = 0; i < 20; i++) {
      const stats = (await call("/stats")).json as { pending: number; inFlight: number };
      if (stats.pending === 0 && stats.inFlight === 0) break;
      await new Promise((resolve) => setTimeout(resolve, 50));
      await call("/tick");
    }
    expect((await call("/stats")).json).toMatchObject({ pending: 0, inFlight: 0, dead: 0 });

    const delivered = receiver.deliveries.filter((d) => d.status === 204);
    // Each message delivered exactly once after its failed first attempt.
    expect(delivered.map((d) => JSON.parse(d.body).id).sort()).toEqual([...ids].sort());
    expect(new Set(delivered.map((d) => d.id)).size).toBe(10);
    for (const d of delivered)
      expect(receiver.deliveries.filter((x) => x.id === d.id && x.status === 503)).toHaveLength(1);
    expect(JSON.parse(delivered.find((d) => JSON.parse(d.body).id === "order-0")!.body).total).toBe(10);
    const verifier = new Webhook(secret);
    for (const d of receiver.deliveries) {
      expect(d.id).toMatch(/^msg_[0-9a-z]{16}_[1-9][0-9]*$/);
      verifier.verify(d.body, d.headers);
    }
  });
});
