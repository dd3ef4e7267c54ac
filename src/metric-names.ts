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
// Per meter: each name in use, the store it reports on and how many live outboxes hold it.
const inUse = new WeakMap<object, Map<string, { store: object; holders: number }>>();
// Bounds the search for a free suffix; past it the name is shared (and reported).
const MAX_SUFFIX = 10_000;

/**
 * Claims `name` on `meter` for one outbox of `store` and returns the name to use and a release
 * function (idempotent). Outboxes of the same store object share a name (their gauges report the
 * same numbers). A `defaulted` name that another store holds gets the first free `#2`, `#3`, ... suffix; a
 * name the caller chose that is taken is kept as is and reported to `onError` as a
 * `ValidationError`, since renaming it would break the caller's dashboards.
 */
export function claimMetricName(
  store: object,
  meter: Meter | undefined,
  name: string,
  defaulted: boolean,
  onError: (error: unknown) => void,
): { name: string; release: () => void } {
  const key: object = meter ?? GLOBAL_METER;
  let names = inUse.get(key);
  if (names === undefined) {
    names = new Map();
    inUse.set(key, names);
  }
  const taken = (candidate: string) => {
    const holder = names.get(candidate);
    return holder !== undefined && holder.store !== store;
  };
  let chosen = name;
  if (taken(name)) {
    if (defaulted) {
      for (let i = 2; i <= MAX_SUFFIX && taken(chosen); i++) chosen = `${name}#${i}`;
    }
    if (taken(chosen)) {
      onError(
        new ValidationError(
          `name ${JSON.stringify(name)} is already used by another live outbox on this meter: their gauges (outbox.message.count, outbox.message.oldest_age) overwrite each other; give each outbox its own name`,
        ),
      );
      return { name, release: () => {} };
    }
  }
  const holder = names.get(chosen) ?? { store, holders: 0 };
  holder.holders += 1;
  names.set(chosen, holder);
  const owned = names;
  let released = false;
  return {
    name: chosen,
    release: () => {
      if (released) return;
      released = true;
      holder.holders -= 1;
      if (holder.holders === 0) owned.delete(chosen);
    },
  };
}
