/**
 * The window never starts a message its lease cannot cover: two relays on one real libSQL file,
 * each with far more claimed than its window can send in time. A claimed message that can no
 * longer start with `sendTimeout` plus the recording margin left on its lease goes back unsent
 * (no attempt spent); none is delivered twice, no lease is lost.
 */
import { createClient } from "@libsql/client";
import { afterAll, describe, expect, it } from "vitest";
import { LibsqlStore } from "../adapters/libsql.ts";
import { type Message, Outbox, type OutboxOptions, type Sender } from "../mod.ts";
import { commitMessages } from "./conformance/store-conformance.ts";
import { tempDir } from "./libsql/helpers.ts";
import type { AnyStore } from "./support/stores.ts";

const temp = tempDir();
afterAll(() => temp.cleanup());

describe("the window's leases (two relays, one libSQL file)", () => {
  it("a claimed message that cannot start in time goes back unsent: no duplicate, no attempt spent", {
    timeout: 60_000,
  }, async () => {
    const url = `file:${temp.dir}/lease-window.db`;
    const clients = [createClient({ url }), createClient({ url })];
    try {
      const [a, b] = clients.map((client) => new LibsqlStore(client));
      await a!.migrate();
      await commitMessages(a as unknown as AnyStore, numbered(40));
      const deliveries = new Map<string, number>();
      const retriesSeen = new Set<number>();
      const sender: Sender = {
        window: 2,
        async send([m]: Message[]) {
          await new Promise((resolve) => setTimeout(resolve, 300));
          deliveries.set(m!.text(), (deliveries.get(m!.text()) ?? 0) + 1);
          retriesSeen.add(m!.retries);
          m!.markAsSent();
          return [m!];
        },
      };
      const errors: unknown[] = [];
      // A claim of 20 needs 3 s through a window of 2; its lease leaves 500 ms to start each
      // (sendTimeout and the 500 ms recording margin before its end). sendTimeout is 700 ms
      // more than a send takes: a loaded machine that stalls the event loop past a send's end
      // and its deadline would time that delivery out and charge it an attempt.
      const options: OutboxOptions = {
        batchSize: 20,
        sendTimeout: 1000,
        leaseDuration: 2000,
        onError: (error) => errors.push(error),
      };
      const relays = [new Outbox(a!, sender, options), new Outbox(b!, sender, options)];
      for (let round = 0; round < 40 && (await a!.stats()).pending > 0; round++) {
        await Promise.all(relays.map((relay) => relay.tick({ budgetMs: 5_000 })));
      }
      expect(await a!.stats()).toMatchObject({ pending: 0, inFlight: 0, dead: 0 });
      expect(deliveries.size).toBe(40);
      expect([...deliveries.values()].every((count) => count === 1)).toBe(true);
      // Given back unsent, never charged: every delivery was the message's first attempt.
      expect([...retriesSeen]).toEqual([0]);
      expect(errors.filter((e) => (e as Error).name === "LeaseLostError")).toEqual([]);
    } finally {
      for (const client of clients) client.close();
    }
  });
});

function numbered(n: number) {
  return Array.from({ length: n }, (_, i) => ({ key: `k${i}`, value: `m${i}` }));
}
