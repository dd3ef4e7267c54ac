import { defineConfig } from "vitest/config";

/**
 * The suites mutation testing runs: the in-process ones. Tests that spawn processes (runtimes,
 * crashes, the packed package, the demo) cannot see a mutant that Stryker switches on inside
 * this process, so they would only cost time there.
 */
export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    exclude: [
      "test/runtimes/**",
      "test/package.test.ts",
      "test/demo.test.ts",
      "test/libsql/processes.test.ts",
      "test/**/processes*.test.ts",
      "test/model/**",
      "test/postgres/processes*.test.ts",
    ],
    testTimeout: 30_000,
    hookTimeout: 30_000,
  },
});
