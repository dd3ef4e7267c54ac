/**
 * Benchmark 19 (issue 14): a slow receiver must not stall the relay.
 *
 * The scenario, scaled to run in about a minute: a producer commits messages to a
 * libSQL file at a steady rate (its own process) while one relay (`start()` loop) delivers
 * them through `httpSender` (8 in flight) to a receiver in its own process on 127.0.0.1 that
 * answers 500 to 10% of requests and resets 2% of connections; in the "hanging" runs it also
 * holds 4% of requests open for 1.5 s, past the send deadline. Each run ends when every
 * message is delivered (or dead), or at a cap; the delivery rate is messages delivered per
 * second from the first commit to the last delivery.
 *
 * Compared: the streaming window (`Sender.window` = 8) against today's batch relay (the same
 * sender without `window`: passes of `batchSize` 25 in lock step), with and without hanging
 * requests. Both relays use the same sender: `requestTimeout` 500 ms (a hanging request fails
 * alone at that deadline) under the issue's `sendTimeout` of 1000 ms.
 *
 * A second table drains a backlog: N messages committed beforehand, one `tick()` delivers them
 * to the same receiver answering every request at once, window against batch relay in
 * alternated rounds: the window's cost per message where the producer does not hide it.
 */
import { httpSender } from "../adapters/http-node.ts";
import { LibsqlStore } from "../adapters/libsql.ts";
import { Outbox, type Sender } from "../mod.ts";
import { benchFile, nextJson, spawnTs, stopChild } from "./lib/child.ts";
import { connect, openDb } from "./lib/db.ts";
import { type Benchmark, num, ratio, type Section } from "./lib/report.ts";

const IN_FLIGHT = 16;
const FAIL = 0.1;
const RESET = 0.02;
const HANG = 0.04;
const HANG_MS = 1500;
const DRAIN_ROUNDS = 5;
// The rate is measured up to this share delivered: the last retries' backoff is noise.
const DELIVERED_SHARE = 0.99;

interface Plan {
  /** Messages per second the producer commits. */
  rate: number;
  /** Seconds the producer runs. */
  seconds: number;
  /** Seconds after the producer stops before a run is cut off. */
  tail: number;
}

interface Run {
  windowed: boolean;
  hanging: boolean;
}

interface RunResult {
  produced: number;
  delivered: number;
  /** Seconds from the first commit until 99% were delivered (or the cap). */
  seconds: number;
  /** Messages delivered per second up to then. */
  rate: number;
  complete: boolean;
}

async function receiverProcess() {
  const { child, hello } = await spawnTs(benchFile("lib/faulty-receiver-child.ts"));
  const base = `http://127.0.0.1:${(hello as { port: number }).port}`;
  return {
    url: `${base}/hook`,
    async configure(hanging: boolean) {
      const mix = { fail: FAIL, reset: RESET, hang: hanging ? HANG : 0, hangMs: HANG_MS };
      await (await fetch(`${base}/config`, { method: "POST", body: JSON.stringify(mix) })).arrayBuffer();
    },
    async quiet() {
      const mix = { fail: 0, reset: 0, hang: 0, hangMs: HANG_MS };
      await (await fetch(`${base}/config`, { method: "POST", body: JSON.stringify(mix) })).arrayBuffer();
    },
    async delivered(): Promise<number> {
      return ((await (await fetch(`${base}/stats`)).json()) as { delivered: number }).delivered;
    },
    /** When the receiver answered the `nth` distinct message 2xx (epoch ms, sub-ms), if it has. */
    async deliveredAt(nth: number): Promise<number | undefined> {
      const stats = (await (await fetch(`${base}/stats?nth=${nth}`)).json()) as { at: number | null };
      return stats.at ?? undefined;
    },
    close: () => stopChild(child),
  };
}

const RELAY_OPTIONS = { batchSize: 25, sendTimeout: 1000, onError: () => {} };

/** httpSender declares `window` (= concurrency); the batch relay is the same sender without it. */
function benchSender(url: string, windowed: boolean): Sender {
  const http = httpSender({ url, unsigned: true, concurrency: IN_FLIGHT, requestTimeout: 500 });
  return windowed ? http : { send: (messages, signal) => http.send(messages, signal) };
}

/**
 * One `tick()` drains `count` messages committed beforehand; messages delivered per second, and
 * this process's CPU time per message over the tick (user + system: a figure other processes on
 * a loaded machine disturb far less than the rate).
 */
