import { relayOnce } from "../shared/scenario.ts";

function assertEquals(actual: unknown, expected: unknown): void {
  const a = JSON.stringify(actual);
  const e = JSON.stringify(expected);
  if (a !== e) throw new Error(`expected ${e}, got ${a}`);
}

Deno.test("Outbox + MemoryStore relays to a Deno.serve receiver on 127.0.0.1", async () => {
  const received: { id: string | null; key: string | null; body: string }[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (request) => {
    received.push({
      id: request.headers.get("webhook-id"),
      key: request.headers.get("x-key"),
      body: await request.text(),
    });
    return new Response(null, { status: 204 });
  });
  try {
    const { result, errors, stats } = await relayOnce(`http://127.0.0.1:${server.addr.port}/hook`, 10);
    assertEquals([result.sent, result.failed, result.dead, result.batches], [10, 0, 0, 3]);
    assertEquals(errors, []);
    assertEquals(stats.pending, 0);
    assertEquals(
      received.map((r) => r.key),
      Array.from({ length: 10 }, (_, i) => `order:${i}`),
    );
    assertEquals(new Set(received.map((r) => r.id)).size, 10);
    assertEquals(JSON.parse(received[3]!.body), { order: 3 });
  } finally {
    await server.shutdown();
  }
});
