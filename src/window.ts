/**
 * The streaming send window: for a sender that delivers each message on its own
 * (`Sender.window`), up to `window` messages in flight continuously instead of batches in lock
 * step, so a slow message holds one slot while the others keep moving.
 *
 * @module
 */
import { SendDeadlines } from "./abort.ts";
import { afterIo } from "./after-io.ts";
import type { TickResult } from "./drain.ts";
import type { Wakes } from "./loop.ts";
import { type Message, SendStatus } from "./message.ts";
import {
  checkLease,
  idOf,
  outcomeOf,
  type RecordContext,
  recordMarks,
  recordReleases,
  releaseUnsent,
  type SentMessage,
  sortClaimed,
} from "./outcome.ts";
import type { RelayContext } from "./relay.ts";
import { sendBatch } from "./send.ts";
import type { Claim, ClaimOptions, DeadUpdate } from "./store.ts";
import type { BatchOutcome, BatchSpan, TickSpan } from "./telemetry.ts";
import type { LoopTurns } from "./turns.ts";

/**
 * Longest time (ms) a finished message's outcome waits before it is written while other
 * messages of its claim are still out: a claim with nothing left out is recorded at once.
 */
export const WINDOW_FLUSH_MS = 100;

/**
 * Time (ms) a message's lease must still have after its `sendTimeout` when it starts: room for
 * the grouped write of its outcome ({@link WINDOW_FLUSH_MS} plus the writes queued before it).
 * A claimed message that cannot start in time goes back unsent, with no attempt spent.
 */
export const WINDOW_RECORD_MARGIN_MS = 500;

/**
 * With a windowed sender, `leaseDuration` must be at least `sendTimeout` plus this (ms): the
 * recording margin ({@link WINDOW_RECORD_MARGIN_MS}) and as much again for the claim write and
 * the wait of a claimed message for a free slot.
 */
export const WINDOW_LEASE_MARGIN_MS = 1000;

/** The largest `Sender.window` the relay accepts. */
export const MAX_WINDOW = 10_000;

/** What {@link relayWindow} needs from its drain. */
export interface WindowRun {
  /** Sends in flight are aborted when it aborts (their messages fail, as in a batch). */
  signal: AbortSignal | undefined;
  /** False once the drain must end: no more claims; what is in flight finishes and is recorded. */
  continues: () => boolean;
  tick: TickSpan;
  turns: LoopTurns;
  /** Counts are added here as outcomes are recorded. */
  result: TickResult;
  /** `wake()` of the loop whose pass this is: it ends a wait for work at once. */
  wakes?: Wakes | undefined;
}

/** One claim while any of its messages is queued, in flight or waits to be recorded. */
interface OpenClaim {
  readonly token: string;
  readonly span: BatchSpan;
  readonly claimed: number;
  readonly started: number;
  /** `performance.now()` when the lease ends, counted from before the claim write. */
  readonly leaseEnd: number;
  /** Messages of the claim queued or in flight. */
  pending: number;
  /** Messages of the claim queued. */
  queued: number;
  /** Messages of the claim not yet recorded (or dropped by a failed write). */
  unrecorded: number;
  /** Finished messages waiting for their write. */
  finished: Finished[];
  /** Queued messages that will not be sent: released unsent at the next write. */
  unsent: string[];
  /** `performance.now()` when the first of `finished` / `unsent` came. */
  oldest: number;
  readonly totals: BatchOutcome;
  /** Whether a message of the claim went to the sender (or died): then it counts as a batch. */
  handed: boolean;
  /** The first batch-wide error of its sends (a timeout, a throw), for its span and metrics. */
  sendError: unknown;
  /** The first store error met recording its outcomes. */
  storeError: unknown;
  /** Settles the claim's span once every message is recorded (or at once when `force`d). */
  settle(force?: boolean): void;
}

/** A finished message waiting to be recorded. */
type Finished = { sent: SentMessage; dead?: undefined } | { sent?: undefined; dead: DeadUpdate };

