/**
 * Deno: `deno test` over the sources (test/runtimes/deno/*_test.ts, with the import map in
 * test/runtimes/deno/deno.json and the installed node_modules, never the network), a type
 * check of the Deno example's entry point (Deno.cron included), and the JSR package as
 * `deno publish --dry-run` sees it (deno.json exports type-check, no slow types).
 */
import { describe, expect, it } from "vitest";
import { bin, run } from "./support.ts";

// Network only to loopback: the tests' receivers. npm packages come from node_modules.
const PERMISSIONS = [
  "--allow-net=127.0.0.1",
  "--allow-read",
  "--allow-write",
  "--allow-env",
  "--allow-ffi",
  "--allow-sys",
];

// Generous: these spawn type-checking runtimes, CPU-bound on a busy 2-core machine.
describe("Deno", { timeout: 120_000 }, () => {
  it("passes deno test over the sources", async () => {
    const result = await run(
      bin("deno"),
      ["test", "--config", "test/runtimes/deno/deno.json", ...PERMISSIONS, "test/runtimes/deno/"],
      { timeoutMs: 90_000 },
    );
    expect(result.code, result.output).toBe(0);
    // Every test ran: none ignored, none filtered out.
    expect(result.output).toMatch(/ok \| \d+ passed \| 0 failed\s/);
    expect(result.output).not.toMatch(/\d+ (ignored|filtered out)/);
  });

  it("type-checks the Deno example (Deno.serve + Deno.cron)", async () => {
    const result = await run(
      bin("deno"),
      ["check", "--unstable-cron", "--config", "examples/deno/deno.json", "examples/deno/main.ts"],
      { timeoutMs: 60_000 },
    );
    expect(result.code, result.output).toBe(0);
  });

  it("is publishable to JSR (deno publish --dry-run: exports type-check, no slow types)", async () => {
    const result = await run(bin("deno"), ["publish", "--dry-run", "--allow-dirty"], { timeoutMs: 90_000 });
    expect(result.code, result.output).toBe(0);
    expect(result.output).toContain("Dry run complete");
    for (const file of [
      "mod.ts",
      "adapters/libsql.ts",
      "adapters/http.ts",
      "adapters/qstash.ts",
      "adapters/memory.ts",
    ]) {
      expect(result.output).toContain(`/${file} (`);
    }
  });
});
