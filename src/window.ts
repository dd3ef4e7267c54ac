/**
 * The streaming send window: for a sender that delivers each message on its own
 * (`Sender.window`), up to `window` messages in flight continuously instead of batches in lock
 * step, so a slow message holds one slot while the others keep moving.
 *
 * @module
 */
import type { TickResult } from "./drain.ts";
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
 * Longest time (ms) a finished message's outcome waits before it is written: outcomes are
 * recorded in groups, at most a few writes per claim per this interval, never one per message.
 */
export const WINDOW_FLUSH_MS = 100;

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
}

/** One claim while any of its messages is in flight or waits to be recorded. */
interface OpenClaim {
  readonly token: string;
  readonly span: BatchSpan;
  readonly claimed: number;
  readonly started: number;
  /** Messages of the claim not yet recorded (or dropped by a failed write). */
  unrecorded: number;
  readonly totals: BatchOutcome;
  /** The first batch-wide error of its sends (a timeout, a throw), for its span and metrics. */
  sendError: unknown;
  /** The first store error met recording its outcomes. */
  storeError: unknown;
  /** Settles the claim's span once every message is recorded (or at once when `force`d). */
  settle(force?: boolean): void;
}

/** A finished message waiting to be recorded. */
type Finished =
  | { claim: OpenClaim; sent: SentMessage; dead?: undefined }
  | { claim: OpenClaim; sent?: undefined; dead: DeadUpdate };

/**
 * Relays through the window until nothing is ready or `run.continues()` turns false, then lets
 * every message in flight finish (or be aborted by `run.signal`) and records it before
 * resolving. A claim takes only what can start at once (`window` minus what is in flight, at
 * most `batchSize`), so a message's lease covers its claim, its send (at most `sendTimeout`)
 * and at most {@link WINDOW_FLUSH_MS} plus one write before its outcome is stored.
 *
 * Outcomes are recorded per claim token (marks apply only to rows still holding it; a short
 * count is a `LeaseLostError` for `onError`), grouped: when half the window (or `batchSize`) has
 * finished, when the oldest waited {@link WINDOW_FLUSH_MS}, or when nothing else is in flight.
 * With `ordering: "key"` the store never claims a key's next message while one is leased, so a
 * key's next message starts only after the previous outcome is stored. Each claim has its own
 * batch span, from the claim until its last message is recorded. A store error stops the
 * claims; what is in flight still finishes and is recorded if the store lets it, then the
 * error is thrown (unrecorded messages come back when their lease ends).
 */