/** A claimed message waiting for a free slot. */
interface Queued {
  readonly claim: OpenClaim;
  readonly item: SentMessage;
}

/**
 * Relays through the window until nothing is ready or `run.continues()` turns false, then lets
 * every message in flight finish (or be aborted by `run.signal`) and records it before
 * resolving.
 *
 * Claims take `batchSize` messages into a local queue that feeds the window's free slots. Each
 * claim's lease end is known (measured from before the claim call): a queued message starts
 * only while its lease leaves `sendTimeout` + {@link WINDOW_RECORD_MARGIN_MS}, else it goes back
 * unsent at the next write (no attempt spent), so an outcome is always stored under a live
 * lease unless the store itself stalls for longer than the margin.
 *
 * Outcomes are recorded per claim token (marks apply only to rows still holding it; a short
 * count is a `LeaseLostError` for `onError`): a claim with nothing queued or in flight is
 * recorded at once, one with a slow message still out every {@link WINDOW_FLUSH_MS}; groups
 * whose lease ends first are written first. With `recordAndFetch` the last write also claims
 * the next batch, so a fast receiver costs one write per claim, as in the batch relay. With
 * `ordering: "key"` the store never claims a key's next message while one is leased, so a key's
 * next message starts only after the previous outcome is stored. Each claim has its own batch
 * span, from the claim until its last message is recorded. A store error stops the claims and
 * gives the queue back; what is in flight still finishes and is recorded if the store lets it,
 * then the error is thrown (unrecorded messages come back when their lease ends).
 */
