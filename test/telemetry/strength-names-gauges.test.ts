/**
 * The `outbox.name` of outboxes sharing a meter (how long a name stays taken, per meter) and
 * a stats gauge whose SDK `observe` throws. Written against mutants the older suites let
 * survive.
 */
import type { BatchObservableCallback, BatchObservableResult, Meter } from "@opentelemetry/api";
import { describe, expect, it } from "vitest";
import { MemoryStore } from "../../adapters/memory.ts";
import { Outbox, type OutboxOptions, ValidationError } from "../../mod.ts";
import { recordingSender } from "../support/senders.ts";
import { onCleanup, otel, useCleanups } from "./support.ts";

useCleanups();

/** An outbox disposed after the test. */
function outbox(store: MemoryStore, options: OutboxOptions): Outbox<unknown> {
  const created = new Outbox(store, recordingSender(), options) as Outbox<unknown>;
  onCleanup(() => created[Symbol.asyncDispose]());
  return created;
}

describe("outbox.name on a shared meter", () => {
  it("a name shared by two outboxes of one store stays taken until both are disposed, however often one is", async () => {
    const rig = otel();
    onCleanup(rig.shutdown);
    const options: OutboxOptions = { meter: rig.meter, onError: () => {} };
    const store = new MemoryStore();
    const first = outbox(store, options);
    const second = outbox(store, options);
    expect([first.options.name, second.options.name]).toEqual(["memory", "memory"]);
    await first[Symbol.asyncDispose]();
    await first[Symbol.asyncDispose]();
    // `second` still reports under "memory": another store's outbox must not take it.
    const other = outbox(new MemoryStore(), options);
    expect(other.options.name).toBe("memory#2");
    await second[Symbol.asyncDispose]();
    expect(outbox(new MemoryStore(), options).options.name).toBe("memory");
    // The first suffix freed is the first one given again.
    await other[Symbol.asyncDispose]();
    expect(outbox(new MemoryStore(), options).options.name).toBe("memory#2");
  });

  it("each meter has its own names; a chosen name taken is kept and reported in full", () => {
    const one = otel();
    const two = otel();
    onCleanup(async () => {
      await one.shutdown();
      await two.shutdown();
    });
    const errors: unknown[] = [];
    const onError = (e: unknown) => errors.push(e);
    expect(outbox(new MemoryStore(), { meter: one.meter, onError }).options.name).toBe("memory");
    expect(outbox(new MemoryStore(), { meter: two.meter, onError }).options.name).toBe("memory");
    const chosen = { name: "orders", onError };
    expect(outbox(new MemoryStore(), { ...chosen, meter: one.meter }).options.name).toBe("orders");
    expect(outbox(new MemoryStore(), { ...chosen, meter: two.meter }).options.name).toBe("orders");
    expect(errors).toEqual([]);
    expect(outbox(new MemoryStore(), { ...chosen, meter: one.meter }).options.name).toBe("orders");
    expect(errors).toHaveLength(1);
    expect(errors[0]).toBeInstanceOf(ValidationError);
    expect((errors[0] as Error).message).toBe(
      'name "orders" is already used by another live outbox on this meter: their gauges (outbox.message.count, outbox.message.oldest_age) overwrite each other; give each outbox its own name',
    );
  });
});

describe("a stats gauge whose SDK observe throws", () => {
  it("reports the throw to onError and leaves the next collection working", async () => {
    let callback: BatchObservableCallback | undefined;
    const rig = otel();
    onCleanup(rig.shutdown);
    // The real SDK's meter, except that the batch callback is kept for the test to call.
    const meter = new Proxy(rig.meter, {
      get(target, property, receiver) {
        if (property === "addBatchObservableCallback") {
          return (cb: BatchObservableCallback) => {
            callback = cb;
          };
        }
        const value = Reflect.get(target, property, receiver);
        return typeof value === "function" ? value.bind(target) : value;
      },
    }) as Meter;
    const errors: unknown[] = [];
    const store = new MemoryStore();
    outbox(store, { meter, statsCacheTtl: 0, onError: (e) => errors.push(e) });
    const broken = new Error("observe is broken");
    await callback?.({
      observe: () => {
        throw broken;
      },
    } as BatchObservableResult);
    expect(errors).toEqual([broken]);
    const observed: unknown[][] = [];
    await callback?.({
      observe: (...args: unknown[]) => observed.push(args.slice(1)),
    } as BatchObservableResult);
    expect(observed).toEqual([
      [0, { "outbox.name": "memory", "outbox.message.state": "pending" }],
      [0, { "outbox.name": "memory", "outbox.message.state": "in_flight" }],
      [0, { "outbox.name": "memory", "outbox.message.state": "dead" }],
      [0, { "outbox.name": "memory" }],
    ]);
    expect(errors).toHaveLength(1);
  });
});
