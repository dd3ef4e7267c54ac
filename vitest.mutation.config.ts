import { defineConfig } from "vitest/config";

/**
 * The suites mutation testing runs: the in-process ones. Tests that spawn processes (runtimes,
 * crashes, the packed package, the demo) cannot see a mutant that Stryker switches on inside
 * this process, so they would only cost time there.
 *
 * `MUTATION_SUITES=core` narrows the run to the core's own suites (relay, outbox, loop, send,
 * MemoryStore with the conformance suite, message, options, telemetry with the real SDK): the
 * HTTP, QStash and libSQL suites drive the same core code through real servers and files, which
 * costs minutes of dry run on a loaded machine and kills no core mutant the core suites miss
 * (a score measured without them is a lower bound). Any other value is a comma-separated list of
 * globs to run instead (e.g. `test/relay*.test.ts,test/send-deadlines.test.ts`). See TESTING.md.
 */
const suites = process.env.MUTATION_SUITES;
const include =
  suites === undefined || suites === ""
    ? ["test/**/*.test.ts"]
    : suites === "core"
      ? ["test/*.test.ts", "test/telemetry/**/*.test.ts"]
      : suites.split(",");

export default defineConfig({
  test: {
    include,
    exclude: [
      "test/runtimes/**",
      "test/package.test.ts",
      "test/demo.test.ts",
      "test/libsql/processes.test.ts",
      "test/**/processes*.test.ts",
      "test/model/**",
      // Runs the store bundled inside workerd, where Stryker cannot switch mutants on.
      "test/d1/workerd.test.ts",
      "test/postgres/processes*.test.ts",
    ],
    testTimeout: 30_000,
    hookTimeout: 30_000,
  },
});
