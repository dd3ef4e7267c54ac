/** Every benchmark, in the order of issue 7. */

import { addMessageBenchmark } from "./add-message.ts";
import { claimCostBenchmark } from "./claim-cost.ts";
import { httpRelayBenchmark } from "./http-relay.ts";
import { httpSenderBenchmark } from "./http-sender.ts";
import { latencyBenchmark } from "./latency.ts";
import type { Benchmark } from "./lib/report.ts";
import { memoryBenchmark } from "./memory.ts";
import { postgresAddMessageBenchmark, postgresRelayBenchmark } from "./postgres.ts";
import { processesBenchmark } from "./processes.ts";
import { slowReceiverBenchmark } from "./slow-receiver.ts";
import { telemetryBenchmark } from "./telemetry.ts";
import { throughputBenchmark } from "./throughput.ts";

export const benchmarks: Benchmark[] = [
  throughputBenchmark,
  addMessageBenchmark,
  httpSenderBenchmark,
  claimCostBenchmark,
  latencyBenchmark,
  memoryBenchmark,
  processesBenchmark,
  telemetryBenchmark,
  httpRelayBenchmark,
  postgresRelayBenchmark,
  postgresAddMessageBenchmark,
  slowReceiverBenchmark,
];
