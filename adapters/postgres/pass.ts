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
 * row are left out) and, when `claim` is given, claiming under `token`.
 */
export function passArguments(
  namespace: string,
  outcome: Partial<PassOutcome> & { token: string },
  claim: ClaimOptions | undefined,
  token: string,
): { shape: PassShape; values: Record<PassArg, unknown> } {
  const sentIds = rowIds(namespace, outcome.sent ?? []);
  const retry = retriesJson(namespace, outcome.retry ?? []);
  const dead = deadJson(namespace, outcome.dead ?? []);
  const retryIds =
    retry &&
    rowIds(
      namespace,
      (outcome.retry ?? []).map((u) => u?.id),
    );
  const deadIds =
    dead &&
    rowIds(
      namespace,
      (outcome.dead ?? []).map((u) => u?.id),
    );
  return {
    shape: {
      sent: sentIds !== undefined,
      retry: retry !== undefined,
      dead: dead !== undefined,
      claim: claim !== undefined,
      keyed: claim?.ordering === "key",
    },
    values: {
      namespace,
      token: String(outcome.token),
      sent: sentIds,
      retry,
      dead,
      marked: [sentIds, retryIds, deadIds].filter(Boolean).join(","),
      done: [sentIds, deadIds].filter(Boolean).join(","),
      claim: token,
      lease: Math.min(claim?.leaseDuration ?? 0, MAX_LEASE),
      limit: claim?.batchSize ?? 0,
    },
  };
}

/** `options` if its batch size and lease are usable; a `ValidationError` otherwise. */
export function checkClaimOptions(options: ClaimOptions): ClaimOptions {
  const { batchSize, leaseDuration } = options ?? {};
  if (typeof batchSize !== "number" || !Number.isSafeInteger(batchSize) || batchSize < 1) {
    throw new ValidationError(`batchSize must be an integer >= 1, got ${String(batchSize)}`);
  }
  if (typeof leaseDuration !== "number" || !Number.isFinite(leaseDuration) || leaseDuration < 0) {
    throw new ValidationError(
      `leaseDuration must be a number of milliseconds >= 0, got ${String(leaseDuration)}`,
    );
  }
  return options;
}
