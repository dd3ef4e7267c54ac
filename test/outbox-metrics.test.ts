/**
 * Two outboxes on one meter keep apart: every metric point carries `outbox.name` (the option, or
 * the store's name or table), so gauges and counters of one never overwrite the other's. With
 * the real OpenTelemetry SDK and a real libSQL file.
 */
import { afterAll, describe, expect, it } from "vitest";
import { MemoryStore } from "../adapters/memory.ts";
import { Outbox, type OutboxOptions, ValidationError } from "../mod.ts";
import { dbPath, openStore, tempDir } from "./libsql/helpers.ts";
import { recordingSender } from "./support/senders.ts";
import { findPoint, otel, pointValue } from "./telemetry/support.ts";

const temp = tempDir();
afterAll(() => temp.cleanup());

describe("outbox.name on metrics", () => {
  it("keeps the gauges and counters of two outboxes sharing one meter apart", async () => {
    const rig = otel();
    const { store: libsql, close } = await openStore(`file:${dbPath(temp.dir)}`, { table: "billing_outbox" });
    const memory = new MemoryStore({ name: "orders" });
    const sender = recordingSender((m) =>
      m.key === "fail" ? m.markAsDead({ error: "HTTP 410" }) : m.markAsSent(),
    );
    const options: OutboxOptions = { meter: rig.meter, tracer: rig.tracer, statsCacheTtl: 0 };
    await using orders = new Outbox(memory, sender, options);
    await using billing = new Outbox(libsql, sender, options);
    try {
      await memory.transaction(async (tx) => {
        for (let i = 0; i < 2; i++) await orders.addMessage(tx, { key: "ok", value: "o" });
      });
      await libsql.withTransaction(async (tx) => {
        for (let i = 0; i < 5; i++) await billing.addMessage(tx, { key: "ok", value: "b" });
        await billing.addMessage(tx, { key: "fail", value: "b" });
      });
      let metrics = await rig.collect();
      const count = metrics.get("outbox.message.count");
      const pending = (name: string) =>
        pointValue(count, { "outbox.name": name, "outbox.message.state": "pending" });
      expect(pending("orders")).toBe(2);
      expect(pending("billing_outbox")).toBe(6);
      expect(findPoint(metrics.get("outbox.message.oldest_age"), { "outbox.name": "orders" })).toBeDefined();
      expect(
        findPoint(metrics.get("outbox.message.oldest_age"), { "outbox.name": "billing_outbox" }),
      ).toBeDefined();

      await orders.tick();
      await billing.tick();
      metrics = await rig.collect();
      const sent = metrics.get("messaging.client.sent.messages");
      expect(pointValue(sent, { "outbox.name": "orders", "outbox.outcome": "sent" })).toBe(2);
      expect(pointValue(sent, { "outbox.name": "billing_outbox", "outbox.outcome": "sent" })).toBe(5);
      expect(pointValue(sent, { "outbox.name": "billing_outbox", "outbox.outcome": "dead" })).toBe(1);
      expect(pointValue(sent, { "outbox.name": "orders", "outbox.outcome": "dead" })).toBe(0);
      const deadGauge = metrics.get("outbox.message.count");
      expect(pointValue(deadGauge, { "outbox.name": "billing_outbox", "outbox.message.state": "dead" })).toBe(
        1,
      );
      expect(pointValue(deadGauge, { "outbox.name": "orders", "outbox.message.state": "dead" })).toBe(0);
      const batches = metrics.get("outbox.batch.size");
      expect(pointValue(batches, { "outbox.name": "orders" })).toBe(1);
      expect(pointValue(batches, { "outbox.name": "billing_outbox" })).toBe(1);
    } finally {
      await close();
      await rig.shutdown();
    }
  });

  it("takes the name option over the store's, and refuses a bad one", () => {
    const sender = recordingSender();
    const store = new MemoryStore({ name: "orders" });
    expect(new Outbox(store, sender).options.name).toBe("orders");
    expect(new Outbox(store, sender, { name: "eu-orders" }).options.name).toBe("eu-orders");
    const anonymous = new Proxy(store, {
      get: (target, property) => {
        if (property === "name") return undefined;
        const value = Reflect.get(target, property, target);
        return typeof value === "function" ? value.bind(target) : value;
      },
    });
    expect(new Outbox(anonymous, sender).options.name).toBe("outbox");
    for (const bad of ["", 42, "x".repeat(201)]) {
      expect(() => new Outbox(store, sender, { name: bad as string })).toThrow(ValidationError);
    }
  });
});
