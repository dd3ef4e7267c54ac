/**
 * A drain over a store and sender that settle without I/O (a local libSQL file is synchronous
 * underneath) must still let the event loop's other tasks run: timers, I/O, and the native
 * finalizers that free the libSQL driver's statement handles (without them a long drain grew
 * the resident set by ~10 KB per message; see BENCHMARKS.md, benchmark 6).
 */
import { describe, expect, it } from "vitest";
import { MemoryStore } from "../adapters/memory.ts";
import { Outbox, prepareMessage, type Sender } from "../mod.ts";

describe("Outbox drain and the event loop", () => {
  it("lets a timer run while a long all-microtask drain is in progress", async () => {
    const store = new MemoryStore();
    const total = 20_000;
    await store.transaction(async (tx) => {
      for (let i = 0; i < total; i++) {
        await store.addMessage(tx, prepareMessage({ key: `k${i}`, value: "{}" }, { maxMessageBytes: 1024 }));
      }
    });
    let delivered = 0;
    const sender: Sender = {
      async send(messages) {
        for (const m of messages) m.markAsSent();
        delivered += messages.length;
        return messages;
      },
    };
    let deliveredWhenTimerRan: number | undefined;
    setTimeout(() => {
      deliveredWhenTimerRan = delivered;
    }, 0);
    // batchSize 1: 20k passes, far longer than the drain may go without yielding.
    const result = await new Outbox(store, sender, { batchSize: 1 }).tick();
    expect(result.sent).toBe(total);
    expect(deliveredWhenTimerRan).toBeDefined();
    expect(deliveredWhenTimerRan).toBeLessThan(total);
  });
});
