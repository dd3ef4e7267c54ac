/**
 * Running a callback once the I/O callbacks ready now have run: the send window refills the
 * slots that several responses freed in one turn of the event loop together, so their requests
 * go out back to back instead of one between each pair of responses.
 *
 * @module
 */

type Schedule = (fn: () => void) => unknown;

const immediate = (globalThis as { setImmediate?: Schedule }).setImmediate;

/**
 * Runs `fn` after the I/O callbacks that are ready now: `setImmediate` where the runtime has it
 * (Node, Bun: the check phase comes after the poll phase), else in a microtask (at once, as
 * before). Measured on Node (BENCHMARKS.md, section 19): a request started from each response's
 * own callback woke the receiver once per request, and cost the window about a sixth more CPU
 * per message than refilling after the turn.
 */
export const afterIo: (fn: () => void) => void =
  immediate === undefined ? (fn) => queueMicrotask(fn) : (fn) => void immediate(fn);
