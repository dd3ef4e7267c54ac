/**
 * The relay end-to-end property's inputs: what a scenario is made of (messages and their
 * fates, sender behaviours, relay events) for each variant, and a store wrapper that sees what
 * relays ask of the store and can abort a tick between its claim and its send.
 */
import fc from "fast-check";
import type { Claim, ClaimOptions, Ordering, PassOutcome, TransactionalStore } from "../../mod.ts";
import { texts, type ValueSpec, valueSpec } from "./text.ts";

/** What the sender does with a message on each attempt. */
export type Fate = "fail" | "random" | "huge";
export type Outcome = "sent" | "failed" | "dead" | "unmarked" | "notAttempted";
/** A windowed send's latency in ms, or "hang": past `sendTimeout`, so its deadline fails it. */
export type Delay = number | "hang";
/** What the sender does with a whole batch. */
export type Behaviour = "mark" | "throw" | "overrun" | "malformed" | "unmarked";

/** One run of the property. */
export interface Scenario {
  keys: string[];
  messages: { key: number; value: ValueSpec; fate: Fate }[];
  outcomes: Outcome[];
  errors: (string | undefined)[];
  retryAfters: (number | undefined)[];
  behaviours: Behaviour[];
  events: ("tick" | "tickAbortAfterClaim" | "vanish" | "sleep")[];
  batchSize: number;
  maxRetries: number;
  ordering: Ordering;
  relays: number;
  onErrorThrows: boolean;
  aliasing: boolean;
  /** The sender's `window` (undefined: a batch sender). */
  window: number | undefined;
  /** Per-message latencies of a windowed sender, drawn in turn. */
  delays: Delay[];
}

/**
 * Which hazards a run may meet beyond the base ones (failures, throws, overruns, malformed
 * results, vanished relays): each is its own test so that one known fault does not hide others.
 */
export interface OutboxVariant {
  /** Error texts and keys with lone surrogates and 4-byte characters. */
  hostileText: boolean;
  /** The caller writes into its value buffer after `addMessage`, the sender into `message.value`. */
  aliasing: boolean;
  /** `onError` throws on every call. */
  onErrorThrows: boolean;
  /** Ticks whose signal aborts between the claim and the send. */
  abortAfterClaim: boolean;
  /** Senders that ask for a `retryAfter` no Date can hold. */
  hugeRetryAfter: boolean;
  /**
   * The sender opts in to the streaming window (`Sender.window`): one message per send, each
   * with its own latency (some hang past `sendTimeout`), and some failed with
   * `attempted: false`.
   */
  windowed?: boolean;
}

export function scenario(v: OutboxVariant): fc.Arbitrary<Scenario> {
  const t = texts(v.hostileText);
  return fc.record({
    keys: t.keys
      .map((keys) => keys.filter((k) => k.length > 0 && k.length <= 1024))
      .filter((k) => k.length > 0),
    messages: fc.array(
      fc.record({
        key: fc.nat(),
        value: valueSpec,
        fate: fc.constantFrom<Fate>(
          "fail",
          "fail",
          "random",
          "random",
          "random",
          ...(v.hugeRetryAfter ? (["huge", "huge", "huge"] as const) : []),
        ),
      }),
      { minLength: 1, maxLength: 12 },
    ),
    outcomes: fc.array(
      fc.constantFrom<Outcome>(
        "sent",
        "sent",
        "failed",
        "dead",
        "unmarked",
        ...(v.windowed ? (["notAttempted", "notAttempted"] as const) : []),
      ),
      { minLength: 1, maxLength: 8 },
    ),
    errors: fc.array(t.error, { minLength: 1, maxLength: 4 }),
    retryAfters: fc.array(fc.constantFrom(undefined, 0, 5, 20), { minLength: 1, maxLength: 4 }),
    behaviours: fc.array(
      fc.constantFrom<Behaviour>("mark", "mark", "mark", "throw", "overrun", "malformed", "unmarked"),
      {
        minLength: 1,
        maxLength: 6,
      },
    ),
    events: fc.array(
      fc.constantFrom<Scenario["events"][number]>(
        "tick",
        "tick",
        "tick",
        "vanish",
        "sleep",
        ...(v.abortAfterClaim ? ["tickAbortAfterClaim" as const, "tickAbortAfterClaim" as const] : []),
      ),
      {
        minLength: 1,
        maxLength: 8,
      },
    ),
    batchSize: fc.integer({ min: 1, max: 5 }),
    maxRetries: fc.integer({ min: 0, max: 3 }),
    ordering: fc.constantFrom<Ordering>("none", "key"),
    relays: fc.integer({ min: 1, max: 2 }),
    onErrorThrows: fc.constant(v.onErrorThrows),
    aliasing: fc.constant(v.aliasing),
    window: v.windowed ? fc.integer({ min: 1, max: 4 }) : fc.constant(undefined),
    delays: v.windowed
      ? fc.array(fc.constantFrom<Delay>(0, 0, 1, 4, 12, "hang"), { minLength: 1, maxLength: 6 })
      : fc.constant([0]),
  });
}

/**
 * A store that reports what relays ask of it, and can abort a tick's signal right after its
 * claim (between the claim and the send).
 */
export function watchedStore<T>(
  store: TransactionalStore<T>,
  onFinish: (ids: readonly string[], how: "sent" | "dead") => void,
): TransactionalStore<T> & { abortAfterClaim?: AbortController | undefined } {
  const afterClaim = (claim: Claim): Claim => {
    if (claim.messages.length > 0) {
      watched.abortAfterClaim?.abort(new Error("aborted after the claim"));
      watched.abortAfterClaim = undefined;
    }
    return claim;
  };
  const watched: TransactionalStore<T> & { abortAfterClaim?: AbortController | undefined } = {
    addMessage: (tx, message) => store.addMessage(tx, message),
    withTransaction: (fn) => store.withTransaction(fn),
    fetchAndLock: async (options) => afterClaim(await store.fetchAndLock(options)),
    markAsSent: (token, ids) => {
      onFinish(ids, "sent");
      return store.markAsSent(token, ids);
    },
    markAsDead: (token, updates) => {
      onFinish(
        updates.map((u) => u.id),
        "dead",
      );
      return store.markAsDead(token, updates);
    },
    updateRetryCount: (token, updates) => store.updateRetryCount(token, updates),
    stats: () => store.stats(),
    listDead: (options) => store.listDead(options),
    requeueDead: (ids) => store.requeueDead(ids),
  };
  if (store.recordAndFetch !== undefined) {
    const recordAndFetch = store.recordAndFetch.bind(store);
    watched.recordAndFetch = async (outcome: PassOutcome, next: ClaimOptions) => {
      onFinish(outcome.sent, "sent");
      onFinish(
        outcome.dead.map((u) => u.id),
        "dead",
      );
      const result = await recordAndFetch(outcome, next);
      return { ...result, claim: afterClaim(result.claim) };
    };
  }
  if (store.release !== undefined) watched.release = store.release.bind(store);
  return watched;
}
