/**
 * Live progress for the demo: one line rewritten in place on a terminal, plain lines at a slower
 * pace otherwise (CI logs, pipes, the demo's own test), so the output stays readable either way.
 */

/** One snapshot of the run. */
export interface Progress {
  elapsedMs: number;
  written: number;
  total: number;
  sent: number;
  pending: number;
  dead: number;
  retries: number;
}

/** Formats a snapshot as one line, e.g. `[ 1.2s] orders 120/200 | sent 100 | pending 19 | ...`. */
export function formatProgress(p: Progress): string {
  const seconds = p.elapsedMs / 1000;
  const rate = seconds > 0 ? Math.round(p.sent / seconds) : 0;
  return [
    `[${seconds.toFixed(1).padStart(5)}s] orders ${p.written}/${p.total}`,
    `sent ${p.sent}`,
    `pending ${p.pending}`,
    `dead ${p.dead}`,
    `retries ${p.retries}`,
    `${rate} msg/s`,
  ].join(" | ");
}

/** Where progress goes: a TTY gets an updating line, anything else a line per `plainEveryMs`. */
export class ProgressPrinter {
  readonly #out: NodeJS.WriteStream;
  readonly #tty: boolean;
  readonly #plainEveryMs: number;
  #lastPlain = Number.NEGATIVE_INFINITY;
  #lastLine = "";

  constructor(out: NodeJS.WriteStream = process.stdout, plainEveryMs = 500) {
    this.#out = out;
    this.#tty = out.isTTY === true;
    this.#plainEveryMs = plainEveryMs;
  }

  /** How often the caller should sample: fast enough to look live on a terminal. */
  get intervalMs(): number {
    return this.#tty ? 100 : this.#plainEveryMs;
  }

  /** Shows a snapshot (in place on a TTY; as a new line when enough time has passed otherwise). */
  update(p: Progress): void {
    const line = formatProgress(p);
    if (this.#tty) {
      // \x1b[K clears what a longer previous line left behind.
      this.#out.write(`\r${line}\x1b[K`);
    } else if (p.elapsedMs - this.#lastPlain >= this.#plainEveryMs && line !== this.#lastLine) {
      this.#out.write(`${line}\n`);
      this.#lastPlain = p.elapsedMs;
    }
    this.#lastLine = line;
  }

  /** Leaves the final state visible and moves to a fresh line. */
  finish(p: Progress): void {
    const line = formatProgress(p);
    if (this.#tty) this.#out.write(`\r${line}\x1b[K\n`);
    else if (line !== this.#lastLine || p.elapsedMs - this.#lastPlain > 0) this.#out.write(`${line}\n`);
    this.#lastLine = line;
  }
}