export async function relayWindow(context: RelayContext, window: number, run: WindowRun): Promise<void> {
  const { store, options, telemetry } = context;
  const recording: RecordContext = { store, onError: options.onError };
  const sending = { sender: context.sender, sendTimeout: options.sendTimeout, onError: options.onError };
  // One timer for the deadlines of every send in flight, not one per message.
  const deadlines = new SendDeadlines(options.sendTimeout);
  const startBefore = options.sendTimeout + WINDOW_RECORD_MARGIN_MS;
  // A write's claim is free with recordAndFetch: take one whenever the queue is below this, so
  // the next batch is queued before the window runs dry and no separate claim is needed.
  const highWater = window + options.batchSize;
  // A store without `release` cannot give a queued message back without charging an attempt:
  // then a claim takes only what starts at once, as free slots allow.
  const queues = store.release !== undefined;
  const claimSize = () => (queues ? options.batchSize : Math.min(options.batchSize, window - inFlight));
  const open = new Set<OpenClaim>();
  // Entries before `head` are cleared as it passes them: each holds its message (and value)
  // until the array is compacted, which a queue kept topped up may not be for a long time.
  let queue: (Queued | undefined)[] = [];
  let head = 0;
  let inFlight = 0;
  // The last claim found nothing: claim again only after a write or a quiet interval.
  let idle = false;
  // Queued messages went back because no slot freed in time (hanging sends): claim no more
  // until a send ends, or the same messages would be claimed and given back again and again.
  let stalled = false;
  let failure: { error: unknown } | undefined;

  // Once `performance.now()` reaches it, a queued claim may be out of time (see giveBackLate).
  let lateAt = Number.POSITIVE_INFINITY;

  let signalled = false;
  let wakeUp: (() => void) | undefined;
  const wake = () => {
    signalled = true;
    wakeUp?.();
  };
  const queued = () => queue.length - head;
  const hold = (claim: OpenClaim, now: number) => {
    if (claim.finished.length === 0 && claim.unsent.length === 0) claim.oldest = now;
  };
  const finish = (claim: OpenClaim, item: Finished) => {
    const first = claim.finished.length === 0 && claim.unsent.length === 0;
    hold(claim, performance.now());
    claim.finished.push(item);
    claim.pending -= 1;
    // The loop has work only when this claim is complete, its flush timer must start, or the
    // queue is empty (a claim may be due); other finishes just free a slot (see start).
    if (first || claim.pending === 0 || queued() === 0) wake();
  };

  // A claim counts as a batch once it hands a message to the sender (or declares one dead), as
  // a pass does: a claim whose messages all go back unsent is none.
  const handOut = (claim: OpenClaim) => {
    if (claim.handed) return;
    claim.handed = true;
    run.result.batches += 1;
  };

  let startScheduled = false;
  const startSoon = () => {
    if (startScheduled) return;
    startScheduled = true;
    afterIo(() => {
      startScheduled = false;
      startQueued();
    });
  };

  // `signal` has no default: `undefined` (no signal at all) must not turn into the drain's.
  const start = (claim: OpenClaim, item: SentMessage, signal: AbortSignal | undefined) => {
    inFlight += 1;
    handOut(claim);
    void telemetry.within(claim.span, sendBatch, sending, [item.message], signal, deadlines).then((error) => {
      if (error !== undefined) claim.sendError ??= error;
      inFlight -= 1;
      stalled = false;
      finish(claim, { sent: item });
      // The freed slot takes the next queued message, even while a write is running: after the
      // other responses ready now, so their freed slots are refilled together (see after-io.ts).
      startSoon();
    });
  };

  /** A queued message that will not be sent: back unsent at the claim's next write. */
  const giveBack = (claim: OpenClaim, item: SentMessage, now: number) => {
    hold(claim, now);
    claim.unsent.push(item.id);
    claim.pending -= 1;
    claim.queued -= 1;
  };

  /**
   * Leases do not end in queue order (see claimLease): with every slot busy, a claim behind
   * the head may run out of time first. Once the earliest deadline has passed, gives back the
   * queued messages of every claim that can no longer start and finds the next deadline.
   */
  const giveBackLate = (now: number) => {
    let late = false;
    lateAt = Number.POSITIVE_INFINITY;
    for (const claim of open) {
      if (claim.queued === 0) continue;
      if (claim.leaseEnd - now < startBefore) late = true;
      else lateAt = Math.min(lateAt, claim.leaseEnd - startBefore);
    }
    if (!late) return;
    const kept: Queued[] = [];
    for (let i = head; i < queue.length; i++) {
      const entry = queue[i] as Queued;
      if (entry.claim.leaseEnd - now < startBefore) giveBack(entry.claim, entry.item, now);
      else kept.push(entry);
    }
    queue = kept;
    head = 0;
    stalled = true;
    wake();
  };

  /** Starts queued messages into free slots; gives back unsent what can no longer start. */
  const startQueued = () => {
    const now = performance.now();
    const ending = failure !== undefined || !run.continues();
    while (head < queue.length) {
      const { claim, item } = queue[head] as Queued;
      if (ending && !queues) {
        // Claimed as the drain ended, and no `release` to give it back: sent as a batch pass
        // sends such a claim, without the ended drain's signal, however little lease is left
        // (given back, the rows would wait out the lease and the next claim would charge an
        // attempt for a send that never happened).
        claim.queued -= 1;
        start(claim, item, undefined);
      } else if (ending || (queues && claim.leaseEnd - now < startBefore)) {
        // Too late to send and still record under this lease: back unsent at the next write.
        // (Without `release`, giving it back would charge an attempt for a send that never
        // happened: such a claim holds only what starts at once, and is sent as a batch pass
        // sends its claim, however long the claim took.)
        if (!ending && inFlight >= window) stalled = true;
        giveBack(claim, item, now);
        wake();
      } else if (inFlight < window) {
        claim.queued -= 1;
        start(claim, item, run.signal);
      } else break;
      queue[head++] = undefined;
    }
    // Only with every slot busy is anything left queued (an ending drain empties the queue).
    if (head === queue.length) {
      lateAt = Number.POSITIVE_INFINITY;
      queue.length = 0;
      head = 0;
    } else if (queues && now >= lateAt) giveBackLate(now);
    if (head > 1024 && head * 2 > queue.length) {
      queue = queue.slice(head);
      head = 0;
    }
  };

  // The lease a claim asks for (see leaseFor): `leaseDuration`, or longer while claim writes
  // come back so late that it would leave no message time to start (then every claim would go
  // back unsent, be claimed again as late, and so on). `claimTime` is the recent claim write
  // time: that of the last claim that found messages, or half the estimate before it if that was
  // longer, so one stall lengthens a few leases, not the rest of the drain.
  let claimTime = 0;
  let claimLease = options.leaseDuration;
  const claimOptions = (wanted: number) => ({
    batchSize: wanted,
    leaseDuration: claimLease,
    ordering: options.ordering,
  });

  /**
   * Claims with `fetch` (which runs its claim write through the {@link ClaimWrite} it is given)
   * and queues what it got; false when nothing was ready.
   */
  const claimAndQueue = async (fetch: (write: ClaimWrite) => Promise<Claim>): Promise<boolean> => {
    const claim = await openClaim(context, run.tick, open, claimLease, fetch);
    // An empty claim says nothing about the leases: it queues nothing that must start in time.
    if (claim === undefined) return false;
    claimTime = Math.max(claim.took, claimTime / 2);
    claimLease = leaseFor(options.leaseDuration, startBefore, claimTime);
    const { entry, messages } = claim;
    const { toSend, exhausted } = sortClaimed(messages, options.maxRetries);
    entry.pending += toSend.length + exhausted.length;
    entry.queued += toSend.length;
    if (toSend.length > 0) lateAt = Math.min(lateAt, entry.leaseEnd - startBefore);
    if (exhausted.length > 0) handOut(entry);
    for (const dead of exhausted) finish(entry, { dead });
    for (const item of toSend) queue.push({ claim: entry, item });
    startQueued();
    entry.settle();
    return true;
  };

  /** A claim of `wanted` messages with no outcome to record in the same write. */
  const claimAlone = (wanted: number): Promise<boolean> =>
    claimAndQueue((write) => write(() => store.fetchAndLock(claimOptions(wanted))));

  const fail = (claim: OpenClaim | undefined, error: unknown) => {
    if (claim !== undefined) claim.storeError ??= error;
    if (failure === undefined) failure = { error };
    else options.onError(error);
  };

  /** Counts a claim's group as recorded (`counts`), or as dropped by a failed write. */
  const settleGroup = (claim: OpenClaim, size: number, counts: BatchOutcome | undefined) => {
    if (counts !== undefined) {
      addCounts(claim.totals, counts);
      addCounts(run.result, counts);
    }
    claim.unrecorded -= size;
    claim.settle();
  };

  /** Claims whose waiting outcomes are due: nothing of theirs left out, or waited long enough. */
  const dueClaims = (now: number): OpenClaim[] => {
    const due: OpenClaim[] = [];
    for (const claim of open) {
      const waiting = claim.finished.length + claim.unsent.length;
      if (waiting > 0 && (claim.pending === 0 || now - claim.oldest >= WINDOW_FLUSH_MS)) due.push(claim);
    }
    // The lease closest to its end is written first.
    return due.sort((a, b) => a.leaseEnd - b.leaseEnd);
  };

  /**
   * Records the due claims' groups, one group of writes per claim token, and, when `refill`
   * is > 0, claims that many more. With `recordAndFetch`, the last group's marks and the claim
   * are one write (the claim then sees every outcome recorded, so a key just finished frees its
   * next message); if that write fails, the group is recorded again with the plain marks before
   * the error ends the drain. Answers whether the claim found messages (undefined: none made).
   */
  const flush = async (due: OpenClaim[], refill: number): Promise<boolean | undefined> => {
    const groups = due.map((claim) => {
      const group: Group = {
        claim,
        finished: claim.finished,
        unsent: claim.unsent,
        released: new Set(),
        retried: 0,
      };
      claim.finished = [];
      claim.unsent = [];
      return group;
    });
    const pipelined = refill > 0 && store.recordAndFetch !== undefined ? groups.pop() : undefined;
    const recordAlone = async (group: Group) => {
      let counts: BatchOutcome | undefined;
      try {
        counts = (await recordGroup(context, recording, group)).counts;
      } catch (error) {
        // Dropped: their leases run out and the rows come back. The drain ends with this error.
        fail(group.claim, error);
      }
      settleGroup(group.claim, group.finished.length + group.unsent.length, counts);
    };
    for (const group of groups) await recordAlone(group);
    if (refill === 0 || failure !== undefined) {
      // No claim after a store error: the last group is recorded on its own.
      if (pipelined !== undefined) await recordAlone(pipelined);
      return undefined;
    }
    if (pipelined === undefined) {
      try {
        return await claimAlone(refill);
      } catch (error) {
        fail(undefined, error);
        return undefined;
      }
    }
    let counts: BatchOutcome | undefined;
    let recorded = false;
    try {
      return await claimAndQueue(async (write) => {
        const result = await recordGroup(context, recording, pipelined, {
          claim: claimOptions(refill),
          write,
        });
        recorded = true;
        counts = result.counts;
        return result.claim ?? { token: "", messages: [] };
      });
    } catch (error) {
      fail(undefined, error);
      if (!recorded) {
        // The combined write failed: the outcomes are worth a second, plain try.
        await recordAlone(pipelined);
        return undefined;
      }
      pipelined.claim.storeError ??= error;
      return undefined;
    } finally {
      if (recorded || failure === undefined) {
        settleGroup(pipelined.claim, pipelined.finished.length + pipelined.unsent.length, counts);
      }
    }
  };

  // A `wake()` of the loop (a message just committed): claim again now, not after `period`.
  if (run.wakes !== undefined) {
    run.wakes.onWake = () => {
      idle = false;
      wake();
    };
  }

  const waitForWork = async (timeoutMs: number | undefined) => {
    if (!signalled) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      await new Promise<void>((resolve) => {
        wakeUp = resolve;
        if (timeoutMs !== undefined) timer = setTimeout(resolve, Math.max(0, timeoutMs));
      });
      clearTimeout(timer);
      wakeUp = undefined;
    }
    signalled = false;
  };

  try {
    // Bounded: every turn writes, claims, waits for a send (each ends by sendTimeout) or the
    // flush timer, or ends the loop; the loop ends once claims stop and nothing is left out.
    for (;;) {
      startQueued();
      const now = performance.now();
      const claiming = failure === undefined && run.continues();
      const due = dueClaims(now);
      let acted = false;
      if (due.length > 0) {
        const room = queues ? queued() < highWater && !stalled : queued() === 0 && inFlight < window;
        const refill = claiming && room ? claimSize() : 0;
        // What is recorded may free a key, and new messages may have come: not idle any more
        // unless the claim made with the write found nothing.
        idle = (await flush(due, refill)) === false;
        acted = true;
      } else if (claiming && !idle && queued() === 0 && inFlight < window) {
        // A slot is free and nothing waits for it: a claim of its own.
        try {
          idle = !(await claimAlone(claimSize()));
        } catch (error) {
          fail(undefined, error);
        }
        acted = true;
      }
      if (!acted) {
        let waiting = false;
        let nextDue: number | undefined;
        const until = (wait: number) => {
          nextDue = nextDue === undefined ? wait : Math.min(nextDue, wait);
        };
        for (const claim of open) {
          if (claim.finished.length + claim.unsent.length === 0) continue;
          waiting = true;
          until(claim.oldest + WINDOW_FLUSH_MS - now);
        }
        // Every slot busy (hanging sends, say): a queued claim must still go back unsent once it
        // can no longer start, not sit there past its lease. The earliest such deadline counts,
        // wherever that claim is in the queue.
        if (queues && queued() > 0 && lateAt < Number.POSITIVE_INFINITY) until(lateAt - now);
        if (inFlight === 0 && queued() === 0 && !waiting && (idle || !claiming)) break;
        // With an outcome waiting, wake for its write. With the store idle, claim again once a
        // send ends (its write claims) or after `period`, not sooner: a slow send must not turn
        // the window into a busy poll of an empty store (a batch pass would not poll at all).
        await waitForWork(nextDue ?? (idle ? options.period : undefined));
        if (idle && !waiting) idle = false;
      }
      await run.turns.maybeYield();
    }
  } finally {
    deadlines.dispose();
    if (run.wakes !== undefined) run.wakes.onWake = undefined;
    for (const claim of open) claim.settle(true);
  }
  if (failure !== undefined) throw failure.error;
}

