/** The deadline of one send: see {@link deadlineSignal}. */
export interface Deadline {
  /** Aborts after the timeout or when the parent signal aborts, whichever is first. */
  readonly signal: AbortSignal;
  /** Resolves (never rejects) when `signal` aborts: for racing work that ignores the signal. */
  readonly aborted: Promise<void>;
  /** Whether the timeout (not the parent) aborted `signal`. */
  timedOut(): boolean;
  /** Clears the timer and the parent listener, so a finished send leaves nothing behind. */
  dispose(): void;
}

/**
 * A signal that aborts after `timeoutMs` or when `parent` aborts, whichever is first.
 * Hand-rolled rather than `AbortSignal.any`/`AbortSignal.timeout` so that it behaves the same
 * on every runtime, including older workerd and Node 20.0-20.2; and lean, because every relay
 * pass makes one: `aborted` is settled by the abort itself, not by a listener on the signal.
 */
export function deadlineSignal(timeoutMs: number, parent?: AbortSignal): Deadline {
  const controller = new AbortController();
  let timedOut = false;
  let settle = () => {};
  const aborted = new Promise<void>((resolve) => {
    settle = resolve;
  });
  const abort = (reason: unknown) => {
    controller.abort(reason);
    settle();
  };
  const onParentAbort = () => abort(parent?.reason);
  const timer = setTimeout(() => {
    timedOut = true;
    abort(new DOMException(`timed out after ${timeoutMs} ms`, "TimeoutError"));
  }, timeoutMs);
  if (parent?.aborted) onParentAbort();
  else parent?.addEventListener("abort", onParentAbort, { once: true });
  return {
    signal: controller.signal,
    aborted,
    timedOut: () => timedOut,
    dispose() {
      clearTimeout(timer);
      parent?.removeEventListener("abort", onParentAbort);
    },
  };
}
