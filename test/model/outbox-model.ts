/**
 * The relay end to end: messages committed through `Outbox.addMessage`, relayed by one or two
 * outboxes' `tick()` with a sender that randomly delivers, fails (with hostile error texts and
 * `retryAfter`s, some beyond what a Date holds), kills, throws, overruns `sendTimeout`, leaves
 * messages unmarked or returns a malformed result; meanwhile relays vanish mid-batch (a claim
 * never marked; a bounded number of times, see `maxVanishes`) and ticks abort between claim and send. Checked: nothing is lost, an
 * always-failing message is attempted exactly `1 + maxRetries` times, no message more often,
 * per-key order, exact bytes on every attempt, and a throwing `onError` breaks no tick.
 */
import fc from "fast-check";
import { LeaseLostError, type Message, Outbox, type Sender, type TransactionalStore } from "../../mod.ts";
import {
  type Fate,
  type OutboxVariant,
  type Outcome,
  type Scenario,
  scenario,
  watchedStore,
} from "./outbox-scenario.ts";
import type { Budget } from "./property.ts";
import { ModelViolation, SEQ_HEADER, violated } from "./reference.ts";
import { type ModelStoreFactory, sleep } from "./store-run.ts";
import { acceptableText, expectedError, inputValue, show } from "./text.ts";

const SEND_TIMEOUT = 40;
const LEASE = 5_000;
const VANISH_LEASE = 60;
// A `retryAfter` no Date can hold when added to now (Date's range ends at 8.64e15 ms).
const HUGE_RETRY_AFTER = 1e16;
// Liveness bound. A message can lose two full leases (a pass that dies after its claim, twice)
// and still be delivered: four leases leave room for a loaded machine (a 10 s bound failed under
// `npm run fuzz` beside other work, and the same path passed when replayed on a quiet machine).
const RUN_DEADLINE = 4 * LEASE;
// Claims a vanishing relay may make (crashes holding messages) before it stays down. Liveness
// needs this fairness: a relay that crashes after every claim, forever, and always reclaims the
// messages the moment their lease ends, starves every live relay (its reclaims even count the
// attempts past maxRetries, but only a live relay declares a message dead). Twice what it takes
// to exhaust a message still lets vanished relays alone spend every attempt.
const maxVanishes = (maxRetries: number) => 2 * (maxRetries + 2);
// Times the model's sender may give one message back not attempted before it delivers it.
const MAX_DEFERRALS = 3;

interface Tracked {
  seq: number;
  key: string;
  bytes: Uint8Array;
  fate: Fate;
  id?: string;
  /** Times it was handed to the sender (an open signal), or claimed by a relay that vanished. */
  attempts: number;
  /** A relay asked the store to record it sent or dead (requested; applies if the lease held). */
  finished?: "sent" | "dead";
  hugeGiven: boolean;
  /** Times the sender gave it back not attempted (`attempted: false`). */
  deferred: number;
  /**
   * The error the sender gave with its last mark, when its last attempt was a plain failure
   * mark (not a throw, an overrun or a vanished relay): a message that then dies keeps it.
   */
  lastMark?: { error: string | undefined } | undefined;
}

/** The end-to-end relay property over `factory`'s stores. */
export function outboxModelProperty(
  factory: ModelStoreFactory,
  variant: OutboxVariant,
  log: (line: string) => void,
  budget: Budget,
): fc.IAsyncProperty<[Scenario]> {
  let run = 0;
  return fc.asyncProperty(scenario(variant), async (s) => {
    if (!budget.start()) return;
    log(`RUN ${run++} outbox model ${show({ ...s, messages: s.messages.length })}`);
    const opened = await factory({ keepSent: false });
    // With a throwing onError the library reports to console.error (as it must): kept out of
    // the test output; that report is the core's own tests' business.
    const consoleError = console.error;
    if (s.onErrorThrows) console.error = () => {};
    try {
      await relayScenario(opened.store, s, log, opened.refusesNul);
    } finally {
      console.error = consoleError;
      await opened.close();
    }
  });
}