/**
 * The lease a claim asks for after claim writes of about `claimTime` ms: `leaseDuration`, or
 * twice `claimTime` plus what a start needs (`startBefore`: `sendTimeout` +
 * {@link WINDOW_RECORD_MARGIN_MS}) if longer, so a message of a late claim still has time to
 * start; at most `leaseDuration` + `startBefore` (under twice `leaseDuration`, see
 * {@link WINDOW_LEASE_MARGIN_MS}), so a crashed relay's messages come back within that.
 */
function leaseFor(leaseDuration: number, startBefore: number, claimTime: number): number {
  const wanted = Math.max(leaseDuration, Math.ceil(2 * claimTime) + startBefore);
  return Math.min(wanted, leaseDuration + startBefore);
}

/**
 * Runs a claim's store write (the claim alone, or outcomes and claim in one `recordAndFetch`)
 * and notes when it started and how long it took: the lease is counted from its start, and its
 * time sizes the next leases (writes before it, such as releases, count in neither).
 */
type ClaimWrite = <T>(write: () => Promise<T>) => Promise<T>;

/** One claim's waiting outcomes, taken for a write. */
interface Group {
  readonly claim: OpenClaim;
  readonly finished: readonly Finished[];
  readonly unsent: readonly string[];
  /**
   * Set once the unsent are given back. A group recorded again after a failed write must not
   * give back or release twice: the rows no longer hold the token.
   */
  gaveBack?: true;
  /** Ids whose release is written (or recorded as a failed attempt instead), as {@link gaveBack}. */
  readonly released: Set<string>;
  /** The rows recorded as failed attempts instead of released. */
  retried: number;
}

