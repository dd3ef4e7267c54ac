/**
 * `SendDeadlines` (the per-send deadlines of a drain) where the relay tests do not reach: many
 * waiters on one deadline, a drain of more sends than the queue keeps before compacting, and
 * no timer left behind once the drain is over. Written against mutants the older suites let
 * survive.
 */
import { getEventListeners } from "node:events";
import { describe, expect, it } from "vitest";
import { SendDeadlines } from "../src/abort.ts";

const timers = () => process.getActiveResourcesInfo().filter((kind) => kind === "Timeout").length;

describe("SendDeadlines", () => {
  it("wakes every waiter of a deadline when it times out: races and aborted alike", async () => {
    const clock = new SendDeadlines(20);
    try {
      const deadline = clock.start();
      const never = new Promise(() => {});
      const settled = await Promise.all([
        deadline.race(never, "first"),
        deadline.aborted.then(() => "aborted"),
        deadline.race(never, "third"),
      ]);
      expect(settled).toEqual(["first", "aborted", "third"]);
      expect(deadline.timedOut()).toBe(true);
      deadline.dispose();
    } finally {
      clock.dispose();
    }
  });

  it("still aborts the sends left running after thousands that finished before them", async () => {
    const clock = new SendDeadlines(60_000);
    const parent = new AbortController();
    const finished = Array.from({ length: 1500 }, () => clock.start(parent.signal));
    const running = Array.from({ length: 600 }, () => clock.start(parent.signal));
    for (const deadline of finished) deadline.dispose();
    parent.abort("stopped");
    await Promise.all(running.map((deadline) => deadline.aborted));
    expect(running.every((deadline) => deadline.signal.reason === "stopped")).toBe(true);
    expect(finished.some((deadline) => deadline.signal.aborted)).toBe(false);
    for (const deadline of running) deadline.dispose();
    clock.dispose();

    // And by the timer, after the queue was compacted.
    const short = new SendDeadlines(30);
    const done = Array.from({ length: 1500 }, () => short.start());
    const late = Array.from({ length: 10 }, () => short.start());
    for (const deadline of done) deadline.dispose();
    await Promise.all(late.map((deadline) => deadline.aborted));
    expect(late.every((deadline) => deadline.timedOut())).toBe(true);
    for (const deadline of late) deadline.dispose();
    short.dispose();
  });

  it("leaves no timer behind once the drain and its last send are over", async () => {
    const before = timers();
    const clock = new SendDeadlines(60_000);
    const deadline = clock.start();
    expect(timers()).toBe(before + 1);
    clock.dispose();
    // A send still running keeps its deadline until it ends.
    expect(timers()).toBe(before + 1);
    deadline.dispose();
    expect(timers()).toBe(before);
  });

  it("a send started under a parent already aborted is aborted with the parent's reason, not as a timeout", () => {
    const clock = new SendDeadlines(60_000);
    const parent = new AbortController();
    parent.abort("stopped");
    const deadline = clock.start(parent.signal);
    expect(deadline.signal.aborted).toBe(true);
    expect(deadline.signal.reason).toBe("stopped");
    expect(deadline.timedOut()).toBe(false);
    deadline.dispose();
    clock.dispose();
  });

  it("a timed-out send's signal says so: a TimeoutError naming the timeout", async () => {
    const clock = new SendDeadlines(15);
    const deadline = clock.start();
    await deadline.aborted;
    const reason = deadline.signal.reason as DOMException;
    expect(reason.name).toBe("TimeoutError");
    // The text names the timeout: it reaches the sender, and often its error message.
    expect(reason.message).toContain("15 ms");
    expect(deadline.timedOut()).toBe(true);
    deadline.dispose();
    clock.dispose();
  });

  it("a drain's parent listener goes once the drain and its last send are over, however that send ends", async () => {
    // The sends over first; or the drain first, then its sends, ended by their owner or by the
    // timer after the drain's end.
    for (const ending of ["before", "disposed", "timed out"] as const) {
      const parent = new AbortController();
      const listeners = () => getEventListeners(parent.signal, "abort").length;
      const clock = new SendDeadlines(ending === "timed out" ? 15 : 60_000);
      const sends = [clock.start(parent.signal), clock.start(parent.signal)];
      // One listener for the drain, not one per send.
      expect(listeners()).toBe(1);
      if (ending === "before") for (const send of sends) send.dispose();
      clock.dispose();
      if (ending !== "before") expect(listeners()).toBe(1);
      if (ending === "disposed") for (const send of sends) send.dispose();
      if (ending === "timed out") await Promise.all(sends.map((send) => send.aborted));
      expect(listeners()).toBe(0);
    }
  });

  it("a send still running when its drain is disposed is still aborted by the parent", async () => {
    const parent = new AbortController();
    const clock = new SendDeadlines(60_000);
    const running = clock.start(parent.signal);
    clock.dispose();
    parent.abort("stopped");
    await running.aborted;
    expect(running.signal.reason).toBe("stopped");
    expect(running.timedOut()).toBe(false);
    running.dispose();
  });
});
