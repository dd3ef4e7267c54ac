/** Every benchmark, in the order of issue 7. */

import { latencyBenchmark } from "./latency.ts";
import type { Benchmark } from "./lib/report.ts";
import { memoryBenchmark } from "./memory.ts";
import { processesBenchmark } from "./processes.ts";
import { telemetryBenchmark } from "./telemetry.ts";
import { throughputBenchmark } from "./throughput.ts";

export const benchmarks: Benchmark[] = [
  throughputBenchmark,
  latencyBenchmark,
  memoryBenchmark,
  processesBenchmark,
  telemetryBenchmark,
].sort((a, b) => a.id - b.id);