async function drainOnce(dir: string, url: string, windowed: boolean, count: number, round: number) {
  const { client } = openDb(dir, `drain-${windowed ? "window" : "batch"}-${round}`);
  const store = new LibsqlStore(client);
  await store.migrate();
  const sender = benchSender(url, windowed);
  const writer = new Outbox(store, sender);
  for (let done = 0; done < count; done += 500) {
    await store.withTransaction(async (tx) => {
      for (let i = done; i < Math.min(count, done + 500); i++) {
        await writer.addMessage(tx, { key: `k${i}`, value: `m${i}` });
      }
    });
  }
  const outbox = new Outbox(store, sender, RELAY_OPTIONS);
  // The garbage of the commits above (and of the other relay's round) is collected before the
  // clock starts, not charged to whichever relay runs next (`npm run bench` runs with --expose-gc).
  (globalThis as { gc?: () => void }).gc?.();
  const cpu = process.cpuUsage();
  const started = performance.now();
  const { sent } = await outbox.tick();
  const rate = sent / ((performance.now() - started) / 1000);
  const used = process.cpuUsage(cpu);
  client.close();
  return { sent, rate, cpuPerMessage: (used.user + used.system) / Math.max(1, sent) };
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function runOnce(
  dir: string,
  receiver: Awaited<ReturnType<typeof receiverProcess>>,
  run: Run,
  plan: Plan,
): Promise<RunResult> {
  await receiver.configure(run.hanging);
  const { client, path } = openDb(dir, run.windowed ? "window" : "batch");
  const store = new LibsqlStore(client);
  await store.migrate();
  const relayClient = connect(path);
  const relayStore = new LibsqlStore(relayClient);
  const outbox = new Outbox(relayStore, benchSender(receiver.url, run.windowed), {
    ...RELAY_OPTIONS,
    maxRetries: 20,
    period: 50,
    backoff: { initialDelay: 100, maxDelay: 1000 },
  });
  const producer = await spawnTs(benchFile("lib/producer-child.ts"), [
    path,
    String(plan.rate),
    String(plan.seconds),
  ]);
  outbox.start();
  const started = performance.now();
  // The same instant on the epoch clock the receiver stamps its deliveries with.
  const startedEpoch = performance.timeOrigin + started;
  producer.child.stdin?.write("go\n");
  // Relays learn of new messages from their loop: a pass every `period`.
  const { produced } = await nextJson<{ produced: number }>(producer.lines);
  const cap = started + (plan.seconds + plan.tail) * 1000;
  const target = Math.ceil(produced * DELIVERED_SHARE);
  let delivered = await receiver.delivered();
  // The poll only says when to stop; the time to 99% is the receiver's own stamp of the target-th
  // delivery, not this 50 ms poll's (two relays that keep up with the producer differ by less).
  while (performance.now() < cap) {
    const stats = await store.stats();
    delivered = await receiver.delivered();
    if (stats.pending + stats.inFlight === 0) break;
    await sleep(50);
  }
  const ended = performance.now();
  const reachedAt = await receiver.deliveredAt(target);
  const seconds = (reachedAt === undefined ? ended - started : reachedAt - startedEpoch) / 1000;
  const reached = reachedAt !== undefined;
  const complete = delivered >= produced;
  await outbox.stop();
  await stopChild(producer.child);
  await outbox[Symbol.asyncDispose]();
  relayClient.close();
  client.close();
  return {
    produced,
    delivered,
    seconds,
    rate: (reached ? target : delivered) / seconds,
    complete,
  };
}

export const slowReceiverBenchmark: Benchmark = {
  id: 19,
  slug: "slow-receiver",
  title: "A slow receiver must not stall the relay (streaming send window)",
  async run({ quick, tmpDir }): Promise<Section> {
    const plan: Plan = quick ? { rate: 200, seconds: 3, tail: 5 } : { rate: 250, seconds: 10, tail: 6 };
    const receiver = await receiverProcess();
    const results = new Map<string, RunResult>();
    const backlog = quick ? 1000 : 3000;
    const drains = { window: [] as number[], batch: [] as number[] };
    const drainSent = { window: [] as number[], batch: [] as number[] };
    const drainCpu = { window: [] as number[], batch: [] as number[] };
    try {
      const runs: Array<[string, Run]> = [
        ["window, none hanging", { windowed: true, hanging: false }],
        ["window, 4% hanging", { windowed: true, hanging: true }],
        ["batch, none hanging", { windowed: false, hanging: false }],
        ["batch, 4% hanging", { windowed: false, hanging: true }],
      ];
      for (const [name, run] of runs) results.set(name, await runOnce(tmpDir, receiver, run, plan));
      await receiver.quiet();
      for (let round = 0; round < DRAIN_ROUNDS; round++) {
        // Each relay goes first in every other round: neither always inherits the other's state.
        for (const windowed of round % 2 === 0 ? [true, false] : [false, true]) {
          const { sent, rate, cpuPerMessage } = await drainOnce(
            tmpDir,
            receiver.url,
            windowed,
            backlog,
            round,
          );
          const name = windowed ? "window" : "batch";
          drains[name].push(rate);
          drainSent[name].push(sent);
          drainCpu[name].push(cpuPerMessage);
        }
      }
    } finally {
      await receiver.close();
    }
    const rate = (name: string) => results.get(name)!.rate;
    const hangingRatio = rate("window, 4% hanging") / rate("window, none hanging");
    const windowVsBatch = rate("window, none hanging") / rate("batch, none hanging");
    const drainRatio = median(drains.window) / median(drains.batch);
    const met = hangingRatio >= 0.8 && windowVsBatch >= 1.0 && drainRatio >= 1.0;
    return {
      id: 19,
      title: "A slow receiver must not stall the relay (streaming send window)",
      target:
        "window with 4% hanging >= 0.8x window with none hanging; window >= 1.0x batch relay, none hanging (producer-paced and backlog drain)",
      verdict: met ? "met" : "missed",
      tables: [
        {
          header: ["relay", "produced", "delivered", "seconds to 99%", "delivered/s", "all delivered"],
          rows: [...results].map(([name, r]) => [
            name,
            num(r.produced),
            num(r.delivered),
            num(r.seconds, 3),
            num(r.rate),
            r.complete ? "yes" : "no (cut off)",
          ]),
        },
        {
          header: ["ratio", "value", "target"],
          rows: [
            ["window: 4% hanging / none hanging", ratio(hangingRatio), ">= 0.80x"],
            ["none hanging: window / batch", ratio(windowVsBatch), ">= 1.00x"],
            [
              "4% hanging: window / batch (information)",
              ratio(rate("window, 4% hanging") / rate("batch, 4% hanging")),
              "",
            ],
            ["backlog drain: window / batch (medians)", ratio(drainRatio), ">= 1.00x"],
            [
              "backlog drain, CPU per message: window / batch (medians, information)",
              ratio(median(drainCpu.window) / median(drainCpu.batch)),
              "",
            ],
          ],
        },
        {
          header: [
            "backlog drain",
            "messages",
            "delivered/s per round",
            "median",
            "CPU µs/message per round",
          ],
          rows: (["window", "batch"] as const).map((name) => [
            name,
            drainSent[name].map((n) => num(n)).join(" / "),
            drains[name].map((r) => num(r)).join(" / "),
            num(median(drains[name])),
            drainCpu[name].map((c) => num(c)).join(" / "),
          ]),
        },
      ],
      notes: [
        `Producer: ${plan.rate} messages/s for ${plan.seconds} s (10 commits/s) on a libSQL file; the producer in its own process; one relay here (start() loop, a pass every 50 ms).`,
        `Receiver (own process, 127.0.0.1): 10% answered 500, 2% connections reset, and in the hanging runs 4% held ${HANG_MS} ms; every other request answered 204 at once. Rates count distinct messages answered 2xx, from the first commit until 99% of them were (or, when that never happens, what was delivered by the cut-off ${plan.tail} s after the producer stops): the last 1% wait out retry backoffs, noise on a 10 s run. The time to 99% is the receiver's own timestamp of that delivery (sub-millisecond, against the relay's start on the same clock), not a poll.`,
        `httpSender (the Node build: node:http keep-alive agents) with ${IN_FLIGHT} requests in flight on both sides. Both: httpSender requestTimeout 500 ms, batchSize 25, sendTimeout 1000 ms, as in the issue; the window is Sender.window = ${IN_FLIGHT} (httpSender's concurrency), the batch relay the same sender without window.`,
        `Backlog drain: ${backlog} messages committed beforehand on a fresh libSQL file, one tick() delivers them, the receiver answering 204 at once; ${DRAIN_ROUNDS} rounds, each relay first in every other round, a garbage collection before each tick, medians compared. CPU per message: this process's user + system time over the tick.`,
      ],
    };
  },
};