export async function relayWindow(context: RelayContext, window: number, run: WindowRun): Promise<void> {
  const { store, options, telemetry } = context;
  const recording: RecordContext = { store, onError: options.onError };
  const sending = { sender: context.sender, sendTimeout: options.sendTimeout, onError: options.onError };
  // Refills come half a window at a time (one write records and refills several slots), or a
  // claim's worth when `batchSize` is smaller.
  const group = Math.max(1, Math.min(Math.ceil(window / 2), options.batchSize));
  const open = new Set<OpenClaim>();
  let buffer: Finished[] = [];
  let oldest = 0;
  let inFlight = 0;
  // The last claim found nothing: claim again only after a write or a quiet interval.
  let idle = false;
  let failure: { error: unknown } | undefined;

  let signalled = false;
  let wakeUp: (() => void) | undefined;
  const wake = () => {
    signalled = true;
    wakeUp?.();
  };
  const finish = (item: Finished) => {
    if (buffer.length === 0) oldest = performance.now();
    buffer.push(item);
    wake();
  };

  const start = (claim: OpenClaim, item: SentMessage, signal: AbortSignal | undefined) => {
    inFlight += 1;
    void telemetry
      .within(claim.span, () => sendBatch(sending, [item.message], signal, undefined))
      .then((error) => {
        if (error !== undefined) claim.sendError ??= error;
        inFlight -= 1;
        finish({ claim, sent: item });
      });
  };

  const claimOptions = (wanted: number) => ({
    batchSize: wanted,
    leaseDuration: options.leaseDuration,
    ordering: options.ordering,
  });

  /** Claims with `fetch` and starts what it got at once; false when nothing was ready. */
  const claimAndStart = async (fetch: () => Promise<Claim>): Promise<boolean> => {
    const claim = await openClaim(context, run.tick, open, fetch);
    if (claim === undefined) return false;
    const { entry, messages } = claim;
    const { toSend, exhausted } = sortClaimed(messages, options.maxRetries);
    let signal = run.signal;
    if (!run.continues() && toSend.length > 0) {
      // The drain ended during the claim: nothing was sent, so it goes back without an attempt.
      const ids = toSend.map((s) => s.id);
      if (store.release !== undefined && (await releaseUnsent(recording, entry.token, ids))) {
        entry.unrecorded -= toSend.length;
        toSend.length = 0;
      } else {
        // No release, or it failed: sent as a batch pass would send it, without the signal.
        signal = undefined;
      }
    }
    // A claim given back whole is no batch, as in a pass.
    if (toSend.length + exhausted.length > 0) run.result.batches += 1;
    for (const dead of exhausted) finish({ claim: entry, dead });
    for (const item of toSend) start(entry, item, signal);
    entry.settle();
    return true;
  };

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

  /**
   * Records every finished message, one group of writes per claim token, and, when `refill`
   * is > 0, claims that many more. With `recordAndFetch`, the last group's marks and the claim
   * are one write (the claim then sees every outcome recorded, so a key just finished frees its
   * next message). Answers whether the claim found messages (undefined: none was made).
   */
  const flush = async (refill: number): Promise<boolean | undefined> => {
    const finished = buffer;
    buffer = [];
    const byClaim = new Map<OpenClaim, Finished[]>();
    for (const item of finished) {
      const list = byClaim.get(item.claim);
      if (list === undefined) byClaim.set(item.claim, [item]);
      else list.push(item);
    }
    const groups = [...byClaim];
    const pipelined = refill > 0 && store.recordAndFetch !== undefined ? groups.pop() : undefined;
    const recordAlone = async ([claim, items]: [OpenClaim, Finished[]]) => {
      let counts: BatchOutcome | undefined;
      try {
        counts = (await recordGroup(context, recording, claim.token, items)).counts;
      } catch (error) {
        // Dropped: their leases run out and the rows come back. The drain ends with this error.
        fail(claim, error);
      }
      settleGroup(claim, items.length, counts);
    };
    for (const entry of groups) await recordAlone(entry);
    if (refill === 0 || failure !== undefined) {
      // No claim after a store error: the last group is recorded on its own.
      if (pipelined !== undefined) await recordAlone(pipelined);
      return undefined;
    }
    if (pipelined === undefined) {
      try {
        return await claimAndStart(() => store.fetchAndLock(claimOptions(refill)));
      } catch (error) {
        fail(undefined, error);
        return undefined;
      }
    }
    const [claim, items] = pipelined;
    let counts: BatchOutcome | undefined;
    try {
      return await claimAndStart(async () => {
        const recorded = await recordGroup(context, recording, claim.token, items, claimOptions(refill));
        counts = recorded.counts;
        return recorded.claim ?? { token: "", messages: [] };
      });
    } catch (error) {
      fail(claim, error);
      return undefined;
    } finally {
      settleGroup(claim, items.length, counts);
    }
  };

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
    // flush timer, or ends the loop; the loop ends once claims stop and the window is empty.
    for (;;) {
      let acted = false;
      const wanted = Math.min(window - inFlight, options.batchSize);
      const refillDue: boolean =
        failure === undefined && !idle && run.continues() && window - inFlight >= group;
      const age = performance.now() - oldest;
      if (buffer.length > 0 && (refillDue || inFlight === 0 || age >= WINDOW_FLUSH_MS)) {
        // What is recorded may free a key, and new messages may have come: not idle any more
        // unless the claim made with the write found nothing.
        idle = (await flush(refillDue ? wanted : 0)) === false;
        acted = true;
      } else if (refillDue) {
        try {
          idle = !(await claimAndStart(() => store.fetchAndLock(claimOptions(wanted))));
        } catch (error) {
          fail(undefined, error);
        }
        acted = true;
      }
      if (inFlight === 0 && buffer.length === 0 && (idle || failure !== undefined || !run.continues())) {
        break;
      }
      if (!acted) {
        // With an outcome waiting, wake for its flush; with the store idle, look again after a
        // quiet interval (new messages may come while a slow send holds its slot).
        const due = buffer.length > 0 ? WINDOW_FLUSH_MS - age : idle ? WINDOW_FLUSH_MS : undefined;
        await waitForWork(due);
        if (idle && buffer.length === 0) idle = false;
      }
      await run.turns.maybeYield();
    }
  } finally {
    for (const claim of open) claim.settle(true);
  }
  if (failure !== undefined) throw failure.error;
}