async function relayScenario<T>(
  store: TransactionalStore<T>,
  s: Scenario,
  log: (line: string) => void,
  refusesNul: boolean | undefined,
): Promise<void> {
  const tracked: Tracked[] = [];
  const byId = new Map<string, Tracked>();
  const leaseLost = new Set<string>();
  let sends = 0;
  let draws = 0;
  const draw = <V>(list: readonly V[]): V => list[draws++ % list.length]!;

  const identify = (message: Message, where: string): Tracked => {
    const t = tracked.find((x) => x.seq === Number(message.headers[SEQ_HEADER]));
    if (t === undefined)
      violated("only committed messages are relayed", `${where}: ${show(message.headers)}`);
    if (t.id === undefined) {
      if (byId.has(message.id)) violated("ids are unique", `${where}: ${message.id} twice`);
      t.id = message.id;
      byId.set(message.id, t);
    } else if (t.id !== message.id)
      violated("ids are stable", `${where}: #${t.seq} ${t.id} then ${message.id}`);
    return t;
  };
  const attempt = (t: Tracked, where: string) => {
    t.attempts += 1;
    t.lastMark = undefined;
    if (t.attempts > 1 + s.maxRetries) {
      violated(
        "attempts never exceed 1 + maxRetries",
        `${where}: #${t.seq} attempt ${t.attempts}, maxRetries ${s.maxRetries}`,
      );
    }
    if (t.finished === "sent" && !leaseLost.has(t.id!)) {
      violated("a delivered message is not handed out again", `${where}: #${t.seq} (${t.id})`);
    }
    if (s.ordering === "key") {
      const older = tracked.find((x) => x.key === t.key && x.seq < t.seq && x.finished === undefined);
      if (older !== undefined) {
        violated(
          'per-key order holds with ordering "key"',
          `${where}: #${t.seq} handed out while older #${older.seq} is unfinished`,
        );
      }
    }
  };

  const onFinish = (ids: readonly string[], how: "sent" | "dead") => {
    for (const id of ids) {
      const t = byId.get(id);
      if (t !== undefined && t.finished === undefined) t.finished = how;
    }
  };
  const watched = watchedStore(store, onFinish);
  const tickErrors: unknown[] = [];
  // A check that fails inside the sender would only fail the batch: keep it for after the tick.
  let senderViolation: unknown;
  const sender: Sender = {
    window: s.window,
    async send(messages, signal) {
      try {
        return await sendAs(messages, signal);
      } catch (error) {
        if (error instanceof ModelViolation) senderViolation ??= error;
        throw error;
      }
    },
  };
  const sendAs = async (messages: Message[], signal: AbortSignal): Promise<Message[]> => {
    const behaviour = draw(s.behaviours);
    const where = `send #${++sends} (${behaviour})`;
    for (const message of messages) identify(message, where);
    if (s.window !== undefined && messages.length !== 1) {
      violated("a windowed sender gets one message per send", `${where}: ${messages.length} messages`);
    }
    // An aborted signal on entry: a real sender (fetch) sends nothing, so no attempt happened.
    if (signal.aborted) throw signal.reason;
    for (const message of messages) {
      const t = identify(message, where);
      if (!sameBytes(message.value, t.bytes)) {
        violated(
          "bytes delivered equal bytes added, on every attempt",
          `${where}: #${t.seq} ${show(Array.from(message.value))}`,
        );
      }
      attempt(t, where);
    }
    if (behaviour === "throw") throw new Error(draw(s.errors) ?? "sender failed");
    if (s.window !== undefined) {
      // Each message of the window at its own pace; a hang outlives its sendTimeout.
      const delay = draw(s.delays);
      if (delay === "hang") {
        await sleep(SEND_TIMEOUT * 3);
        return messages;
      }
      if (delay > 0) await sleep(delay);
    }
    if (behaviour === "overrun") {
      await sleep(SEND_TIMEOUT * 3);
      return messages;
    }
    if (behaviour !== "unmarked") {
      for (const message of messages) {
        const t = byId.get(message.id)!;
        const drawn: Outcome = t.fate === "random" ? draw(s.outcomes) : "failed";
        // A sender that never attempts a message keeps it pending forever (by design: no attempt
        // is spent on it). The draws are cyclic, so a message can land on "notAttempted" at
        // every send: after MAX_DEFERRALS it is delivered, so liveness stays checkable.
        const outcome: Outcome = drawn === "notAttempted" && t.deferred >= MAX_DEFERRALS ? "sent" : drawn;
        const error = draw(s.errors);
        if (t.fate === "huge" && !t.hugeGiven) {
          t.hugeGiven = true;
          message.markAsFailed({ retryAfter: HUGE_RETRY_AFTER, error });
        } else if (outcome === "sent") message.markAsSent();
        else if (outcome === "dead") message.markAsDead({ error });
        else if (outcome === "notAttempted") {
          // Never tried (an open breaker): no attempt is spent, whatever retryAfter asks.
          message.markAsFailed({ attempted: false, retryAfter: draw(s.retryAfters), error });
          t.attempts -= 1;
          t.deferred += 1;
        } else if (outcome === "failed") {
          const retryAfter = draw(s.retryAfters);
          message.markAsFailed(retryAfter === undefined ? { error } : { retryAfter, error });
          t.lastMark = behaviour === "mark" ? { error } : undefined;
        }
        // A sender that writes into what it was given changes nothing stored.
        if (s.aliasing) message.value.fill(0xab);
      }
    }
    return behaviour === "malformed" ? (null as unknown as Message[]) : messages;
  };
  const onError = (error: unknown) => {
    if (error instanceof LeaseLostError) for (const id of error.messageIds) leaseLost.add(id);
    if (s.onErrorThrows) throw new Error("onError threw");
  };
  const options = {
    batchSize: s.batchSize,
    maxRetries: s.maxRetries,
    ordering: s.ordering,
    sendTimeout: SEND_TIMEOUT,
    leaseDuration: LEASE,
    backoff: { initialDelay: 5, maxDelay: 20, factor: 2 },
    onError,
    statsCacheTtl: 0,
  };
  const relays = Array.from({ length: s.relays }, () => new Outbox(watched, sender, options));

  // Commit the messages, some per transaction, through the public addMessage.
  let seq = 0;
  await watched.withTransaction(async (tx) => {
    for (const spec of s.messages) {
      // A message told to wait out a huge retryAfter would hold up the rest of its key (with
      // ordering "key") past the run: it gets a key of its own.
      const key = spec.fate === "huge" ? `huge:${seq + 1}` : s.keys[spec.key % s.keys.length]!;
      const value = inputValue(spec.value);
      const bytes = typeof value === "string" ? new TextEncoder().encode(value) : Uint8Array.from(value);
      const t: Tracked = {
        seq: ++seq,
        key,
        bytes,
        fate: spec.fate,
        attempts: 0,
        hugeGiven: false,
        deferred: 0,
      };
      try {
        await relays[0]!.addMessage(tx, { key, value, headers: { [SEQ_HEADER]: String(t.seq) } });
        // What addMessage accepted is what is delivered, whatever the caller does with its buffer.
        if (s.aliasing && typeof value !== "string") value.fill(0xee);
      } catch (error) {
        // Refusing a key (lone surrogates) is allowed; crashing or storing it malformed is not.
        log(`addMessage refused ${show(key)}: ${String(error)}`);
        continue;
      }
      tracked.push(t);
    }
  });

  let vanishes = 0;
  const vanish = async () => {
    if (vanishes >= maxVanishes(s.maxRetries)) return;
    const claim = await store.fetchAndLock({
      batchSize: s.batchSize,
      leaseDuration: VANISH_LEASE,
      ordering: s.ordering,
    });
    if (claim.messages.length > 0) vanishes += 1;
    for (const message of claim.messages) {
      const t = identify(message, "vanished relay");
      // A relay sends a message only while it has attempts left (else it kills it unsent).
      if (message.retries <= s.maxRetries) attempt(t, "vanished relay");
    }
  };
  const tick = async (abortAfterClaim: boolean) => {
    const controller = new AbortController();
    if (abortAfterClaim) watched.abortAfterClaim = controller;
    await Promise.all(
      relays.map((relay, i) =>
        relay.tick(i === 0 ? { signal: controller.signal } : {}).catch((error: unknown) => {
          tickErrors.push(error);
        }),
      ),
    );
    watched.abortAfterClaim = undefined;
    if (senderViolation !== undefined) throw senderViolation;
    if (tickErrors.length > 0) {
      violated("a throwing onError (or sender) never makes tick() reject", String(tickErrors[0]));
    }
  };

  const started = Date.now();
  const finished = async () => {
    const listed = await store.listDead({ limit: 1000 });
    // A message may die without reaching the sender (attempts spent by vanished relays).
    for (const message of listed) identify(message, "listDead");
    const dead = new Set(listed.map((m) => m.id));
    return tracked.every(
      (t) =>
        t.finished === "sent" || (t.id !== undefined && dead.has(t.id)) || (t.fate === "huge" && t.hugeGiven),
    );
  };
  for (let i = 0; !(await finished()); i++) {
    if (Date.now() - started > RUN_DEADLINE) {
      const stats = await store.stats();
      violated(
        "every committed message is eventually sent or dead",
        `after ${RUN_DEADLINE} ms: ${show(tracked.filter((t) => t.finished === undefined).map((t) => ({ seq: t.seq, id: t.id, attempts: t.attempts, fate: t.fate })))}, stats ${show(stats)}`,
      );
    }
    const event = s.events[i % s.events.length]!;
    log(`event(${event})`);
    if (event === "vanish") await vanish();
    else if (event === "sleep") await sleep(15);
    else await tick(event === "tickAbortAfterClaim");
    // Every round of events ends with a wait for short backoffs and a plain tick, so that a
    // round without ticks still moves the messages on.
    if (i % s.events.length === s.events.length - 1) {
      await sleep(10);
      await tick(false);
    }
  }
  // A clean tick at the end: messages in backoff (huge retryAfter) stay; nothing else remains.
  await sleep(VANISH_LEASE + 20);
  await tick(false);

  const deadList = await store.listDead({ limit: 1000 });
  const dead = new Set(deadList.map((m) => m.id));
  for (const message of deadList) identify(message, "listDead");
  let unfinished = 0;
  for (const t of tracked) {
    const isDead = t.id !== undefined && dead.has(t.id);
    if (!isDead && t.finished !== "sent") unfinished += 1;
    const deadMessage = deadList.find((m) => m.id === t.id);
    if (t.fate === "fail" && t.lastMark !== undefined && deadMessage !== undefined) {
      const kept = expectedError(t.lastMark.error, refusesNul);
      const actual = deadMessage.lastError;
      if (kept === undefined ? actual !== undefined : actual === undefined || !acceptableText(kept, actual)) {
        violated(
          "a message that fails its last attempt dies with that attempt's error",
          `#${t.seq} (${t.id}): lastError ${show(actual)}, the sender said ${show(kept)}`,
        );
      }
    }
    if (t.fate === "fail" && !(isDead && t.attempts === 1 + s.maxRetries)) {
      violated(
        "an always-failing message is attempted exactly 1 + maxRetries times, then dead",
        `#${t.seq} (${t.id}): ${t.attempts} attempt(s), ${isDead ? "dead" : "not dead"}, maxRetries ${s.maxRetries}`,
      );
    }
    if (t.fate === "huge" && t.id !== undefined && leaseLost.has(t.id)) {
      violated("an out-of-range retryAfter is never reported as a lost lease", `#${t.seq} (${t.id})`);
    }
    if (isDead && t.finished === "sent") violated("a delivered message is not dead", `#${t.seq}`);
  }
  const stats = await store.stats();
  if (stats.pending + stats.inFlight !== unfinished || stats.dead !== dead.size) {
    violated(
      "nothing committed is lost",
      `stats ${show(stats)}, expected ${unfinished} unfinished (huge retryAfter) and ${dead.size} dead`,
    );
  }
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}
