/**
 * The per-origin circuit breaker's state machine, driven directly with an explicit clock and
 * random source (the HTTP behaviour is in breaker-http.test.ts).
 */
import { describe, expect, it } from "vitest";
import {
  Breakers,
  DEFAULT_BREAKER,
  isTicket,
  type Refusal,
  type Ticket,
} from "../../adapters/http/breaker.ts";
import { BREAKER_STATE_VALUE, originAttributes } from "../../adapters/http/breaker-metrics.ts";
import { isUnhealthyStatus } from "../../adapters/http/status.ts";

const A = "http://a.example";
const B = "http://b.example:8080";
const options = { failureThreshold: 3, cooldownMs: 1000, maxCooldownMs: 4000, halfOpenProbes: 1 };
// No jitter unless a test asks for it: random() = 0 takes nothing off a cool-down.
const breakers = (overrides: Partial<typeof options> = {}, random = () => 0) =>
  new Breakers({ ...options, ...overrides }, 250, random);

function ticket(admission: Ticket | Refusal): Ticket {
  if (!isTicket(admission)) throw new Error(`refused: ${admission.reason}`);
  return admission;
}
function refusal(admission: Ticket | Refusal): Refusal {
  if (isTicket(admission)) throw new Error("admitted");
  return admission;
}
/** `n` unhealthy outcomes of requests admitted one after another at `now`. */
function fail(b: Breakers, origin: string, n: number, now: number, why = "HTTP 503"): void {
  for (let i = 0; i < n; i++) b.settle(ticket(b.admit(origin, now)), why, now);
}

