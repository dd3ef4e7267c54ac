import { type Deadline, SendDeadlines } from "./abort.ts";
import { describeValue, isInstanceOf, OutboxError, SendError, SendTimeoutError } from "./errors.ts";
import { type Message, SendStatus, sealMessage } from "./message.ts";
import type { Sender } from "./sender.ts";

/** What {@link sendBatch} needs. */
export interface SendContext {
  sender: Sender;
  sendTimeout: number;
  /** The guarded `onError`: never throws. */
  onError: (error: unknown) => void;
}

const TIMED_OUT = Symbol("timed out");

/**
 * Calls the sender under the deadline and freezes the outcome: every message the sender did not
 * mark is failed with the reason. Returns the batch-wide error (also reported), if any. Never
 * throws, whatever the sender does: throws at once, rejects, hangs, returns something else than
 * the messages it was given, or marks them after its deadline.
 */
export async function sendBatch(
  context: SendContext,
  messages: Message[],
  signal: AbortSignal | undefined,
  deadlines: SendDeadlines | undefined,
): Promise<unknown> {
  const { sender, sendTimeout } = context;
  // The sender gets `messages` and may rearrange that array; the outcome is read from our copy.
  // (The window sends one message per call: a one-element copy, no array scans below.)
  const ours = messages.length === 1 ? [messages[0] as Message] : messages.slice();
  const clock = deadlines ?? new SendDeadlines(sendTimeout);
  const deadline = clock.start(signal);
  let error: unknown;
  try {
    // Race the abort so a sender that ignores its signal cannot hold the pass past the deadline.
    const result = await deadline.race(sender.send(messages, deadline.signal), TIMED_OUT);
    error = result === TIMED_OUT ? abortError(deadline, sendTimeout, signal) : checkResult(ours, result);
  } catch (thrown) {
    // A sender that gives up because its signal aborted (fetch does) failed for that reason.
    if (deadline.signal.aborted) error = abortError(deadline, sendTimeout, signal);
    else if (isInstanceOf(thrown, OutboxError)) error = thrown;
    else error = new SendError(`sender threw: ${describeValue(thrown)}`, { cause: thrown });
  } finally {
    deadline.dispose();
    if (clock !== deadlines) clock.dispose();
  }
  // Freeze the outcome now: marks a runaway sender makes after this point change nothing.
  for (const message of ours) {
    if (message.status === SendStatus.None) message.markAsFailed({ error: describeUnmarked(error) });
    sealMessage(message);
  }
  if (error !== undefined) context.onError(error);
  return error;
}

/** Why an aborted send failed: its timeout, or the caller's signal. */
function abortError(deadline: Deadline, sendTimeout: number, signal: AbortSignal | undefined): SendError {
  return deadline.timedOut()
    ? new SendTimeoutError(sendTimeout)
    : new SendError("send aborted by the caller's signal", { cause: signal?.reason });
}

/**
 * The marks on the messages are the outcome; the returned array must be those same messages.
 * Anything else is reported (and unmarked messages fail), never trusted.
 */
function checkResult(given: readonly Message[], result: unknown): SendError | undefined {
  if (!Array.isArray(result)) {
    return new SendError(
      `sender returned ${result === null ? "null" : typeof result}, expected the array of messages it was given`,
      { code: "MALFORMED_SEND_RESULT" },
    );
  }
  // The usual case (the messages it was given, in order) costs one comparison per message.
  if (!sameMessages(result, given)) {
    const ours = new Set<unknown>(given);
    const foreign = result.filter((m) => !ours.has(m));
    if (foreign.length > 0) {
      return new SendError(
        `sender returned ${foreign.length} message(s) it was not given; they were ignored`,
        {
          code: "MALFORMED_SEND_RESULT",
        },
      );
    }
  }
  if (allMarked(given)) return undefined;
  const unmarked = given.filter((m) => m.status === SendStatus.None);
  return new SendError(
    `sender left ${unmarked.length} message(s) unmarked (ids ${unmarked
      .slice(0, 5)
      .map((m) => m.id)
      .join(", ")}); they count as failed`,
    { code: "MALFORMED_SEND_RESULT", messageId: unmarked[0]?.id },
  );
}

// Plain loops: run once per send, and the window makes a send per message.
function sameMessages(result: readonly unknown[], given: readonly Message[]): boolean {
  if (result.length !== given.length) return false;
  for (let i = 0; i < given.length; i++) if (result[i] !== given[i]) return false;
  return true;
}

function allMarked(given: readonly Message[]): boolean {
  for (const message of given) if (message.status === SendStatus.None) return false;
  return true;
}

function describeUnmarked(error: unknown): string {
  if (isInstanceOf(error, Error)) return describeValue(error);
  return "sender did not mark this message";
}