/** Adds `counts` into `into`. */
function addCounts(into: BatchOutcome, counts: BatchOutcome): void {
  into.sent += counts.sent;
  into.failed += counts.failed;
  into.dead += counts.dead;
}

/**
 * Claims with `fetch` inside a batch span that stays open until the claim's last
 * message is recorded (`settle`). Undefined when nothing was ready. A store error rejects.
 */
function openClaim(
  context: RelayContext,
  tick: TickSpan,
  open: Set<OpenClaim>,
  fetch: () => Promise<Claim>,
): Promise<{ entry: OpenClaim; messages: Message[] } | undefined> {
  const { telemetry } = context;
  return new Promise((resolve, reject) => {
    telemetry
      .batch(tick, async (span) => {
        const started = performance.now();
        const claim = await fetch();
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
          unrecorded: claim.messages.length,
          totals: { sent: 0, failed: 0, dead: 0 },
          sendError: undefined,
          storeError: undefined,
          settle(force = false) {
            if ((this.unrecorded > 0 && !force) || !open.delete(this)) return;
            done();
          },
        };
        open.add(entry);
        resolve({ entry, messages: claim.messages });
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
 * Records one claim's finished messages: releases, then the marks, or, with `next`, the marks
 * and the next claim in one `recordAndFetch`. Store errors propagate.
 */
async function recordGroup(
  context: RelayContext,
  recording: RecordContext,
  token: string,
  items: readonly Finished[],
  next?: ClaimOptions,
): Promise<{ counts: BatchOutcome; claim?: Claim }> {
  const sent: SentMessage[] = [];
  const exhausted: DeadUpdate[] = [];
  for (const item of items) {
    if (item.sent !== undefined) sent.push(item.sent);
    else exhausted.push(item.dead);
  }
  const outcome = outcomeOf(token, exhausted, sent, context.options);
  const released = await recordReleases(recording, token, outcome.release);
  const marks = { token, sent: outcome.sent, retry: outcome.retry, dead: outcome.dead };
  let counts: BatchOutcome;
  let claim: Claim | undefined;
  if (next !== undefined && context.store.recordAndFetch !== undefined) {
    const result = await context.store.recordAndFetch(marks, next);
    claim = result.claim;
    counts = {
      sent: checkLease(recording, marks.sent, result.recorded.sent),
      failed: checkLease(recording, marks.retry.map(idOf), result.recorded.failed),
      dead: checkLease(recording, marks.dead.map(idOf), result.recorded.dead),
    };
  } else counts = await recordMarks(recording, marks);
  const messages = sent.map((s) => s.message);
  if (messages.some((m) => m.status !== SendStatus.Sent)) context.logFailedBatch?.(messages);
  return { counts: { ...counts, failed: counts.failed + released }, claim };
}