/** Adds `counts` into `into`. */
function addCounts(into: BatchOutcome, counts: BatchOutcome): void {
  into.sent += counts.sent;
  into.failed += counts.failed;
  into.dead += counts.dead;
}

/**
 * Claims with `fetch` (a lease of `lease` ms) inside a batch span that stays open until the
 * claim's last message is recorded (`settle`). Undefined when nothing was ready; else the claim
 * and how long its claim write took (`took`, ms). A store error rejects.
 */
function openClaim(
  context: RelayContext,
  tick: TickSpan,
  open: Set<OpenClaim>,
  lease: number,
  fetch: (write: ClaimWrite) => Promise<Claim>,
): Promise<{ entry: OpenClaim; messages: Message[]; took: number } | undefined> {
  const { telemetry } = context;
  // The span below lives until the claim's last message is recorded, and `fetch` holds what its
  // write recorded: with `recordAndFetch`, the previous claim's messages and that claim, whose
  // span holds its own `fetch`, and so on back to the drain's first claim (every value ever
  // sent). So no closure here captures the parameter: `claimWrite` is dropped once it ran.
  let claimWrite: typeof fetch | undefined = fetch;
  return new Promise((resolve, reject) => {
    telemetry
      .batch(tick, async (span) => {
        const started = performance.now();
        let writeStarted = started;
        let took = 0;
        // Runs once: the span callback is called once.
        const claiming = (claimWrite as typeof fetch)(async (write) => {
          // Before the write: the store may start the lease at any moment during it.
          writeStarted = performance.now();
          const result = await write();
          took = performance.now() - writeStarted;
          return result;
        });
        claimWrite = undefined;
        const claim = await claiming;
        if (claim.messages.length === 0) {
          resolve(undefined);
          return;
        }
        telemetry.claimed(span, claim.messages);
        let done: () => void = () => {};
        const recorded = new Promise<void>((settled) => {
          done = settled;
        });
        const entry: OpenClaim = {
          token: claim.token,
          span,
          claimed: claim.messages.length,
          started,
          leaseEnd: writeStarted + lease,
          pending: 0,
          queued: 0,
          unrecorded: claim.messages.length,
          finished: [],
          unsent: [],
          oldest: started,
          totals: { sent: 0, failed: 0, dead: 0 },
          handed: false,
          sendError: undefined,
          storeError: undefined,
          settle(force = false) {
            if ((this.unrecorded > 0 && !force) || !open.delete(this)) return;
            done();
          },
        };
        open.add(entry);
        resolve({ entry, messages: claim.messages, took });
        await recorded;
        if (entry.storeError !== undefined) throw entry.storeError;
        const duration = performance.now() - started;
        telemetry.recorded(span, entry.claimed, entry.totals, duration, entry.sendError);
      })
      // A claim that failed rejects the claim; a later store error is the drain's to throw.
      .catch(reject);
  });
}

