/**
 * Keeps the `outbox.name` of live outboxes on one meter apart: two outboxes with the same name
 * would write the same gauge points and overwrite each other's numbers.
 *
 * @module
 */
import type { Meter } from "@opentelemetry/api";
import { ValidationError } from "./errors.ts";

// Key for outboxes on the global provider's meter (no `meter` option).
const GLOBAL_METER: object = {};
const inUse = new WeakMap<object, Set<string>>();
// Bounds the search for a free suffix; past it the name is shared (and reported).
const MAX_SUFFIX = 10_000;

/**
 * Claims `name` on `meter` for one outbox and returns the name to use and a release function
 * (idempotent). A `defaulted` name that is taken gets the first free `#2`, `#3`, ... suffix; a
 * name the caller chose that is taken is kept as is and reported to `onError` as a
 * `ValidationError`, since renaming it would break the caller's dashboards.
 */
export function claimMetricName(
  meter: Meter | undefined,
  name: string,
  defaulted: boolean,
  onError: (error: unknown) => void,
): { name: string; release: () => void } {
  const key: object = meter ?? GLOBAL_METER;
  let names = inUse.get(key);
  if (names === undefined) {
    names = new Set();
    inUse.set(key, names);
  }
  let chosen = name;
  if (names.has(name)) {
    if (defaulted) {
      for (let i = 2; i <= MAX_SUFFIX && names.has(chosen); i++) chosen = `${name}#${i}`;
    }
    if (names.has(chosen)) {
      onError(
        new ValidationError(
          `name ${JSON.stringify(name)} is already used by another live outbox on this meter: their gauges (outbox.message.count, outbox.message.oldest_age) overwrite each other; give each outbox its own name`,
        ),
      );
      return { name, release: () => {} };
    }
  }
  names.add(chosen);
  const owned = names;
  let released = false;
  return {
    name: chosen,
    release: () => {
      if (released) return;
      released = true;
      owned.delete(chosen);
    },
  };
}
