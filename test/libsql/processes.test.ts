/**
 * Real processes on one database file: relays racing, relays SIGKILLed mid-batch, another
 * process holding the write lock. Every relay POSTs what it delivers to a receiver here.
 */
import { afterAll, describe, expect, it } from "vitest";
import { Outbox, StoreError } from "../../mod.ts";
import { commitMessages } from "../conformance/store-conformance.ts";
import { type Child, childProcesses, counts } from "../support/child-processes.ts";
import { recordingSender, waitFor } from "../support/senders.ts";
import { dbPath, openStore, startReceiver, tempDir } from "./helpers.ts";

const tmp = tempDir();
afterAll(() => tmp.cleanup());

const run = childProcesses("test/libsql/fixtures");

async function preparedDatabase() {
  const path = dbPath(tmp.dir);
  const opened = await openStore(`file:${path}`);
  await opened.client.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY)");
  return { path, ...opened };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe("LibsqlStore across processes", () => {
  // Generous limits: on a loaded 2-core machine 600 fsync'd commits alone take 10 s or more.
  it("three relays and a producer on one file deliver every message exactly once", {
    timeout: 120_000,
  }, async () => {
    const total = 600;
    const { path, store, close } = await preparedDatabase();
    const receiver = await startReceiver();
    try {
      const relays = ["r1", "r2", "r3"].map((name) =>
        run("relay.ts", [path, receiver.url, name, "30000", "5000"]),
      );
      const producer = run("producer.ts", [path, String(total)]);
      expect(await producer.exited, producer.output).toBe(0);
      await waitFor(() => new Set(receiver.deliveries.map((d) => d.value)).size === total, 90_000).catch(
        () => {
          throw new Error(`not all delivered: ${relays.map((r) => r.output).join("\n")}`);
        },
      );
      for (const relay of relays) relay.process.kill("SIGTERM");
      await Promise.all(relays.map((relay) => relay.exited));

      const delivered = counts(receiver.deliveries.map((d) => d.value));
      expect(delivered.size).toBe(total);
      expect([...delivered.values()].filter((n) => n > 1)).toEqual([]);
      expect(receiver.deliveries).toHaveLength(total);
      expect(await store.stats()).toEqual({ pending: 0, inFlight: 0, dead: 0, oldestPendingAt: null });
    } finally {
      await receiver.close();
      await close();
    }
  });

  // "window": the sender opts in to the streaming send window (up to 10 messages in flight, one
  // per POST), so kills land with messages of several claims in the window.
  it.each([
    ["mid-batch", undefined],
    ["with messages in the send window", 10],
  ])(
    "relays SIGKILLed %s again and again lose nothing; duplicates stay within what was in flight",
    {
      timeout: 240_000,
    },
    async (_, window) => {
      const total = 400;
      // What one relay holds at most: a batch, or a full window.
      const batchSize = 10;
      const windowArgs = window === undefined ? [] : [String(window)];
      const { path, store, close } = await preparedDatabase();
      // A slow receiver keeps relays inside their send for a while: each kill lands mid-batch,
      // even when relays take seconds to boot between kills (200 ms: the backlog outlasts 8 rounds).
      const receiver = await startReceiver(200);
      try {
        const names = ["r1", "r2", "r3"];
        const everyRelay: Child[] = [];
        const relay = (name: string) => {
          // A windowed sender needs leaseDuration >= sendTimeout + 1000 (see the window's leases).
          const lease = window === undefined ? "1000" : "1500";
          const child = run("relay.ts", [path, receiver.url, name, lease, "500", ...windowArgs]);
          everyRelay.push(child);
          return child;
        };
        const relays = new Map(names.map((name) => [name, relay(name)]));
        // On a loaded machine a relay takes seconds to boot: kill only relays that are running.
        const booted = (child: Child) => waitFor(() => child.output.includes("ready"), 60_000);
        await Promise.all([...relays.values()].map(booted));
        const producer = run("producer.ts", [path, String(total)]);
        const rounds = 8;
        let midBatch = 0;
        for (let round = 0; round < rounds; round++) {
          await sleep(150);
          // Prefer a relay whose batch the receiver holds (delivered, not yet recorded as sent).
          await waitFor(() => receiver.answering.size > 0, 2_000).catch(() => {});
          const busy = names.find((name) => receiver.answering.has(name));
          if (busy) midBatch += 1;
          const victim = busy ?? names[round % names.length]!;
          relays.get(victim)!.process.kill("SIGKILL");
          await relays.get(victim)!.exited;
          relays.set(victim, relay(victim));
          await booted(relays.get(victim)!);
        }
        expect(await producer.exited, producer.output).toBe(0);
        await waitFor(async () => {
          const stats = await store.stats();
          return stats.pending + stats.inFlight === 0;
        }, 90_000);
        for (const child of relays.values()) child.process.kill("SIGTERM");
        await Promise.all([...relays.values()].map((child) => child.exited));

        const delivered = counts(receiver.deliveries.map((d) => d.value));
        expect(delivered.size).toBe(total);
        expect(midBatch).toBeGreaterThan(0);
        // Each kill re-sends at most what its relay held: the one batch, or with a window the
        // messages in flight plus those delivered whose grouped outcome write had not committed
        // (the slots are free again once a send answers, so up to another window's worth); so
        // does a send that timed out (a starved machine), which the relay reports on stderr.
        const timeouts = everyRelay.reduce(
          (n, relay) => n + (relay.output.match(/within sendTimeout/g)?.length ?? 0),
          0,
        );
        const heldPerKill = window === undefined ? batchSize : 2 * window;
        const duplicates = receiver.deliveries.length - total;
        expect(duplicates).toBeLessThanOrEqual(heldPerKill * (rounds + timeouts));
        expect((await store.stats()).dead).toBe(0);
      } finally {
        await receiver.close();
        await close();
      }
    },
  );

  it("another process holding the write lock makes passes fail retryable, and they succeed once it lets go", async () => {
    const { path, store, close } = await preparedDatabase();
    try {
      await commitMessages(
        store,
        Array.from({ length: 20 }, (_, i) => ({ key: `k${i}`, value: String(i) })),
      );
      const holder = run("lock-holder.ts", [path]);
      await waitFor(() => holder.output.includes("locked"), 10_000);

      const { store: busyStore, close: closeBusy } = await openStore(`file:${path}`, { busyTimeout: 150 });
      try {
        const sender = recordingSender();
        const outbox = new Outbox(busyStore, sender);
        const error = await outbox.tick().then(
          () => undefined,
          (e: unknown) => e,
        );
        expect(error).toBeInstanceOf(StoreError);
        expect(error).toMatchObject({ code: "STORE_BUSY", retryable: true });
        expect((error as StoreError).message).toMatch(/busy or locked while claiming messages/);
        expect(await busyStore.stats()).toMatchObject({ pending: 20, inFlight: 0 });

        holder.process.stdin?.write("release\n");
        expect(await holder.exited, holder.output).toBe(0);
        expect(await outbox.tick()).toMatchObject({ sent: 20, failed: 0, dead: 0 });
        expect(new Set(sender.delivered).size).toBe(20);
        expect(await store.stats()).toEqual({ pending: 0, inFlight: 0, dead: 0, oldestPendingAt: null });
      } finally {
        await closeBusy();
      }
    } finally {
      await close();
    }
  });
});
