/**
 * Bun: `bun test` over the sources (test/runtimes/bun/*_test.ts), and the Bun example run as a
 * server process (Bun.serve, start()/wake(), SIGTERM).
 */
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { checkServerExample } from "./examples.ts";
import { bin, ROOT, run } from "./support.ts";

describe("Bun", { timeout: 90_000 }, () => {
  it("passes bun test over the sources", async () => {
    // --no-install: never reach for the registry; everything comes from node_modules.
    const result = await run(bin("bun"), ["test", "--no-install", "./test/runtimes/bun/"], {
      timeoutMs: 60_000,
    });
    expect(result.code, result.output).toBe(0);
    expect(result.output).toMatch(/\s0 fail\s/);
    expect(result.output).not.toMatch(/\s[1-9]\d* (skip|todo)\s/);
  });

  it("runs the Bun example: orders relayed at once by wake(), graceful SIGTERM", async () => {
    await checkServerExample(bin("bun"), ["--no-install", "server.ts"], join(ROOT, "examples/bun"));
  });
});
