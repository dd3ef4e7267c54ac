/**
 * `afterIo`, which the send window refills its slots with: after the callbacks ready now where
 * the runtime has `setImmediate` (Node, Bun), else in a microtask (workerd, Deno, browsers).
 * Written against the mutants of its choice between the two, which no relay test can see.
 */
import { describe, expect, it, vi } from "vitest";

/** The order in which `afterIo(fn)` and a microtask queued just after it run. */
async function order(afterIo: (fn: () => void) => void): Promise<string[]> {
  const ran: string[] = [];
  await new Promise<void>((resolve) => {
    afterIo(() => {
      ran.push("afterIo");
      resolve();
    });
    queueMicrotask(() => ran.push("microtask"));
  });
  return ran;
}

describe("afterIo", () => {
  it("with setImmediate, runs after the microtasks queued now", async () => {
    vi.resetModules();
    const { afterIo } = await import("../src/after-io.ts");
    expect(await order(afterIo)).toEqual(["microtask", "afterIo"]);
  });

  it("without setImmediate, runs in a microtask of its own, before later ones", async () => {
    vi.stubGlobal("setImmediate", undefined);
    try {
      vi.resetModules();
      const { afterIo } = await import("../src/after-io.ts");
      expect(await order(afterIo)).toEqual(["afterIo", "microtask"]);
    } finally {
      vi.unstubAllGlobals();
      vi.resetModules();
    }
  });
});
