/** Every benchmark, in the order of issue 7. */
import type { Benchmark } from "./lib/report.ts";
import { telemetryBenchmark } from "./telemetry.ts";

export const benchmarks: Benchmark[] = [telemetryBenchmark];
