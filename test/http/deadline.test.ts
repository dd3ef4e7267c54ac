/** Request deadlines under a send's signal (`adapters/http/deadline.ts`), with real timers. */
import { describe, expect, it } from "vitest";
import { RequestDeadlines } from "../../adapters/http/deadline.ts";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const timeout = () => new Error("no response within requestTimeout");

describe("RequestDeadlines", () => {
  it("aborts a request at its own timeout, with the timeout's reason, and says so", async () => {
    const send = new AbortController();
    const deadlines = new RequestDeadlines(send.signal, 20);
    const deadline = deadlines.start(timeout);
    expect(deadline.signal.aborted).toBe(false);
    expect(deadline.timedOut()).toBe(false);
    await sleep(60);
    expect(deadline.signal.aborted).toBe(true);
    expect(deadline.timedOut()).toBe(true);
    expect((deadline.signal.reason as Error).message).toBe("no response within requestTimeout");
    expect(send.signal.aborted).toBe(false);
  });

  it("the send's abort stops every running request with its reason, and is not a timeout", async () => {
    const send = new AbortController();
    const deadlines = new RequestDeadlines(send.signal, 30);
    const running = [deadlines.start(timeout), deadlines.start(timeout)];
    const reason = new Error("sendTimeout");
    send.abort(reason);
    for (const deadline of running) {
      expect(deadline.signal.reason).toBe(reason);
    }
    // The timer firing later changes neither the reason nor timedOut().
    await sleep(70);
    for (const deadline of running) {
      expect(deadline.signal.reason).toBe(reason);
      expect(deadline.timedOut()).toBe(false);
    }
  });

  it("a request started after the send's abort is aborted at once", () => {
    const send = new AbortController();
    const deadlines = new RequestDeadlines(send.signal, 10_000);
    send.abort(new Error("stop"));
    const deadline = deadlines.start(timeout);
    expect(deadline.signal.aborted).toBe(true);
    expect((deadline.signal.reason as Error).message).toBe("stop");
    deadline.dispose();
  });

  it("a disposed request is neither timed out nor aborted later", async () => {
    const send = new AbortController();
    const deadlines = new RequestDeadlines(send.signal, 20);
    const deadline = deadlines.start(timeout);
    deadline.dispose();
    await sleep(60);
    expect(deadline.signal.aborted).toBe(false);
    expect(deadline.timedOut()).toBe(false);
    send.abort();
    expect(deadline.signal.aborted).toBe(false);
  });

  it("once disposed, the send's signal no longer reaches the requests", () => {
    const send = new AbortController();
    const deadlines = new RequestDeadlines(send.signal, 10_000);
    const deadline = deadlines.start(timeout);
    deadlines.dispose();
    send.abort();
    expect(deadline.signal.aborted).toBe(false);
    deadline.dispose();
  });
});
