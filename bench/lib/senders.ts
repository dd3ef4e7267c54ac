/** Senders for benchmarks that measure everything but the network. */
import type { Message, Sender } from "../../mod.ts";

/** Marks every message sent at once: the relay's own cost, with a free destination. */
export const nullSender: Sender = {
  async send(messages: Message[]) {
    for (const message of messages) message.markAsSent();
    return messages;
  },
};

/** A null sender that also calls `seen(id)` for each message, to count deliveries. */
export function countingSender(seen: (id: string) => void): Sender {
  return {
    async send(messages: Message[]) {
      for (const message of messages) {
        seen(message.id);
        message.markAsSent();
      }
      return messages;
    },
  };
}

/**
 * Marks every message sent and notes, for a message whose key has a commit time in
 * `committedAt` (`performance.now()`), the time from that commit to now in `latencies`.
 */
export function latencySender(committedAt: ReadonlyMap<string, number>, latencies: number[]): Sender {
  return {
    async send(messages: Message[]) {
      const now = performance.now();
      for (const m of messages) {
        const at = committedAt.get(m.key);
        if (at !== undefined) latencies.push(now - at);
        m.markAsSent();
      }
      return messages;
    },
  };
}
