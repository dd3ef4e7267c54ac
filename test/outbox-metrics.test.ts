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

  it("two outboxes with the same default name (two MemoryStores, two libSQL files) get distinct names; a chosen duplicate is reported", async () => {
    const rig = otel();
    const sender = recordingSender();
    const first = await openStore(`file:${dbPath(temp.dir)}`);
    const second = await openStore(`file:${dbPath(temp.dir)}`);
    const errors: unknown[] = [];
    const options: OutboxOptions = { meter: rig.meter, statsCacheTtl: 0, onError: (e) => errors.push(e) };
    const memoryA = new MemoryStore();
    const memoryB = new MemoryStore();
    try {
      await using a = new Outbox(memoryA, sender, options);
      await using b = new Outbox(memoryB, sender, options);
      await using c = new Outbox(first.store, sender, options);
      await using d = new Outbox(second.store, sender, options);
      expect(new Set([a, b, c, d].map((o) => o.options.name)).size).toBe(4);
      expect(b.options.name).toBe(`${a.options.name}#2`);
      // Another outbox of the same store reports the same numbers: it shares the name.
      await using sameStore = new Outbox(memoryA, sender, options);
      expect(sameStore.options.name).toBe(a.options.name);
      await memoryA.transaction(async (tx) => a.addMessage(tx, { key: "k", value: "v" }));
      for (let i = 0; i < 3; i++) {
        await memoryB.transaction(async (tx) => b.addMessage(tx, { key: "k", value: "v" }));
      }
      await first.store.withTransaction(async (tx) => c.addMessage(tx, { key: "k", value: "v" }));
      const count = (await rig.collect()).get("outbox.message.count");
      const pending = (name: string) =>
        pointValue(count, { "outbox.name": name, "outbox.message.state": "pending" });
      expect([a, b, c, d].map((o) => pending(o.options.name))).toEqual([1, 3, 1, 0]);
      expect(errors).toEqual([]);

      await using chosen = new Outbox(new MemoryStore(), sender, { ...options, name: "orders" });
      await using clash = new Outbox(new MemoryStore(), sender, { ...options, name: "orders" });
      expect([chosen.options.name, clash.options.name]).toEqual(["orders", "orders"]);
      expect(errors).toHaveLength(1);
      expect(errors[0]).toBeInstanceOf(ValidationError);
      expect(String(errors[0])).toContain('"orders" is already used');
    } finally {
      await first.close();
      await second.close();
    }
    // Disposed outboxes free their names.
    await using again = new Outbox(new MemoryStore(), sender, options);
    expect(again.options.name).toBe("memory");
  });
});
