/**
 * What the store model's commands run on: the store under test, its factory, the real clock
 * and a relay's skewed one, the checks made after every step, and the final drain.
 */
import type fc from "fast-check";
import type { ClaimOptions, TransactionalStore } from "../../mod.ts";
import type { Span, StoreModel } from "./reference.ts";

/** A store under test, fresh and empty. */
export interface ModelStore {
  // biome-ignore lint/suspicious/noExplicitAny: each store has its own transaction type
  store: TransactionalStore<any>;
  /** Deletes kept sent messages sent before `olderThan`; only for stores that keep sent rows. */
  purgeSent?: ((olderThan: Date) => Promise<number>) | undefined;
  /**
   * The store refuses a key or header holding NUL (U+0000) with a `ValidationError` before
   * writing, and stores NUL in error texts as U+FFFD (PostgreSQL text cannot hold NUL).
   * Set by the harness from `runStoreModel`'s options, never guessed from the store.
   */
  refusesNul?: boolean | undefined;
  /**
   * The store never deletes its newest row, not even once it is sent and past retention: ids
   * are `max(id) + 1`, and keeping that row keeps ids from coming back (SQLite stores without
   * AUTOINCREMENT). A purge then leaves the newest message if it is sent.
   */
  keepsNewestRow?: boolean | undefined;
  close: () => Promise<void>;
}

/** Opens a fresh, empty store; `keepSent` asks for a store that keeps sent rows, if it can. */
export type ModelStoreFactory = (options: { keepSent: boolean }) => Promise<ModelStore>;

/** What a store is known to do differently, given to `runStoreModel` by its test file. */
export interface StoreCapabilities {
  /** See {@link ModelStore.refusesNul}. */
  refusesNul?: boolean | undefined;
  /** See {@link ModelStore.keepsNewestRow}. */
  keepsNewestRow?: boolean | undefined;
}

/** `factory`, whose stores carry `capabilities`. */
export function withCapabilities(
  factory: ModelStoreFactory,
  capabilities: StoreCapabilities,
): ModelStoreFactory {
  return async (options) => ({
    ...(await factory(options)),
    refusesNul: capabilities.refusesNul === true,
    keepsNewestRow: capabilities.keepsNewestRow === true,
  });
}

/** What the commands act on. */
export interface Real {
  s: ModelStore;
  /** Writes progress synchronously (a native crash must not lose it). */
  log: (line: string) => void;
}

/** The model plus the run's key pool. */
export interface Model {
  m: StoreModel;
  keys: string[];
}

/** A command of the store model. */
export type Command = fc.AsyncCommand<Model, Real>;

/** A lease that outlives the run, and one that runs out within it (real waiting). */
export const LONG_LEASE = 60_000;
export const SHORT_LEASE = 60;
/** The default lease (30 s), against relays whose clocks run {@link SKEW} ms off. */
export const MEDIUM_LEASE = 30_000;
/** How far a skewed relay's clock runs off. */
export const SKEW = 31_000;
const DEAD_LIST_ALL = 10_000;
/** A token no claim ever had. */
export const BOGUS_TOKEN = "no-such-token";
// Strings that can name no row of any store (not a store's id format, not a bare row id).
export const GARBAGE_IDS = [
  "",
  "abc",
  "0",
  "-1",
  "1.5",
  "99999999999999999999",
  "msg_0000000000000000_1",
  "\uD800",
];

// The real clock, kept before any relay's clock is skewed (see ClaimStep).
const realNow = Date.now;

/** `call`, with the real-clock span it ran in. */
export async function timed<R>(call: () => Promise<R>): Promise<{ result: R; span: Span }> {
  const start = realNow();
  const result = await call();
  return { result, span: { start, end: realNow() } };
}

/**
 * Runs `call` as a relay whose clock is `skew` ms off: `Date.now` (the relay's clock) is
 * shifted while it runs. Commands run one at a time, so nothing else sees the shift.
 */
export async function withSkew<R>(skew: number, call: () => Promise<R>): Promise<R> {
  if (skew === 0) return call();
  Date.now = () => realNow() + skew;
  try {
    return await call();
  } finally {
    Date.now = realNow;
  }
}

/** Stats and the full dead list, checked against the model. */
export async function checkInvariants(model: StoreModel, real: Real, where: string): Promise<void> {
  const { result: stats, span } = await timed(() => real.s.store.stats());
  model.checkStats(stats, span, where);
  const dead = await real.s.store.listDead({ limit: DEAD_LIST_ALL });
  model.checkDead(dead, DEAD_LIST_ALL, `${where} (listDead)`);
}

/** A command: runs, logs itself, then checks the invariants. */
export abstract class Step implements Command {
  check(_model: Readonly<Model>): boolean {
    return true;
  }
  abstract describe(): string;
  abstract apply(model: Model, real: Real): Promise<void>;
  async run(model: Model, real: Real): Promise<void> {
    const where = this.describe();
    real.log(where);
    await this.apply(model, real);
    await checkInvariants(model.m, real, `after ${where}`);
  }
  toString(): string {
    return this.describe();
  }
}

/** Real time passing. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * After the commands: waits out every short lease and short delay, then claims until nothing
 * is left, so every unfinished message must come back (the claim checks leave none behind).
 */
export async function drainAll(model: StoreModel, real: Real): Promise<void> {
  real.log("final drain");
  const now = Date.now();
  const soon = model.unfinished
    .flatMap((x) => [x.ready[1], x.token === undefined ? 0 : x.leaseEnd[1]])
    .filter((t) => t < now + 5_000);
  const until = Math.max(now, ...soon) + 10;
  await sleep(until - now);
  const options: ClaimOptions = { batchSize: 50, leaseDuration: LONG_LEASE, ordering: "none" };
  for (let i = 0; i < 1000; i++) {
    const { result, span } = await timed(() => real.s.store.fetchAndLock(options));
    model.recordClaim(result, options, span, "final drain claim");
    if (result.messages.length === 0) break;
  }
  await checkInvariants(model, real, "final drain");
}
