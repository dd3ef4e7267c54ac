import { expect, test } from "bun:test";
import { relayOnce } from "../shared/scenario.ts";

test("Outbox + MemoryStore relays to a Bun.serve receiver on 127.0.0.1", async () => {
  const received: { id: string | null; key: string | null; body: string }[] = [];
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    async fetch(request) {
      received.push({
        id: request.headers.get("webhook-id"),
        key: request.headers.get("x-key"),
        body: await request.text(),
      });
      return new Response(null, { status: 204 });
    },
  });
  try {
    const { result, errors, stats } = await relayOnce(`http://127.0.0.1:${server.port}/hook`, 10);
    expect(result).toMatchObject({ sent: 10, failed: 0, dead: 0, batches: 3 });
    expect(errors).toEqual([]);
    expect(stats.pending).toBe(0);
    expect(received.map((r) => r.key)).toEqual(Array.from({ length: 10 }, (_, i) => `order:${i}`));
    expect(new Set(received.map((r) => r.id)).size).toBe(10);
    expect(JSON.parse(received[3]!.body)).toEqual({ order: 3 });
  } finally {
    await server.stop(true);
  }
});
