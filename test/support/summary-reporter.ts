/**
 * Prints one plain closing line, `vitest: N passed, N failed, N skipped`, after vitest's own
 * report: a line any CI log reader understands, whatever the reporter in front of it.
 *
 * A file whose setup failed has its tests skipped by vitest; they count as failed here, and
 * so does every unhandled error, so the line never reads "0 failed" on a red run.
 */
import type { SerializedError } from "vitest";
import type { Reporter, TestModule } from "vitest/node";

export default class SummaryReporter implements Reporter {
  onTestRunEnd(
    testModules: ReadonlyArray<TestModule>,
    unhandledErrors: ReadonlyArray<SerializedError>,
  ): void {
    const counts = { passed: 0, failed: unhandledErrors.length, skipped: 0 };
    for (const module of testModules) {
      const moduleFailed = module.state() === "failed";
      for (const test of module.children.allTests()) {
        const state = test.result().state;
        if (state === "passed") counts.passed += 1;
        else if (state === "failed" || moduleFailed) counts.failed += 1;
        else counts.skipped += 1;
      }
      if (moduleFailed && module.children.size === 0) counts.failed += 1;
    }
    console.log(`\nvitest: ${counts.passed} passed, ${counts.failed} failed, ${counts.skipped} skipped`);
  }
}
