/**
 * The Cloudflare example in workerd: bundled with esbuild (as wrangler would), run in Miniflare,
 * orders posted to its fetch handler, then its `scheduled` handler relays them to a receiver on
 * 127.0.0.1, signed so that the reference `standardwebhooks` verifier accepts them.
 */
import { Miniflare } from "miniflare";
import { Webhook } from "standardwebhooks";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Receiver, startReceiver, webhookSecret } from "../support.ts";
import { bundle, type ScheduledFetcher } from "./bundle.ts";

describe("examples/cloudflare in workerd (Miniflare)", { timeout: 60_000 }, () => {
  let mf: Miniflare;
  let receiver: Receiver;
  const secret = webhookSecret();

  beforeAll(async () => {
    receiver = await startReceiver();
    mf = new Miniflare({
      modules: true,
      script: await bundle("examples/cloudflare/worker.ts"),
      compatibilityDate: "2025-01-01",
      bindings: { WEBHOOK_URL: `${receiver.url}/webhooks/orders`, WEBHOOK_SECRET: secret },
    });
    await mf.ready;
  }, 90_000);

  afterAll(async () => {
    await mf?.dispose();
    await receiver?.close();
  });

  it("relays orders from its scheduled handler to a loopback receiver", async () => {
    const ids = ["A1", "A2", "A3", "A4", "A5"];
    for (const id of ids) {
      const response = await mf.dispatchFetch("http://worker/orders", {
        method: "POST",
        body: JSON.stringify({ id, total: 10 }),
        headers: { "content-type": "application/json" },
      });
      expect(response.status).toBe(202);
      await response.arrayBuffer();
    }
    const before = await (await mf.dispatchFetch("http://worker/stats")).json();
    expect(before).toMatchObject({ pending: 5 });

    const worker = (await mf.getWorker()) as unknown as ScheduledFetcher;
    // scheduled() resolves once the handler and its waitUntil promises have settled.
    const outcome = await worker.scheduled({ cron: "* * * * *" });
    expect(outcome.outcome).toBe("ok");

    // Concurrent requests: arrival order is not delivery order.
    expect(receiver.requests.map((r) => JSON.parse(r.body).id).sort()).toEqual([...ids].sort());
    const verifier = new Webhook(secret);
    for (const request of receiver.requests) {
      expect(request.method).toBe("POST");
      expect(request.path).toBe("/webhooks/orders");
      verifier.verify(request.body, request.headers as Record<string, string>);
    }
    expect(new Set(receiver.requests.map((r) => r.headers["webhook-id"])).size).toBe(5);
    const after = await (await mf.dispatchFetch("http://worker/stats")).json();
    expect(after).toMatchObject({ pending: 0, inFlight: 0, dead: 0 });
  });
});
