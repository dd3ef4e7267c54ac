/** Every benchmark, in the order of issue 7. */

import { addMessageBenchmark } from "./add-message.ts";
import { claimCostBenchmark } from "./claim-cost.ts";
import { d1AddMessageBenchmark, d1RelayBenchmark } from "./d1.ts";
import { httpRelayBenchmark } from "./http-relay.ts";
import { httpSenderBenchmark } from "./http-sender.ts";
import { latencyBenchmark } from "./latency.ts";
import type { Benchmark } from "./lib/report.ts";
import { memoryBenchmark } from "./memory.ts";
import { postgresLatencyBenchmark } from "./pg-latency.ts";
import { postgresProcessesBenchmark } from "./pg-processes.ts";
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
  postgresLatencyBenchmark,
  postgresProcessesBenchmark,
  d1RelayBenchmark,
  d1AddMessageBenchmark,
  slowReceiverBenchmark,
];