describe("Breakers", () => {
  it("opens after failureThreshold unhealthy outcomes in a row, not one fewer", () => {
    const b = breakers();
    fail(b, A, 2, 0);
    expect(b.snapshot(0)).toEqual([{ origin: A, state: "closed", failures: 2, openUntil: null }]);
    expect(isTicket(b.admit(A, 0))).toBe(true);
    fail(b, A, 1, 10);
    expect(b.snapshot(10)).toEqual([{ origin: A, state: "open", failures: 3, openUntil: new Date(1010) }]);
  });

  it("a healthy answer resets the streak: failures must be consecutive", () => {
    const b = breakers();
    fail(b, A, 2, 0);
    b.settle(ticket(b.admit(A, 0)), undefined, 0);
    fail(b, A, 2, 0);
    expect(b.snapshot(0)[0]).toMatchObject({ state: "closed", failures: 2 });
  });

  it("refuses while open with the time left until a probe may go, naming the origin and the last failure", () => {
    const b = breakers();
    fail(b, A, 3, 0, "no response within requestTimeout");
    const refused = refusal(b.admit(A, 400));
    expect(refused.retryAfter).toBe(600);
    expect(refused.reason).toBe(
      `circuit breaker open for ${A} after 3 failures in a row (last: no response within requestTimeout)`,
    );
    // Rounded up to 100 ms (refusals of one claim share a delay, so one release write), never 0.
    expect(refusal(b.admit(A, 450)).retryAfter).toBe(600);
    expect(refusal(b.admit(A, 999.5)).retryAfter).toBe(100);
  });

  it("keeps origins apart: one open breaker refuses nothing of another origin", () => {
    const b = breakers();
    fail(b, A, 3, 0);
    expect(isTicket(b.admit(B, 1))).toBe(true);
    expect(b.snapshot(1).map((s) => [s.origin, s.state])).toEqual([
      [A, "open"],
      [B, "closed"],
    ]);
  });

  it("half-open after the cool-down: lets halfOpenProbes probes through, refuses the rest until the last probe ends", () => {
    const b = breakers({ halfOpenProbes: 2 });
    fail(b, A, 3, 0);
    expect(b.snapshot(1000)[0]).toMatchObject({ state: "half_open", openUntil: null });
    const first = ticket(b.admit(A, 1000));
    const second = ticket(b.admit(A, 1000));
    expect([first.probe, second.probe]).toEqual([true, true]);
    expect(refusal(b.admit(A, 1000)).retryAfter).toBe(300); // probeWaitMs 250, rounded up
    // What is left of the probe's time, not probeWaitMs again.
    expect(refusal(b.admit(A, 1140)).retryAfter).toBe(200);
    // A probe given back (its send was aborted) frees its slot without deciding anything.
    b.release(first);
    expect(ticket(b.admit(A, 1001)).probe).toBe(true);
    expect(b.snapshot(1001)[0]?.state).toBe("half_open");
  });

  it("a healthy probe closes the breaker and resets the cool-down", () => {
    const b = breakers();
    fail(b, A, 3, 0);
    b.settle(ticket(b.admit(A, 1000)), undefined, 1000);
    expect(b.snapshot(1000)).toEqual([{ origin: A, state: "closed", failures: 0, openUntil: null }]);
    expect(ticket(b.admit(A, 1000)).probe).toBe(false);
    // Opened again later, it starts over from cooldownMs.
    fail(b, A, 3, 2000);
    expect(b.snapshot(2000)[0]?.openUntil).toEqual(new Date(3000));
  });

  it("a failed probe opens it again for twice as long, up to maxCooldownMs", () => {
    const b = breakers();
    fail(b, A, 3, 0);
    const opens: (number | undefined)[] = [];
    let now = 1000;
    for (let i = 0; i < 4; i++) {
      b.settle(ticket(b.admit(A, now)), "HTTP 500", now);
      const until = b.snapshot(now)[0]?.openUntil?.getTime();
      opens.push(until === undefined ? undefined : until - now);
      now = until ?? now;
    }
    expect(opens).toEqual([2000, 4000, 4000, 4000]);
  });

  it("jitter takes up to a quarter off each cool-down", () => {
    const b = breakers({}, () => 0.5);
    fail(b, A, 3, 0);
    expect(b.snapshot(0)[0]?.openUntil?.getTime()).toBe(875);
  });

  it("ignores late outcomes of requests admitted before the breaker changed state", () => {
    const b = breakers();
    const early = ticket(b.admit(A, 0));
    const lateFailure = ticket(b.admit(A, 0));
    fail(b, A, 3, 0);
    // Admitted while closed, answered after the breaker opened: neither closes nor extends it.
    b.settle(early, undefined, 10);
    b.settle(lateFailure, "HTTP 503", 10);
    expect(b.snapshot(10)[0]).toMatchObject({ state: "open", failures: 3, openUntil: new Date(1000) });
    const probe = ticket(b.admit(A, 1000));
    b.settle(early, undefined, 1001);
    b.settle(lateFailure, "HTTP 503", 1001);
    expect(b.snapshot(1001)[0]).toMatchObject({ state: "half_open", failures: 3 });
    expect(isTicket(b.admit(A, 1001))).toBe(false);
    b.settle(probe, undefined, 1002);
    expect(b.snapshot(1002)[0]?.state).toBe("closed");
    // The probe's ticket is spent: settling it again changes nothing.
    b.settle(probe, "HTTP 503", 1003);
    expect(b.snapshot(1003)[0]).toMatchObject({ state: "closed", failures: 0 });
  });

  it("outcomes of requests in flight together all count: one success does not void the others' failures", () => {
    const b = breakers();
    const inFlight = [0, 1, 2, 3].map(() => ticket(b.admit(A, 0)));
    b.settle(inFlight[0]!, undefined, 5);
    for (const t of inFlight.slice(1)) b.settle(t, "HTTP 503", 5);
    expect(b.snapshot(5)[0]).toMatchObject({ state: "open", failures: 3 });
  });

  it("a probe outliving its half-open state changes nothing, settled or given back", () => {
    const b = breakers({ halfOpenProbes: 2 });
    fail(b, A, 3, 0);
    const [first, second] = [ticket(b.admit(A, 1000)), ticket(b.admit(A, 1000))];
    b.settle(first!, undefined, 1001);
    fail(b, A, 3, 1002);
    const reopened = b.snapshot(1002)[0];
    expect(reopened).toMatchObject({ state: "open", failures: 3, openUntil: new Date(2002) });
    b.settle(second!, undefined, 1003);
    b.release(second!);
    expect(b.snapshot(1003)[0]).toEqual(reopened);
    // Back to half-open: the stale probe gives no slot back to the new probes.
    ticket(b.admit(A, 2002));
    ticket(b.admit(A, 2002));
    b.release(second!);
    expect(isTicket(b.admit(A, 2002))).toBe(false);
  });

  it("giving back or settling a ticket of a forgotten origin is harmless", () => {
    const b = breakers({ failureThreshold: 1 });
    const forgotten = ticket(b.admit("http://old.example", 0));
    for (let i = 0; i < 1000; i++) b.admit(`http://o${i}.example`, 0);
    expect(b.snapshot(0).map((s) => s.origin)).not.toContain("http://old.example");
    expect(() => b.release(forgotten)).not.toThrow();
    expect(() => b.release({ ...forgotten, probe: true })).not.toThrow();
    b.settle(forgotten, "HTTP 500", 0);
    expect(b.snapshot(0).map((s) => s.origin)).not.toContain("http://old.example");
  });

  it("a release outside half-open changes nothing", () => {
    const b = breakers();
    fail(b, A, 2, 0);
    b.release(ticket(b.admit(A, 0)));
    expect(b.snapshot(0)[0]).toMatchObject({ state: "closed", failures: 2 });
  });

  it("tracks at most 1000 origins, forgetting the least recently used healthy one first", () => {
    const b = breakers({ failureThreshold: 1 });
    fail(b, "http://open.example", 1, 0);
    for (let i = 0; i < 999; i++) b.admit(`http://h${i}.example`, 0);
    b.admit("http://h0.example", 0); // used again: h1 is now the least recently used
    b.admit("http://new.example", 0);
    const origins = b.snapshot(0).map((s) => s.origin);
    expect(origins).toHaveLength(1000);
    expect(origins).toContain("http://open.example");
    expect(origins).toContain("http://new.example");
    expect(origins).toContain("http://h0.example");
    expect(origins).not.toContain("http://h1.example");
  });

  it("forgets a healthy origin before one on a failure streak", () => {
    const b = breakers();
    fail(b, "http://streak.example", 1, 0);
    for (let i = 0; i < 999; i++) b.admit(`http://h${i}.example`, 0);
    b.admit("http://new.example", 0);
    const origins = b.snapshot(0).map((s) => s.origin);
    expect(origins).toContain("http://streak.example");
    expect(origins).not.toContain("http://h0.example");
  });

  it("more failing origins than slots, in rotation: most reach the threshold and open", () => {
    const b = breakers({ failureThreshold: 10, cooldownMs: 60_000, maxCooldownMs: 60_000 });
    for (let round = 0; round < 50; round++) {
      for (let i = 0; i < 1001; i++) {
        const admission = b.admit(`http://h${i}.example`, 0);
        if (isTicket(admission)) b.settle(admission, "HTTP 503", 0);
      }
    }
    const snapshot = b.snapshot(0);
    expect(snapshot).toHaveLength(1000);
    expect(snapshot.filter((s) => s.state === "open").length).toBeGreaterThanOrEqual(990);
  });

  it("with no healthy origin, the closed one with the fewest failures makes room", () => {
    const b = breakers({ failureThreshold: 5 });
    fail(b, "http://open.example", 5, 0);
    fail(b, "http://two.example", 2, 0);
    for (let i = 0; i < 998; i++) fail(b, `http://f${i}.example`, 3, 0);
    b.admit("http://new.example", 0);
    const origins = b.snapshot(0).map((s) => s.origin);
    expect(origins).toContain("http://open.example");
    expect(origins).toContain("http://new.example");
    expect(origins).not.toContain("http://two.example");
  });

  it("with every breaker open, the one whose cool-down ends first makes room: a new origin can still open", () => {
    const b = breakers({ failureThreshold: 1, cooldownMs: 60_000, maxCooldownMs: 60_000 });
    for (let i = 0; i < 1000; i++) fail(b, `http://o${i}.example`, 1, i); // o0 reopens first
    fail(b, "http://new.example", 1, 2000);
    const snapshot = b.snapshot(2000);
    expect(snapshot).toHaveLength(1000);
    expect(snapshot.map((s) => s.origin)).not.toContain("http://o0.example");
    expect(snapshot.find((s) => s.origin === "http://new.example")?.state).toBe("open");
    expect(refusal(b.admit("http://new.example", 2001)).retryAfter).toBeGreaterThan(0);
  });

  it("defaults are safe for a single endpoint", () => {
    expect(DEFAULT_BREAKER).toEqual({
      failureThreshold: 10,
      cooldownMs: 5000,
      maxCooldownMs: 60000,
      halfOpenProbes: 1,
    });
  });
});

describe("what counts against an endpoint's health", () => {
  it("5xx, 408 and 429; never 2xx, 3xx or another 4xx", () => {
    for (const status of [500, 502, 503, 504, 599, 408, 429]) expect(isUnhealthyStatus(status)).toBe(true);
    for (const status of [0, 200, 204, 301, 302, 400, 401, 403, 404, 409, 410, 413, 422, 425, 499]) {
      expect(isUnhealthyStatus(status)).toBe(false);
    }
  });
});

describe("breaker gauge attributes", () => {
  it("server.address, server.port (explicit or the scheme's default) and url.scheme", () => {
    expect(originAttributes("http://127.0.0.1:8080")).toEqual({
      "server.address": "127.0.0.1",
      "server.port": 8080,
      "url.scheme": "http",
    });
    expect(originAttributes("https://hooks.example.com")).toEqual({
      "server.address": "hooks.example.com",
      "server.port": 443,
      "url.scheme": "https",
    });
    expect(originAttributes("http://[::1]")).toEqual({
      "server.address": "::1",
      "server.port": 80,
      "url.scheme": "http",
    });
    expect(BREAKER_STATE_VALUE).toEqual({ closed: 0, half_open: 1, open: 2 });
  });
});
