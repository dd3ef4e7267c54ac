/**
 * The random commands of the store model, weighted toward adds and marks: what fast-check
 * draws sequences from.
 */
import fc from "fast-check";
import type { ClaimOptions, Ordering } from "../../mod.ts";
import { type Command, GARBAGE_IDS, LONG_LEASE, MEDIUM_LEASE, SHORT_LEASE, SKEW } from "./store-run.ts";
import {
  Add,
  ClaimStep,
  type DelayKind,
  ListDead,
  Mark,
  type MarkKind,
  Purge,
  RecordAndFetch,
  Release,
  Requeue,
  type Target,
  Wait,
} from "./store-steps.ts";
import { headersSpec, type Texts, valueSpec } from "./text.ts";

const ordering: fc.Arbitrary<Ordering> = fc.constantFrom("none", "key");
const claimOptions: fc.Arbitrary<ClaimOptions> = fc.record({
  batchSize: fc.integer({ min: 1, max: 6 }),
  leaseDuration: fc.constantFrom(LONG_LEASE, LONG_LEASE, SHORT_LEASE),
  ordering,
});
const target: fc.Arbitrary<Target> = fc.record({
  // Mostly the latest claims: a relay marks what it just claimed.
  claim: fc.nat({ max: 20 }),
  pick: fc.array(fc.boolean(), { maxLength: 6 }),
  foreign: fc.array(fc.nat(), { maxLength: 2 }),
  garbage: fc.array(fc.constantFrom(...GARBAGE_IDS), { maxLength: 1 }),
});
const delay: fc.Arbitrary<DelayKind> = fc.constantFrom("none", "short", "long");

/** Every command of the store model (error texts of `texts`), weighted toward adds and marks. */
const add: fc.Arbitrary<Command> = fc
  .tuple(
    fc.array(fc.record({ key: fc.nat(), value: valueSpec, headers: headersSpec, tie: fc.boolean() }), {
      minLength: 1,
      maxLength: 4,
    }),
    fc.boolean(),
    fc.boolean(),
  )
  .map(([specs, commit, commit2]) => new Add(specs, commit || commit2));

export function storeCommands(texts: Texts, skewedClocks = false): fc.Arbitrary<Command>[] {
  const errorText = texts.error;
  // Relays whose clocks run 31 s ahead or behind, against leases of 30 s (the default) and less.
  const skewedClaim = fc
    .tuple(
      fc.record({
        batchSize: fc.integer({ min: 1, max: 6 }),
        leaseDuration: fc.constantFrom(MEDIUM_LEASE, SHORT_LEASE),
        ordering,
      }),
      fc.constantFrom(0, SKEW, -SKEW),
    )
    .map(([options, skew]) => new ClaimStep(options, skew));
  return [
    ...(skewedClocks ? [skewedClaim, skewedClaim] : []),
    add,
    add,
    add,
    claimOptions.map((options) => new ClaimStep(options)),
    claimOptions.map((options) => new ClaimStep(options)),
    fc
      .tuple(fc.constantFrom<MarkKind>("sent", "retry", "dead"), target, errorText, delay)
      .map(([kind, t, error, d]) => new Mark(kind, t, error, d)),
    fc
      .tuple(fc.constantFrom<MarkKind>("sent", "retry", "dead"), target, errorText, delay)
      .map(([kind, t, error, d]) => new Mark(kind, t, error, d)),
    fc
      .tuple(target, fc.array(fc.nat({ max: 2 }), { maxLength: 8 }), errorText, delay, claimOptions)
      .map(([t, groups, error, d, next]) => new RecordAndFetch(t, groups, error, d, next)),
    target.map((t) => new Release(t)),
    fc.integer({ min: 5, max: 90 }).map((ms) => new Wait(ms)),
    fc
      .tuple(
        fc.boolean(),
        fc.array(fc.nat(), { maxLength: 3 }),
        fc.array(fc.constantFrom(...GARBAGE_IDS), { maxLength: 1 }),
      )
      .map(([all, pick, garbage]) => new Requeue(all, pick, garbage)),
    fc.boolean().map((now) => new Purge(now)),
    fc.integer({ min: 1, max: 4 }).map((limit) => new ListDead(limit)),
  ];
}
