/**
 * The Deno example's logic (examples/deno/app.ts) on a `file:` libSQL database: orders placed
 * through its fetch handler, relayed by its cronHandler route to a Deno.serve receiver, signed
 * so that the reference `standardwebhooks` verifier accepts them.
 */
import { Webhook } from "standardwebhooks";
import { createApp } from "../../../examples/deno/app.ts";

function assert(condition: unknown, message: string): asserts condition {
  if (!condition) throw new Error(message);
}

Deno.test("the Deno example places orders atomically and relays them from its cron route", async () => {
  const dir = await Deno.makeTempDir({ prefix: "edge-outbox-deno-example-" });
  const webhookSecret = `whsec_${btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(24))))}`;
  const received: { headers: Headers; body: string }[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (request) => {
    received.push({ headers: request.headers, body: await request.text() });
    return new Response(null, { status: 204 });
  });
  const app = await createApp({
    databaseUrl: `file:${dir}/orders.db`,
    webhookUrl: `http://127.0.0.1:${server.addr.port}/hooks`,
    webhookSecret,
    cronSecret: "deno-cron-secret",
  });
  const call = (path: string, init?: RequestInit) => app.fetch(new Request(`http://app.local${path}`, init));
  try {
    for (const id of ["d1", "d2"]) {
      const response = await call("/orders", { method: "POST", body: JSON.stringify({ id, total: 7 }) });
      assert(response.status === 201, `POST /orders ${id}: ${response.status}`);
    }
    // A duplicate id fails the order's INSERT: its message must not be written either.
    const duplicate = await call("/orders", { method: "POST", body: JSON.stringify({ id: "d1", total: 7 }) })
      .then((r) => r.status)
      .catch(() => "threw");
    assert(duplicate === "threw", `a duplicate order must fail, got ${duplicate}`);
    const stats = await (await call("/outbox/stats")).json();
    assert(stats.pending === 2, `2 pending, got ${JSON.stringify(stats)}`);

    const denied = await call("/outbox/tick", { method: "POST" });
    assert(denied.status === 401, `tick without the secret: ${denied.status}`);
    const tick = await call("/outbox/tick", {
      method: "POST",
      headers: { authorization: "Bearer deno-cron-secret" },
    });
    const result = await tick.json();
    assert(
      tick.status === 200 && result.sent === 2 && result.failed === 0,
      `tick: ${JSON.stringify(result)}`,
    );

    const verifier = new Webhook(webhookSecret);
    const bodies = received.map(
      (r) => verifier.verify(r.body, Object.fromEntries(r.headers)) as { order: { id: string } },
    );
    // The HTTP sender sends a batch concurrently: arrival order is not delivery order.
    assert(
      JSON.stringify(bodies.map((b) => b.order.id).sort()) === '["d1","d2"]',
      `received ${JSON.stringify(bodies)}`,
    );
    const orders = await app.client.execute("SELECT count(*) AS n FROM orders");
    assert(Number(orders.rows[0]!.n) === 2, "2 orders in the table");
  } finally {
    app.close();
    await server.shutdown();
    await Deno.remove(dir, { recursive: true });
  }
});
