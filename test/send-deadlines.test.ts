import { describe, expect, it } from "vitest";
import { MemoryStore } from "../adapters/memory.ts";
import { Outbox, type Sender, SendTimeoutError } from "../mod.ts";
import { SendDeadlines } from "../src/abort.ts";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe("send deadlines", () => {
  it("give each send of a drain its full sendTimeout, though one timer serves them all", async () => {
    // The timer is armed by the first send and fires during the second: it must not cut the
    // second short (it started later), nor let the third, which hangs, run on. Each send ends
    // 300 ms before its deadline: a loaded machine that stalls the event loop past a send's end
    // and its deadline both runs the timer first, which then rightly aborts that send.
    const sendTimeout = 700;
    const starts: number[] = [];
    let abortedAfter: number | undefined;
    const sender: Sender = {
      async send(messages, signal) {
        const started = performance.now();
        starts.push(started);
        if (starts.length < 3) {
          await sleep(400);
          for (const m of messages) m.markAsSent();
          return messages;
        }
        return new Promise((_, reject) =>
          signal.addEventListener("abort", () => {
            abortedAfter = performance.now() - started;
            reject(signal.reason);
          }),
        );
      },
    };
    const store = new MemoryStore();
    const errors: unknown[] = [];
    const outbox = new Outbox(store, sender, {
      batchSize: 1,
      sendTimeout,
      backoff: { initialDelay: 60_000, maxDelay: 60_000 },
      onError: (e) => errors.push(e),
    });
    await store.transaction(async (tx) => {
      for (let i = 0; i < 3; i++) await outbox.addMessage(tx, { key: `k${i}`, value: `v${i}` });
    });
    expect(await outbox.tick()).toMatchObject({ batches: 3, sent: 2, failed: 1 });
    expect(errors).toHaveLength(1);
    expect(errors[0]).toBeInstanceOf(SendTimeoutError);
    // The relay reads its clock for the deadline a moment before the sender reads `started`
    // (a few ms when a loaded machine preempts it in between); a deadline taken from the
    // first or second send would come 300 ms or more early.
    expect(abortedAfter).toBeGreaterThanOrEqual(sendTimeout - 50);
  });

  it("abort on timeout with a TimeoutError, on the parent's abort with its reason, and not after dispose", async () => {
    const clock = new SendDeadlines(30);
    try {
      const timed = clock.start();
      await timed.aborted;
      expect(timed.timedOut()).toBe(true);
      expect((timed.signal.reason as DOMException).name).toBe("TimeoutError");
      timed.dispose();

      const parent = new AbortController();
      const followed = clock.start(parent.signal);
      parent.abort("stop");
      await followed.aborted;
      expect(followed.timedOut()).toBe(false);
      expect(followed.signal.reason).toBe("stop");
      followed.dispose();

      const done = clock.start();
      done.dispose();
      await sleep(60);
      expect(done.signal.aborted).toBe(false);

      const already = clock.start(AbortSignal.abort("early"));
      expect(already.signal.reason).toBe("early");
      already.dispose();
    } finally {
      clock.dispose();
    }
  });

  it("serve sends running at once (the send window): each aborts at its own time, a disposed one never", async () => {
    const clock = new SendDeadlines(40);
    const first = clock.start();
    await sleep(20);
    const secondStarted = performance.now();
    const second = clock.start();
    const finished = clock.start();
    finished.dispose();
    // The drain ends while two sends are still out: their deadlines still hold.
    clock.dispose();
    expect(await first.race(new Promise(() => {}), "timed out")).toBe("timed out");
    expect(first.timedOut()).toBe(true);
    await second.aborted;
    expect(performance.now() - secondStarted).toBeGreaterThanOrEqual(35);
    expect(second.timedOut()).toBe(true);
    first.dispose();
    second.dispose();
    await sleep(60);
    expect(finished.signal.aborted).toBe(false);
  });

  it("abort every send still running under a shared parent signal, and each under its own parent", async () => {
    const clock = new SendDeadlines(10_000);
    const stop = new AbortController();
    const other = new AbortController();
    const a = clock.start(stop.signal);
    const finished = clock.start(stop.signal);
    finished.dispose();
    const b = clock.start(stop.signal);
    const elsewhere = clock.start(other.signal);
    const free = clock.start();
    stop.abort("stopped");
    await Promise.all([a.aborted, b.aborted]);
    expect([a.signal.reason, b.signal.reason]).toEqual(["stopped", "stopped"]);
    expect([a.timedOut(), b.timedOut()]).toEqual([false, false]);
    expect(finished.signal.aborted).toBe(false);
    expect(elsewhere.signal.aborted).toBe(false);
    expect(free.signal.aborted).toBe(false);
    other.abort("other");
    await elsewhere.aborted;
    expect(elsewhere.signal.reason).toBe("other");
    expect(free.signal.aborted).toBe(false);
    for (const deadline of [a, b, elsewhere, free]) deadline.dispose();
    clock.dispose();
    // A send started after the shared parent aborted starts aborted.
    const late = clock.start(stop.signal);
    expect(late.signal.reason).toBe("stopped");
    late.dispose();
    clock.dispose();
  });

  it("race settles as the work does when it comes first, whatever the work is", async () => {
    const clock = new SendDeadlines(10_000);
    try {
      const deadline = clock.start();
      expect(await deadline.race(Promise.resolve("done"), "timed out")).toBe("done");
      expect(await deadline.race("plain value", "timed out")).toBe("plain value");
      await expect(deadline.race(Promise.reject(new Error("boom")), "timed out")).rejects.toThrow("boom");
      deadline.dispose();
    } finally {
      clock.dispose();
    }
  });
});
