/**
 * `queueSender` against a real Cloudflare Queue in workerd (Miniflare): a producer Worker relays
 * its outbox onto the queue, a consumer Worker receives every message and reports it to a
 * receiver on 127.0.0.1. Checks ids, keys, headers, trace context and bytes end to end, the
 * split to Queues' count and byte limits, oversize messages, and producer errors.
 */
import { Miniflare } from "miniflare";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { type Receiver, startReceiver } from "../runtimes/support.ts";
import { waitFor } from "../support/senders.ts";
import { bundleWorker } from "../support/worker-bundle.ts";
import type { Consumed } from "./fixtures/consumer-worker.ts";
import type { AddRequest, TickResponse } from "./fixtures/producer-worker.ts";

const TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736";
const TRACEPARENT = `00-${TRACE_ID}-00f067aa0ba902b7-01`;

describe("queueSender with a Miniflare queue", { timeout: 90_000 }, () => {
  let mf: Miniflare;
  let receiver: Receiver;

  beforeAll(async () => {
    receiver = await startReceiver();
    mf = new Miniflare({
      compatibilityDate: "2025-01-01",
      workers: [
        {
          name: "producer",
          modules: true,
          script: await bundleWorker("test/queues/fixtures/producer-worker.ts"),
          queueProducers: { QUEUE: "outbox" },
        },
        {
          name: "consumer",
          modules: true,
          script: await bundleWorker("test/queues/fixtures/consumer-worker.ts"),
          bindings: { RECEIVER_URL: `${receiver.url}/consumed` },
          queueConsumers: { outbox: { maxBatchSize: 100, maxBatchTimeout: 0 } },
        },
      ],
    });
    await mf.ready;
  }, 90_000);

  afterAll(async () => {
    await mf?.dispose();
    await receiver?.close();
  });

  beforeEach(() => {
    receiver.requests.length = 0;
  });

  async function add(messages: AddRequest[]): Promise<void> {
    const response = await mf.dispatchFetch("http://producer/add", {
      method: "POST",
      body: JSON.stringify(messages),
    });
    expect(response.status, await response.text()).toBe(204);
  }

  async function tick(query = ""): Promise<TickResponse> {
    const response = await mf.dispatchFetch(`http://producer/tick${query}`, { method: "POST" });
    expect(response.status).toBe(200);
    return (await response.json()) as TickResponse;
  }

  function consumed(): Consumed[] {
    return receiver.requests.flatMap((request) => JSON.parse(request.body) as Consumed[]);
  }

  async function consumedKeys(prefix: string, count: number): Promise<Consumed[]> {
    const mine = () => consumed().filter((c) => c.key.startsWith(prefix));
    await waitFor(() => mine().length >= count, 30_000);
    return mine();
  }

  it("delivers every message once with its id, key, headers, trace context and exact bytes", async () => {
    const binary = new Uint8Array(256).map((_, i) => 255 - i); // every byte value; not UTF-8
    const messages: AddRequest[] = [
      {
        key: "rt:text",
        value: JSON.stringify({ order: 1, city: "Zürich" }),
        headers: { "content-type": "application/json" },
      },
      { key: "rt:unicode ключ 🎉", value: "漢字 ✓ \u{1F389} naïve" },
      { key: "rt:bom", value: "\uFEFFkeeps its byte order mark" },
      { key: "rt:binary", value: Buffer.from(binary).toString("base64"), binary: true },
      { key: "rt:empty", value: "" },
      { key: "rt:traced", value: "traced", headers: { traceparent: TRACEPARENT, "x-tenant": "acme" } },
    ];
    // 250 more, so the batch goes over in three sendBatch calls (100 messages each at most).
    for (let i = 0; i < 250; i++) messages.push({ key: `rt:bulk:${i}`, value: `message ${i}` });
    await add(messages);

    const { result, stats, calls, handed } = await tick();
    expect(result).toMatchObject({ sent: 256, failed: 0, dead: 0 });
    expect(stats).toMatchObject({ pending: 0, inFlight: 0 });
    expect(calls).toEqual([100, 100, 56]);

    const got = await consumedKeys("rt:", 256);
    expect(got).toHaveLength(256);
    // The consumer sees the outbox's own ids, each once, whatever id Queues gave the message.
    expect(got.map((c) => c.id).sort()).toEqual([...handed].sort());
    expect(new Set(handed).size).toBe(256);
    expect(new Set(got.map((c) => c.queueMessageId)).size).toBe(256);
    const byKey = new Map(got.map((c) => [c.key, c]));
    for (const sent of messages) {
      const received = byKey.get(sent.key);
      expect(received, sent.key).toBeDefined();
      const bytes = sent.binary ? Buffer.from(sent.value, "base64") : Buffer.from(sent.value, "utf8");
      expect(Buffer.from(received!.value, "base64").equals(bytes), sent.key).toBe(true);
      expect(received!.headers).toMatchObject(sent.headers ?? {});
    }
    expect(byKey.get("rt:traced")!.traceId).toBe(TRACE_ID);
    expect(byKey.get("rt:text")!.traceId).toBeUndefined();
    expect(Date.parse(byKey.get("rt:text")!.timestamp)).not.toBeNaN();
  });

  it("splits a batch to the 256 KB per call limit", async () => {
    const big = "x".repeat(60_000);
    await add(Array.from({ length: 5 }, (_, i) => ({ key: `split:${i}`, value: big })));
    const { result, calls } = await tick();
    expect(result).toMatchObject({ sent: 5, failed: 0, dead: 0 });
    expect(calls).toEqual([4, 1]); // four 60 KB bodies fit in 256 KB, five do not
    const got = await consumedKeys("split:", 5);
    expect(got.map((c) => c.key).sort()).toEqual(["split:0", "split:1", "split:2", "split:3", "split:4"]);
  });

  it("splits to Cloudflare's 256 KB although Miniflare would take up to 288,000 bytes in one call", async () => {
    // Three 90 KB values: 270,750 counted bytes (bodies plus metadata), over Cloudflare's 256 KB
    // per call and under the 288,000 bytes of bodies Miniflare lets through.
    const value = "m".repeat(90_000);
    await add(Array.from({ length: 3 }, (_, i) => ({ key: `mf-limit:loose:${i}`, value })));
    const loose = await tick("?sender=loose");
    expect(loose.result).toMatchObject({ sent: 3, failed: 0, dead: 0 });
    expect(loose.calls).toEqual([3]); // Miniflare accepted the whole batch: it cannot catch this
    expect(loose.callBytes[0]).toBeGreaterThan(256_000);
    expect(loose.callBytes[0]! - 3 * 100).toBeLessThanOrEqual(288_000);

    await add(Array.from({ length: 3 }, (_, i) => ({ key: `mf-limit:default:${i}`, value })));
    const { result, calls, callBytes } = await tick();
    expect(result).toMatchObject({ sent: 3, failed: 0, dead: 0 });
    expect(calls).toEqual([2, 1]);
    for (const bytes of callBytes) expect(bytes).toBeLessThanOrEqual(256_000);
    const got = await consumedKeys("mf-limit:default:", 3);
    expect(got).toHaveLength(3);
  });

  it("delivers values whose JSON text would be over 128 KB as base64, byte for byte", async () => {
    // Valid UTF-8 all: NULs and control characters cost 6 bytes each as JSON text.
    const messages: AddRequest[] = [
      { key: "escape:nul", value: "\u0000".repeat(25_000) },
      { key: "escape:control", value: "\u0001\u001f".repeat(15_000) },
      {
        key: "escape:protobuf",
        value: Buffer.from(
          new Uint8Array(90_000).map(
            (_, i) => [0x08, 0x16, 0x10, 0x02, 0x1a, 0x03, 0x61, 0x62, 0x63][i % 9]!,
          ),
        ).toString("base64"),
        binary: true,
      },
    ];
    await add(messages);
    const { result, dead } = await tick();
    expect(dead.filter((d) => d.key.startsWith("escape:"))).toEqual([]);
    expect(result).toMatchObject({ sent: 3, failed: 0, dead: 0 });
    const got = await consumedKeys("escape:", 3);
    const byKey = new Map(got.map((c) => [c.key, c]));
    for (const sent of messages) {
      const bytes = sent.binary ? Buffer.from(sent.value, "base64") : Buffer.from(sent.value, "utf8");
      expect(Buffer.from(byKey.get(sent.key)!.value, "base64").equals(bytes), sent.key).toBe(true);
    }
  });

  it("kills a message over 128 KB at once, without handing it to the queue, and sends the rest", async () => {
    await add([
      { key: "huge:before", value: "small" },
      { key: "huge:too-big", value: "y".repeat(128_000) },
      { key: "huge:after", value: "small" },
    ]);
    const { result, dead, calls } = await tick();
    expect(result).toMatchObject({ sent: 2, failed: 0, dead: 1 });
    expect(calls).toEqual([2]);
    const killed = dead.find((d) => d.key === "huge:too-big");
    expect(killed?.error).toMatch(/over the limit of 128000 per message/);
    const got = await consumedKeys("huge:", 2);
    expect(got.map((c) => c.key).sort()).toEqual(["huge:after", "huge:before"]);
  });

  it("fails the messages of a refused sendBatch and delivers them on a later tick", async () => {
    await add(Array.from({ length: 3 }, (_, i) => ({ key: `retry:${i}`, value: `r${i}` })));
    const first = await tick("?reject=1");
    expect(first.result).toMatchObject({ sent: 0, failed: 3, dead: 0 });
    expect(first.stats.pending).toBeGreaterThanOrEqual(3);
    // A rate-limited batch waits 1 s (retryAfter) before its next attempt.
    let second: TickResponse | undefined;
    await waitFor(async () => {
      second = await tick();
      return second.result.sent > 0;
    }, 20_000);
    expect(second!.result).toMatchObject({ sent: 3, failed: 0 });
    const got = await consumedKeys("retry:", 3);
    expect(got.map((c) => c.key).sort()).toEqual(["retry:0", "retry:1", "retry:2"]);
  });

  it("fails a message the real queue refuses, still sends its neighbours, and retries it until dead", async () => {
    // Limits above Cloudflare's: the sender hands a 150 KB message over and workerd refuses the call.
    await add([
      { key: "refused:a", value: "a" },
      { key: "refused:big", value: "z".repeat(150_000) },
      { key: "refused:b", value: "b" },
    ]);
    // The tick drains: with a 1 ms backoff it retries the refused message at once, and with
    // maxRetries 2 it is attempted three times in all, then dead.
    const { result, dead } = await tick("?sender=loose");
    expect(result).toMatchObject({ sent: 2, failed: 2, dead: 1 });
    const refused = dead.find((d) => d.key === "refused:big");
    expect(refused?.error).toMatch(/the queue refused message \S+: .*exceeds single message size limit/);
    const got = await consumedKeys("refused:", 2);
    expect(got.map((c) => c.key).sort()).toEqual(["refused:a", "refused:b"]);
    expect(consumed().some((c) => c.key === "refused:big")).toBe(false);
  });
});
