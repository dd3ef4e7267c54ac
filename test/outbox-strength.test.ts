/**
 * What a caller relies on from `Outbox` itself and its loop: what it accepts as a store and a
 * sender, the default `name` it reads off the store, `tick()` with odd options, and how
 * `start()`, `wake()` and `stop()` behave when called at the wrong moment. Written against
 * mutants that the older suites let survive.
 */
import { describe, expect, it } from "vitest";
import { MemoryStore } from "../adapters/memory.ts";
import { Outbox, type Sender, ValidationError } from "../mod.ts";
import { gate, recordingSender, waitFor } from "./support/senders.ts";

/** `store` seen through a proxy that overrides some properties. */
function withProperties(store: MemoryStore, properties: Record<string, () => unknown>): MemoryStore {
  return new Proxy(store, {
    get(target, property) {
      if (typeof property === "string" && property in properties) return properties[property]?.();
      const value = Reflect.get(target, property, target);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}

const sender = recordingSender();

describe("the default name", () => {
  it("is the store's table when it has no name", () => {
    const store = withProperties(new MemoryStore(), { name: () => undefined, table: () => "billing_outbox" });
    expect(new Outbox(store, sender).options.name).toBe("billing_outbox");
  });

  it("skips a name that is empty, too long or throws, and falls back to table or 'outbox'", async () => {
    const long = "n".repeat(200);
    // Each outbox is disposed at once: a name stays taken (and a colliding default gets "#2")
    // only while its outbox lives.
    const named = async (name: () => unknown, table: () => unknown = () => undefined) => {
      const outbox = new Outbox(withProperties(new MemoryStore(), { name, table }), sender);
      const chosen = outbox.options.name;
      await outbox[Symbol.asyncDispose]();
      return chosen;
    };
    expect(await named(() => long)).toBe(long);
    expect(await named(() => `${long}x`)).toBe("outbox");
    expect(await named(() => "")).toBe("outbox");
    expect(await named(() => 7)).toBe("outbox");
    expect(
      await named(
        () => {
          throw new Error("getter");
        },
        () => "orders",
      ),
    ).toBe("orders");
  });
});

describe("what the constructor accepts", () => {
  const methods = [
    "fetchAndLock",
    "updateRetryCount",
    "markAsDead",
    "markAsSent",
    "addMessage",
    "withTransaction",
  ];
  for (const missing of methods) {
    it(`refuses a store without ${missing}`, () => {
      const store = withProperties(new MemoryStore(), { [missing]: () => undefined });
      expect(() => new Outbox(store, sender)).toThrow(
        new ValidationError("store must implement TransactionalStore (fetchAndLock, addMessage, ...)"),
      );
    });
  }

  it("refuses null, a string or a function as the store, and a sender without send", () => {
    for (const bad of [null, undefined, "store", () => {}]) {
      expect(() => new Outbox(bad as never, sender)).toThrow(/store must implement TransactionalStore/);
    }
    expect(() => new Outbox(new MemoryStore(), null as never)).toThrow(/sender must have a send/);
    expect(() => new Outbox(new MemoryStore(), { send: "x" } as never)).toThrow(/sender must have a send/);
  });
});

describe("tick() and the loop", () => {
  it("tick(null) relays like tick()", async () => {
    const store = new MemoryStore();
    const local = recordingSender();
    const outbox = new Outbox(store, local);
    await store.transaction((tx) => outbox.addMessage(tx, { key: "k", value: "v" }));
    expect(await outbox.tick(null as never)).toMatchObject({ batches: 1, sent: 1 });
  });

  it("wake() on an outbox never started sends nothing", async () => {
    const store = new MemoryStore();
    const local = recordingSender();
    const outbox = new Outbox(store, local, { period: 10 });
    await store.transaction((tx) => outbox.addMessage(tx, { key: "k", value: "v" }));
    outbox.wake();
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(local.attempts).toEqual([]);
    expect(await store.stats()).toMatchObject({ pending: 1 });
  });

  it("wake() calls during a pass coalesce into one more pass right after it, long before period", async () => {
    const store = new MemoryStore();
    const open = gate();
    let passes = 0;
    const blocking: Sender = {
      async send(messages) {
        passes += 1;
        if (passes === 1) await open.promise;
        for (const m of messages) m.markAsSent();
        return messages;
      },
    };
    const outbox = new Outbox(store, blocking, { period: 600_000 });
    const add = (key: string) => store.transaction((tx) => outbox.addMessage(tx, { key, value: "v" }));
    await add("a");
    outbox.start();
    await waitFor(() => passes === 1);
    await add("b");
    outbox.wake();
    outbox.wake();
    outbox.wake();
    open.open();
    await waitFor(async () => (await store.stats()).pending === 0, 10_000);
    expect(passes).toBe(2);
    await outbox.stop();
  });

  it("start() twice runs one loop: one pass per wake", async () => {
    const store = new MemoryStore();
    let sends = 0;
    const counting: Sender = {
      async send(messages) {
        sends += 1;
        for (const m of messages) m.markAsSent();
        return messages;
      },
    };
    const outbox = new Outbox(store, counting, { period: 600_000 });
    await store.transaction((tx) => outbox.addMessage(tx, { key: "a", value: "v" }));
    outbox.start();
    outbox.start();
    await waitFor(async () => (await store.stats()).pending === 0, 10_000);
    await outbox.stop();
    expect(sends).toBe(1);
  });

  it("stop() on an outbox never started resolves, and stops nothing a later start() needs", async () => {
    const store = new MemoryStore();
    const local = recordingSender();
    const outbox = new Outbox(store, local, { period: 600_000 });
    await outbox.stop();
    await store.transaction((tx) => outbox.addMessage(tx, { key: "a", value: "v" }));
    outbox.start();
    await waitFor(() => local.delivered.length === 1, 10_000);
    await outbox.stop();
  });
});
