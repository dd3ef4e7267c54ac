/**
 * `runStoreModel`: the model-based tests of one store, for its test file. Every store runs
 * every variant of both properties: the store contract against the reference model, and the
 * relay end to end through `Outbox.tick()`. A store whose driver can crash the process runs
 * them in a child process (`isolate`), where a crash fails the test with the seed and the steps
 * of the run.
 *
 * @example
 * ```ts
 * runStoreModel("MemoryStore", memoryStore);
 * runStoreModel("LibsqlStore", { module: "test/model/stores.ts", factory: "libsqlStore" });
 * ```
 */
import { spawn } from "node:child_process";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, it } from "vitest";
import type { OutboxVariant } from "./outbox-scenario.ts";
import { type RunOutcome, runModel, type Variant } from "./property.ts";
import { type Bounds, bounds, replayHint } from "./settings.ts";
import { type ModelStoreFactory, type StoreCapabilities, withCapabilities } from "./store-run.ts";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const relay: OutboxVariant = {
  hostileText: false,
  aliasing: false,
  onErrorThrows: false,
  abortAfterClaim: false,
  hugeRetryAfter: false,
};

/**
 * The variants, each its own test so that one known fault does not hide the others: the store
 * contract with plain texts, hostile texts, or callers writing into buffers; the relay with one
 * hazard class each beyond its base ones.
 */
export const VARIANTS = {
  "store contract, plain texts": { kind: "store", hostileText: false, aliasing: false, skewedClocks: false },
  "store contract, hostile texts (lone surrogates, cuts inside pairs)": {
    kind: "store",
    hostileText: true,
    aliasing: false,
    skewedClocks: false,
  },
  "store contract, callers write into buffers they passed or got": {
    kind: "store",
    hostileText: false,
    aliasing: true,
    skewedClocks: false,
  },
  "store contract, relays whose clocks run 31 s off (stores with a clock of their own)": {
    kind: "store",
    hostileText: false,
    aliasing: false,
    skewedClocks: true,
  },
  "relay end to end: failures, throws, overruns, malformed results, vanished relays": {
    kind: "outbox",
    ...relay,
  },
  "relay end to end, hostile error texts and keys": { kind: "outbox", ...relay, hostileText: true },
  "relay end to end, caller and sender write into the buffers they passed or got": {
    kind: "outbox",
    ...relay,
    aliasing: true,
  },
  "relay end to end, onError that throws": { kind: "outbox", ...relay, onErrorThrows: true },
  "relay end to end, ticks aborted between claim and send": {
    kind: "outbox",
    ...relay,
    abortAfterClaim: true,
  },
  "relay end to end, retryAfter beyond what a Date holds": { kind: "outbox", ...relay, hugeRetryAfter: true },
  "relay end to end, streaming send window: per-message latencies, hangs, attempted: false": {
    kind: "outbox",
    ...relay,
    windowed: true,
  },
} satisfies Record<string, Variant>;

/** The name of a variant. */
export type VariantName = keyof typeof VARIANTS;

// Shares of a store's time: the store model explores the most.
const SHARE: Record<Variant["kind"], number> = { store: 0.15, outbox: 0.1 };

/** A factory exported by a module, to run in a child process. */
export interface IsolatedFactory {
  /** Path from the repository root, e.g. `test/model/stores.ts`. */
  module: string;
  /** The exported {@link ModelStoreFactory}. */
  factory: string;
}

/** A variant that fails on this store because of a fault not fixed yet. */
export interface KnownFault {
  /** The fault, as the issue names it. */
  fault: string;
  /** `fails`: the test must fail (vitest flags it once fixed); `skip`: not run. */
  mode: "fails" | "skip";
}

/**
 * Registers the model-based tests of store `name`. `testFile` is the calling test file, named
 * in the replay hint of a failure; `known` marks variants that fail because of a known fault
 * (`MODEL_RUN_KNOWN=1` runs them anyway). `ownClock`: the store decides leases on a clock of
 * its own (a database's), so it also runs the variant with relays whose clocks are off.
 * `refusesNul`: the store refuses NUL in keys and headers and keeps it as U+FFFD in error
 * texts (PostgreSQL): the model expects exactly that of it, and the usual of every other store.
 * `keepsNewestRow`: the store never deletes its newest row (see {@link ModelStore.keepsNewestRow}).
 * `shareScale` scales every variant's time (a slow store, e.g. PGlite, may get less).
 */
