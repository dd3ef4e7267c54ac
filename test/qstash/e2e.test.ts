import { type Client, Receiver } from "@upstash/qstash";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { MemoryStore } from "../../adapters/memory.ts";
import { qstashSender } from "../../adapters/qstash.ts";
import { Outbox } from "../../mod.ts";
import { startHttpReceiver } from "../support/http-receiver.ts";
import { type QStashStandIn, startQStashStandIn } from "../support/qstash-server.ts";
import { waitFor } from "../support/senders.ts";

const DESTINATION = "https://example.com/hook";
let qstash: QStashStandIn;
let client: Client;
beforeEach(async () => {
  qstash = await startQStashStandIn();
  client = qstash.client();
});
afterEach(() => qstash.close());

describe("Outbox + MemoryStore + qstashSender -> QStash stand-in", () => {
  it("hands over each committed message once, deduplicated by its id", async () => {
    const store = new MemoryStore();
    const outbox = new Outbox(store, qstashSender({ client, destination: DESTINATION }), { batchSize: 4 });
    await store.transaction(async (tx) => {
      for (let i = 0; i < 10; i++) {
        await outbox.addMessage(tx, {
          key: `k${i}`,
          value: JSON.stringify({ i }),
          headers: {
            "content-type": "application/json",
            traceparent: `00-${"1".repeat(32)}-${"2".repeat(16)}-01`,
          },
        });
      }
    });
    const result = await outbox.tick();
    expect(result).toMatchObject({ sent: 10, failed: 0, dead: 0, batches: 3 });
    expect(qstash.requests.map((r) => r.path)).toEqual(["/v2/batch", "/v2/batch", "/v2/batch"]);
    const dedupIds = qstash.messages.map((m) => m.deduplicationId);
    expect(new Set(dedupIds).size).toBe(10);
    expect(qstash.messages.map((m) => JSON.parse(m.text()).i).sort((a, b) => a - b)).toEqual([
      0, 1, 2, 3, 4, 5, 6, 7, 8, 9,
    ]);
    for (const m of qstash.messages) {
      expect(m.forwarded["content-type"]).toBe("application/json");
      expect(m.forwarded.traceparent).toMatch(/^00-1{32}-2{16}-01$/);
    }
  });

  it("a handoff QStash accepted but answered after sendTimeout is retried and deduplicated", async () => {
    const store = new MemoryStore();
    const errors: unknown[] = [];
    const outbox = new Outbox(store, qstashSender({ client, destination: DESTINATION }), {
      sendTimeout: 1000,
      backoff: { initialDelay: 0, maxDelay: 0 },
      onError: (error) => errors.push(error),
    });
    await store.transaction(async (tx) => {
      await outbox.addMessage(tx, { key: "a", value: "first" });
      await outbox.addMessage(tx, { key: "b", value: "second" });
    });
    qstash.delayNext(1500); // QStash stores the batch, then answers too late
    const result = await outbox.tick();
    expect(result).toMatchObject({ sent: 2, failed: 2, dead: 0 });
    expect(errors.length).toBeGreaterThan(0);
    // Both attempts reached QStash, but each message was stored once.
    expect(qstash.messages.map((m) => m.text()).sort()).toEqual(["first", "second"]);
    // The late answer to the first attempt lands last.
    await waitFor(() => qstash.requests.length === 2);
    expect(qstash.requests.map((r) => r.path)).toEqual(["/v2/batch", "/v2/batch"]);
  });
});

describe("Outbox -> qstashSender -> stand-in -> receiver", () => {
  it("QStash's delivery carries the body and traceparent, and the client's Receiver verifies its signature", async () => {
    const receiver = await startHttpReceiver();
    try {
      const store = new MemoryStore();
      const outbox = new Outbox(store, qstashSender({ client, destination: receiver.url }));
      const traceparent = `00-${"a".repeat(32)}-${"b".repeat(16)}-01`;
      await store.transaction((tx) =>
        outbox.addMessage(tx, {
          key: "order:1",
          value: '{"order":1}',
          headers: { "content-type": "application/json", traceparent },
        }),
      );
      expect(await outbox.tick()).toMatchObject({ sent: 1 });
      expect(await qstash.deliver()).toMatchObject([{ url: receiver.url, status: 200 }]);
      expect(await qstash.deliver()).toEqual([]);

      const [delivery] = receiver.requests;
      expect(delivery!.text()).toBe('{"order":1}');
      expect(delivery!.headers["content-type"]).toBe("application/json");
      expect(delivery!.headers.traceparent).toBe(traceparent);
      const verifier = new Receiver(qstash.signingKeys);
      const signature = delivery!.headers["upstash-signature"]!;
      await expect(verifier.verify({ signature, body: delivery!.text(), url: receiver.url })).resolves.toBe(
        true,
      );
      await expect(verifier.verify({ signature, body: "tampered", url: receiver.url })).rejects.toThrow();
    } finally {
      await receiver.close();
    }
  });
});
