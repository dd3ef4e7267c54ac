/** Small in-process senders for core tests: each records what it was given. */
import type { Message, Sender } from "../../mod.ts";

/** A sender that applies `decide` to every message and records each attempt's id. */
export function recordingSender(
  decide: (message: Message, attempt: number) => void = (m) => m.markAsSent(),
): Sender & {
  attempts: string[];
  delivered: string[];
} {
  const attempts: string[] = [];
  const delivered: string[] = [];
  return {
    attempts,
    delivered,
    async send(messages) {
      for (const message of messages) {
        attempts.push(message.id);
        decide(message, attempts.filter((id) => id === message.id).length);
        if (message.status === 1) delivered.push(message.id);
      }
      return messages;
    },
  };
}

/** A promise with its resolve exposed: a gate a test opens when it chooses. */
export function gate(): { promise: Promise<void>; open: () => void } {
  let open!: () => void;
  const promise = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { promise, open };
}

/** Polls `condition` every 5 ms until true, failing after `timeoutMs`. */
export async function waitFor(condition: () => boolean | Promise<boolean>, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}
