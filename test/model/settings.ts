/**
 * How long the model-based tests run, from the environment:
 * - `npm test`: a fixed seed, each property bounded to a few seconds;
 * - `npm run fuzz` (`MODEL_FUZZ=1`): a random seed (printed), many more runs;
 * - `MODEL_SEED=<seed> [MODEL_PATH=<path>]`: replays a reported failure;
 * - `MODEL_RUNS`, `MODEL_TIME_LIMIT` (ms per property) override the bounds.
 */

/** The seed, runs and time limit of one property. */
export interface Bounds {
  seed: number;
  numRuns: number;
  timeLimitMs: number;
  path?: string | undefined;
}

const DEFAULT_SEED = 20_261_202;

function numberFrom(name: string, fallback: number): number {
  const text = process.env[name];
  if (text === undefined || text === "") return fallback;
  const value = Number(text);
  if (!Number.isSafeInteger(value))
    throw new Error(`${name} must be an integer, got ${JSON.stringify(text)}`);
  return value;
}

const fuzz = process.env.MODEL_FUZZ === "1";
// One seed per process: every property of a fuzz run prints the same one.
const seed = numberFrom("MODEL_SEED", fuzz ? Math.floor(Math.random() * 2 ** 31) : DEFAULT_SEED);
if (fuzz)
  console.log(`[model] fuzz seed ${seed} (replay a failure with MODEL_SEED=${seed} and its MODEL_PATH)`);

/**
 * The bounds of one property. `share` is its part of a store's time: `npm test` gives a store
 * about 20 s in all (the machine may be loaded), a fuzz run 10 minutes.
 */
export function bounds(share = 1): Bounds {
  return {
    seed,
    numRuns: numberFrom("MODEL_RUNS", fuzz ? 20_000 : 500),
    timeLimitMs: numberFrom("MODEL_TIME_LIMIT", Math.round((fuzz ? 600_000 : 20_000) * share)),
    path: process.env.MODEL_PATH || undefined,
  };
}

/** How to replay a failure found under `b`. */
export function replayHint(b: Bounds, file: string, path?: string): string {
  return `replay: MODEL_SEED=${b.seed}${path ? ` MODEL_PATH=${path}` : ""} npx vitest run ${file}`;
}
