/**
 * The arguments of one pass statement (see `passStatement` in sql.ts): an outcome's marks
 * and a claim, turned into the statement's shape and its named values.
 *
 * @module
 */
import { type ClaimOptions, type PassOutcome, ValidationError } from "../../mod.ts";
import { deadJson, retriesJson, rowIds } from "./rows.ts";
import type { PassArg, PassShape } from "./sql.ts";

/** A century: past PostgreSQL's interval range a lease would fail the claim itself. */
const MAX_LEASE = 100 * 365 * 24 * 3_600_000;

/**
 * The shape and named values of a pass recording `outcome` (ids of `namespace`; ids of no
 * row are left out), or, when `claim` is given, claiming under `token` (a claim records no
 * outcome: PostgresStore has no recordAndFetch, see postgres.ts).
 */
export function passArguments(
  namespace: string,
  outcome: Partial<PassOutcome> & { token: string },
  claim: ClaimOptions | undefined,
  token: string,
): { shape: PassShape; values: Partial<Record<PassArg, unknown>> } {
  if (claim !== undefined) {
    return {
      shape: { claim: true, keyed: claim.ordering === "key" },
      values: {
        claim: token,
        lease: Math.min(claim.leaseDuration, MAX_LEASE),
        limit: claim.batchSize,
      },
    };
  }
  const sentIds = rowIds(namespace, outcome.sent ?? []);
  const retry = retriesJson(namespace, outcome.retry ?? []);
  const dead = deadJson(namespace, outcome.dead ?? []);
  return {
    shape: {
      sent: sentIds !== undefined,
      retry: retry !== undefined,
      dead: dead !== undefined,
      claim: false,
    },
    values: {
      namespace,
      token: String(outcome.token),
      sent: sentIds,
      retry,
      dead,
    },
  };
}

/**
 * The values of `options`, each read once, if its batch size and lease are usable; a
 * `ValidationError` otherwise. `Number.isSafeInteger` and `Number.isFinite` never coerce, so
 * they refuse non-numbers too.
 */
export function checkClaimOptions(options: ClaimOptions): ClaimOptions {
  // Read once: a claim run again after a namespace renewal uses what was checked, whatever a
  // getter would answer the second time.
  const { batchSize, leaseDuration, ordering } = options ?? {};
  if (!Number.isSafeInteger(batchSize) || batchSize < 1) {
    throw new ValidationError(`batchSize must be an integer >= 1, got ${String(batchSize)}`);
  }
  if (!Number.isFinite(leaseDuration) || leaseDuration < 0) {
    throw new ValidationError(
      `leaseDuration must be a number of milliseconds >= 0, got ${String(leaseDuration)}`,
    );
  }
  return { batchSize, leaseDuration, ordering };
}