export function runStoreModel(
  name: string,
  factory: ModelStoreFactory | IsolatedFactory,
  testFile: string,
  known: Partial<Record<VariantName, KnownFault>> = {},
  options: { ownClock?: boolean; shareScale?: number } & StoreCapabilities = {},
): void {
  const capabilities: StoreCapabilities = {
    refusesNul: options.refusesNul === true,
    keepsNewestRow: options.keepsNewestRow === true,
  };
  const scale = options.shareScale ?? 1;
  const share = (kind: Variant["kind"]) => SHARE[kind] * scale;
  const names = (Object.keys(VARIANTS) as VariantName[]).filter(
    (n) => options.ownClock === true || !("skewedClocks" in VARIANTS[n] && VARIANTS[n].skewedClocks),
  );
  const total = names.reduce((sum, n) => sum + bounds(share(VARIANTS[n].kind)).timeLimitMs, 0);
  // Isolated stores run every variant (but skipped ones) in one child process, one after
  // another: one start-up instead of one per variant.
  const shared =
    typeof factory === "function"
      ? undefined
      : new IsolatedRuns(
          factory,
          names.filter((n) => process.env.MODEL_RUN_KNOWN === "1" || known[n]?.mode !== "skip"),
          total + 120_000,
          capabilities,
          share,
        );
  describe(`${name}: model-based`, () => {
    for (const title of names) {
      const variant: Variant = VARIANTS[title];
      const b = bounds(share(variant.kind));
      // MODEL_RUN_KNOWN=1 runs the variants of known faults too (to see whether a fix holds).
      const fault = process.env.MODEL_RUN_KNOWN === "1" ? undefined : known[title];
      const test = fault === undefined ? it : fault.mode === "fails" ? it.fails : it.skip;
      const label = fault === undefined ? title : `${title} [known fault: ${fault.fault}]`;
      test(label, { timeout: total + 180_000 }, async () => {
        const { outcome, crashLog } =
          typeof factory === "function"
            ? await inProcess(withCapabilities(factory, capabilities), variant, b)
            : await shared!.result(title);
        if (outcome.failure !== undefined) {
          const path = /path: "([^"]*)"/.exec(outcome.failure)?.[1];
          throw new Error(
            `${name}, ${title}: failed (seed ${b.seed}, ${outcome.runs} runs)\n${replayHint(b, testFile, path)}\n${outcome.failure}${crashLog === undefined ? "" : `\n--- steps of the run that crashed ---\n${crashLog}`}`,
          );
        }
        console.log(`[model] ${name}, ${title}: ${outcome.runs} runs, seed ${b.seed}`);
      });
    }
  });
}

interface Result {
  outcome: RunOutcome;
  /** The steps of the run a crash ended, when the process crashed. */
  crashLog?: string | undefined;
}

async function inProcess(factory: ModelStoreFactory, variant: Variant, b: Bounds): Promise<Result> {
  return { outcome: await runModel(variant, factory, { ...b, log: () => {} }) };
}

/**
 * The variants of one store, run in child processes: one child runs them in turn; when it
 * dies, the variant it was running fails with the crash and a new child runs the rest.
 */
class IsolatedRuns {
  readonly #results = new Map<string, { promise: Promise<Result>; resolve: (r: Result) => void }>();
  #started = false;

  constructor(
    readonly factory: IsolatedFactory,
    readonly names: readonly VariantName[],
    readonly timeoutMs: number,
    readonly capabilities: StoreCapabilities,
    readonly share: (kind: Variant["kind"]) => number,
  ) {
    for (const n of names) {
      let resolve!: (r: Result) => void;
      const promise = new Promise<Result>((r) => {
        resolve = r;
      });
      this.#results.set(n, { promise, resolve });
    }
  }

  result(name: VariantName): Promise<Result> {
    if (!this.#started) {
      this.#started = true;
      void this.#runAll();
    }
    return this.#results.get(name)!.promise;
  }

  async #runAll(): Promise<void> {
    let left = [...this.names];
    // Bounded: every child settles at least the variant it was running.
    while (left.length > 0) {
      const done = await this.#child(left);
      left = left.filter((n) => !done.has(n));
    }
  }

  /** Runs `names` in one child; returns the variants it settled. */
  async #child(names: readonly VariantName[]): Promise<Set<string>> {
    const done = new Set<string>();
    const settle = (n: string, r: Result) => {
      done.add(n);
      this.#results.get(n)?.resolve(r);
    };
    const child = spawn(
      process.execPath,
      [
        "--import",
        "tsx",
        join(ROOT, "test/model/child.ts"),
        join(ROOT, this.factory.module),
        this.factory.factory,
      ],
      // Its properties stop themselves in time; the timeout only ends a child that hangs.
      { cwd: ROOT, stdio: ["pipe", "pipe", "pipe"], timeout: this.timeoutMs },
    );
    child.stdin.end(
      JSON.stringify(
        names.map((n) => ({
          name: n,
          variant: VARIANTS[n],
          bounds: bounds(this.share(VARIANTS[n].kind)),
          capabilities: this.capabilities,
        })),
      ),
    );
    let steps: string[] = [];
    let running: string | undefined;
    let other = "";
    const lines = (stream: NodeJS.ReadableStream, onLine: (line: string) => void) => {
      let partial = "";
      stream.setEncoding("utf8");
      stream.on("data", (chunk: string) => {
        const parts = (partial + chunk).split("\n");
        partial = parts.pop() ?? "";
        for (const line of parts) onLine(line);
      });
    };
    lines(child.stdout, (line) => {
      if (line.startsWith("MODEL_OUTCOME ")) {
        const { name, outcome } = JSON.parse(line.slice("MODEL_OUTCOME ".length)) as {
          name: string;
          outcome: RunOutcome;
        };
        settle(name, { outcome });
      }
      const start = /^MODEL_VARIANT (.*)$/.exec(line);
      if (start) {
        running = JSON.parse(start[1]!) as string;
        steps = [];
        other = "";
      }
    });
    lines(child.stderr, (line) => {
      // Step lines are the model's (a run starts with RUN); anything else (a panic) is kept apart.
      if (line.startsWith("STEP RUN ")) steps = [];
      if (line.startsWith("STEP ")) steps.push(line.slice(5));
      else other = `${other}${line}\n`.slice(-8000);
    });
    const exit = await new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
      child.on("close", (code, signal) => resolve({ code, signal })),
    );
    const crashed = running !== undefined && !done.has(running) ? running : names.find((n) => !done.has(n));
    if (crashed !== undefined) {
      const runIndex = /^RUN (\d+)/.exec(steps[0] ?? "")?.[1];
      settle(crashed, {
        outcome: {
          runs: Number(runIndex ?? 0),
          failure: `the child process died (exit code ${exit.code}, signal ${exit.signal}) in run ${runIndex} (path: "${runIndex}")\n${other}`,
        },
        crashLog: steps.join("\n"),
      });
    }
    return done;
  }
}