/**
 * Records one claim's group: the unsent given back, the releases, then the marks, or, with
 * `next`, the marks and the next claim in one `recordAndFetch` (run through `next.write`).
 * Store errors propagate; what was written before one is not written again on a second try.
 */
async function recordGroup(
  context: RelayContext,
  recording: RecordContext,
  group: Group,
  next?: { claim: ClaimOptions; write: ClaimWrite },
): Promise<{ counts: BatchOutcome; claim?: Claim }> {
  const { token } = group.claim;
  const sent: SentMessage[] = [];
  const exhausted: DeadUpdate[] = [];
  for (const item of group.finished) {
    if (item.sent !== undefined) sent.push(item.sent);
    else exhausted.push(item.dead);
  }
  const outcome = outcomeOf(token, exhausted, sent, context.options);
  if (group.gaveBack === undefined) {
    // Not sent: back at once with no attempt spent. Without `release` (or when it fails,
    // reported) they wait out the lease.
    if (group.unsent.length > 0) await releaseUnsent(recording, token, group.unsent);
    group.gaveBack = true;
  }
  const { released } = group;
  const releases =
    released.size === 0 ? outcome.release : outcome.release.filter((update) => !released.has(update.id));
  await recordReleases(recording, token, releases, (ids, retried) => {
    for (const id of ids) released.add(id);
    group.retried += retried;
  });
  const { retried } = group;
  const marks = { token, sent: outcome.sent, retry: outcome.retry, dead: outcome.dead };
  let counts: BatchOutcome;
  let claim: Claim | undefined;
  const { store } = context;
  const recordAndFetch = store.recordAndFetch;
  if (next !== undefined && recordAndFetch !== undefined) {
    const result = await next.write(() => recordAndFetch.call(store, marks, next.claim));
    claim = result.claim;
    counts = {
      sent: checkLease(recording, marks.sent, result.recorded.sent),
      failed: checkLease(recording, marks.retry.map(idOf), result.recorded.failed),
      dead: checkLease(recording, marks.dead.map(idOf), result.recorded.dead),
    };
  } else counts = await recordMarks(recording, marks);
  const messages = sent.map((s) => s.message);
  if (messages.some((m) => m.status !== SendStatus.Sent)) context.logFailedBatch?.(messages);
  return { counts: { ...counts, failed: counts.failed + retried }, claim };
}
