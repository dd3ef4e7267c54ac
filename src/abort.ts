/**
 * A signal that aborts after `timeoutMs` or when `parent` aborts, whichever is first, and a
 * `dispose` that clears the timer (so a finished pass leaves no timer keeping a process alive).
 * Hand-rolled rather than `AbortSignal.any`/`AbortSignal.timeout` so that it behaves the same
 * on every runtime, including older workerd and Node 20.0-20.2.
 */
export function deadlineSignal(
  timeoutMs: number,
  parent?: AbortSignal,
): { signal: AbortSignal; timedOut: () => boolean; dispose: () => void } {
  const controller = new AbortController();
  let timedOut = false;
  const onParentAbort = () => controller.abort(parent?.reason);
  const timer = setTimeout(() => {
    timedOut = true;
    controller.abort(new DOMException(`timed out after ${timeoutMs} ms`, "TimeoutError"));
  }, timeoutMs);
  if (parent?.aborted) onParentAbort();
  else parent?.addEventListener("abort", onParentAbort, { once: true });
  return {
    signal: controller.signal,
    timedOut: () => timedOut,
    dispose() {
      clearTimeout(timer);
      parent?.removeEventListener("abort", onParentAbort);
    },
  };
}

/** Resolves when `signal` aborts (never rejects); for racing work that ignores its signal. */
export function whenAborted(signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => signal.addEventListener("abort", () => resolve(), { once: true }));
}
