/**
 * The store model as a fast-check property: a fresh store per run, random commands checked
 * step by step against the reference model, then a final drain that must bring every
 * unfinished message back.
 */
import fc from "fast-check";
import { outboxModelProperty } from "./outbox-model.ts";
import type { OutboxVariant } from "./outbox-scenario.ts";
import { StoreModel } from "./reference.ts";
import { storeCommands } from "./store-commands.ts";
import { drainAll, type Model, type ModelStoreFactory, type Real } from "./store-run.ts";
import { show, texts } from "./text.ts";

/** How long and from where a property runs. */
export interface RunSettings {
  seed: number;
  numRuns: number;
  /** Stop starting runs after this long (ms); runs done so far count. */
  timeLimitMs: number;
  /** fast-check's replay path of a failure (with its seed). */
  path?: string | undefined;
  /** Progress lines, written before each step so a native crash leaves the last one behind. */
  log: (line: string) => void;
}

/** What a property run found: runs made, and the failure report if one failed. */
export interface RunOutcome {
  runs: number;
  failure?: string | undefined;
}

/** Runs fast-check's `property` under `settings`; a failure comes back as fast-check's report. */
export async function runProperty<Ts extends [unknown, ...unknown[]]>(
  property: fc.IAsyncProperty<Ts>,
  budget: Budget,
  settings: RunSettings,
): Promise<RunOutcome> {
  const details = await fc.check(property, {
    seed: settings.seed,
    numRuns: settings.numRuns,
    path: settings.path,
    // Runs stop themselves at the time limit (see `Budget`): fast-check's interrupt would leave
    // the run in flight going on behind the next one. This only ends a run that hangs.
    interruptAfterTimeLimit: settings.timeLimitMs + 120_000,
    markInterruptAsFailure: true,
    // Shrinking replays real waits: bound it so a failure is reported in reasonable time.
    endOnFailure: false,
    includeErrorInReport: true,
  });
  if (!details.failed) return { runs: budget.runs };
  return { runs: budget.runs, failure: fc.defaultReportMessage(details) ?? "failed" };
}

/**
 * The time a property may take: runs that start after `deadline` (performance.now()) pass at
 * once without touching a store, so the last real run always ends before the next property.
 */
export class Budget {
  readonly deadline: number;
  /** Runs that did real work. */
  runs = 0;

  constructor(timeLimitMs: number) {
    this.deadline = performance.now() + timeLimitMs;
  }

  /** False once the time is spent; else counts a run. */
  start(): boolean {
    if (performance.now() > this.deadline) return false;
    this.runs += 1;
    return true;
  }
}

/** The store contract model as a property over `factory`'s stores. */
export function storeModelProperty(
  factory: ModelStoreFactory,
  variant: StoreVariant,
  log: (line: string) => void,
  budget: Budget,
  maxCommands = 40,
): fc.IAsyncProperty<[{ keepSent: boolean; keys: string[] }, Iterable<fc.AsyncCommand<Model, Real>>]> {
  let run = 0;
  const t = texts(variant.hostileText);
  return fc.asyncProperty(
    fc.record({ keepSent: fc.boolean(), keys: t.keys }),
    fc.commands(storeCommands(t, variant.skewedClocks), { maxCommands, size: "max" }),
    async (config, commands) => {
      if (!budget.start()) return;
      log(`RUN ${run++} store model ${show(config)}`);
      const s = await factory({ keepSent: config.keepSent });
      try {
        const m = new StoreModel(
          config.keepSent && s.purgeSent !== undefined,
          typeof s.store.recordAndFetch === "function",
          typeof s.store.release === "function",
          variant.aliasing,
        );
        const real = { s, log };
        await fc.asyncModelRun(() => ({ model: { m, keys: config.keys }, real }), commands);
        await drainAll(m, real);
      } finally {
        await s.close();
      }
    },
  );
}

/** A variant of the store model. */
export interface StoreVariant {
  /** Error texts and keys with lone surrogates and 4-byte characters (else plain ones). */
  hostileText: boolean;
  /**
   * The caller writes into its value buffer right after `addMessage` (before the commit), and a
   * relay into the messages it claimed.
   */
  aliasing: boolean;
  /**
   * Some relays' clocks run 31 s ahead or behind (only for stores that keep their own clock,
   * such as a database's: a store living in the relay's process shares its clock).
   */
  skewedClocks: boolean;
}

/** One variant of one of the two properties. */
export type Variant = ({ kind: "store" } & StoreVariant) | ({ kind: "outbox" } & OutboxVariant);

/** Runs `variant` over `factory`'s stores. */
export function runModel(
  variant: Variant,
  factory: ModelStoreFactory,
  settings: RunSettings,
): Promise<RunOutcome> {
  const budget = new Budget(settings.timeLimitMs);
  return variant.kind === "store"
    ? runProperty(storeModelProperty(factory, variant, settings.log, budget), budget, settings)
    : runProperty(outboxModelProperty(factory, variant, settings.log, budget), budget, settings);
}
