/** Small statistics and timing helpers shared by the benchmarks. */

/** The median of `values` (NaN when empty). */
export function median(values: readonly number[]): number {
  return percentile(values, 50);
}

/** The `p`-th percentile (nearest rank, 0 < p <= 100) of `values` (NaN when empty). */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil((p / 100) * sorted.length)));
  return sorted[rank - 1] as number;
}

/** How many rounds to run: `warmup` discarded, then `rounds` measured. */
export interface RoundPlan {
  warmup: number;
  rounds: number;
}

/**
 * Runs `warmup` + `rounds` rounds of `fn` and returns the measured rounds' results. Each round
 * returns its own figure (ops/s, ms), so setup inside a round stays out of the figure.
 */
export async function rounds<T>(plan: RoundPlan, fn: (round: number) => Promise<T>): Promise<T[]> {
  for (let i = 0; i < plan.warmup; i++) await fn(-1 - i);
  const results: T[] = [];
  for (let i = 0; i < plan.rounds; i++) results.push(await fn(i));
  return results;
}

/**
 * Runs every function of `fns` once per round, rotating which goes first, so that drift in the
 * machine (page cache, fsync stalls, CPU frequency, a noisy neighbour) falls on all of them
 * alike. Returns one series per function, warm-up rounds left out.
 */
export async function interleave<T>(plan: RoundPlan, fns: ((round: number) => Promise<T>)[]): Promise<T[][]> {
  const series: T[][] = fns.map(() => []);
  for (let r = -plan.warmup; r < plan.rounds; r++) {
    for (let k = 0; k < fns.length; k++) {
      const i = (k + r + plan.warmup) % fns.length;
      const value = await fns[i]!(r);
      if (r >= 0) series[i]!.push(value);
    }
  }
  return series;
}

/** {@link interleave} for two functions: `{ a, b }`. */
export async function interleaved<T>(
  plan: RoundPlan,
  a: (round: number) => Promise<T>,
  b: (round: number) => Promise<T>,
): Promise<{ a: T[]; b: T[] }> {
  const [sa, sb] = await interleave(plan, [a, b]);
  return { a: sa!, b: sb! };
}

/** Milliseconds `fn` takes. */
export async function timeMs(fn: () => Promise<unknown>): Promise<number> {
  const started = performance.now();
  await fn();
  return performance.now() - started;
}

/** Waits `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
