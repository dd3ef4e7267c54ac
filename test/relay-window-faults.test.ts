/**
 * Faults of the streaming send window that a hostile re-review reproduced, each against a real
 * libSQL file (and real HTTP receivers on 127.0.0.1 where a receiver is the point): queued
 * messages held while every slot hangs, a claim/release livelock when claims come back late,
 * a claim recorded in several writes counted twice, a failed combined write releasing twice,
 * an empty store polled while a slow send is out, `batches` counting claims that sent
 * nothing, one slow claim lengthening every later lease without bound, `wake()` ignored while a
 * slow send is out, and a write retried after a failed release releasing twice.
 */

import { createClient } from "@libsql/client";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { httpSender } from "../adapters/http.ts";
import type { LibsqlStoreOptions } from "../adapters/libsql.ts";
import { type Claim, type ClaimOptions, Outbox, type Sender, StoreError } from "../mod.ts";
import { commitMessages } from "./conformance/store-conformance.ts";
import { dbPath, openStore, tempDir } from "./libsql/helpers.ts";
import { type HttpReceiver, startHttpReceiver } from "./support/http-receiver.ts";
import { waitFor } from "./support/senders.ts";
import { type AnyStore, remaining } from "./support/stores.ts";

const temp = tempDir();
afterAll(() => temp.cleanup());

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** A fresh migrated LibsqlStore on a file. */
async function libsqlFile(path = dbPath(temp.dir), options: LibsqlStoreOptions = {}): Promise<AnyStore> {
  const { store, close } = await openStore(`file:${path}`, options);
  cleanups.push(close);
  return store as unknown as AnyStore;
}

async function receiver(): Promise<HttpReceiver> {
  const r = await startHttpReceiver();
  cleanups.push(() => r.close());
  return r;
}

/** httpSender with `window` requests in flight; only `sendTimeout` and aborts cut a request. */
function windowedHttp(url: string, window: number): Sender {
  return httpSender({ url, unsigned: true, concurrency: window, requestTimeout: 60_000 });
}

const numbered = (n: number) => Array.from({ length: n }, (_, i) => ({ key: `k${i}`, value: `m${i}` }));

/** `store` with its methods wrapped: `around(name, call)` runs instead of each call. */
function wrapped(store: AnyStore, around: (name: string, call: () => Promise<unknown>) => Promise<unknown>) {
  return new Proxy(store, {
    get(target, name) {
      const value = Reflect.get(target, name);
      if (typeof value !== "function") return value;
      return (...args: unknown[]) => around(String(name), () => value.apply(target, args));
    },
  });
}

describe("send window faults (real libSQL file)", () => {
  it("every slot hanging: queued messages go back unsent in time, and another relay delivers them", {
    timeout: 60_000,
  }, async () => {
    const path = dbPath(temp.dir);
    const [a, b] = [await libsqlFile(path), await libsqlFile(path)];
    await commitMessages(a, numbered(6));
    const hanging = await receiver();
    hanging.respond(() => ({ delayMs: 30_000 }));
    const healthy = await receiver();
    // A claim of 6 through a window of 2 whose requests hang: the 4 queued can start only in
    // the first 500 ms of their lease (it leaves sendTimeout + 500 ms), long before a slot frees.
    const options = {
      batchSize: 6,
      sendTimeout: 10_000,
      leaseDuration: 11_000,
      backoff: { initialDelay: 0, maxDelay: 0 },
    };
    const stuck = new Outbox(a, windowedHttp(hanging.url, 2), options);
    const abort = new AbortController();
    const ticking = stuck.tick({ signal: abort.signal });
    // Given back while both requests still hang (not held until a slot frees; they hang for 30 s),
    // and not claimed again meanwhile. (Both conditions are awaited: on a loaded machine the
    // requests may reach the receiver after the queued messages went back.)
    await waitFor(async () => (await a.stats()).pending === 4 && hanging.inFlight === 2, 8_000);
    const other = new Outbox(b, windowedHttp(healthy.url, 2), options);
    expect(await other.tick()).toMatchObject({ batches: 1, sent: 4, failed: 0 });
    expect(hanging.inFlight).toBe(2);
    abort.abort();
    // The two aborted requests were on the wire: failed attempts. The 4 given back spent none.
    expect(await ticking).toMatchObject({ batches: 1, sent: 0, failed: 2 });
    expect(healthy.requests.map((q) => q.text()).sort()).toEqual(["m2", "m3", "m4", "m5"]);
    expect(healthy.requests.every((q) => q.headers["webhook-id"] !== undefined)).toBe(true);
    expect((await remaining(a)).map((m) => [m.text(), m.retries])).toEqual([
      ["m0", 1],
      ["m1", 1],
    ]);
  });

  it("claims slower than the recording margin (store with release): messages still go out, none charged", {
    timeout: 60_000,
  }, async () => {
    const store = await libsqlFile();
    await commitMessages(store, numbered(5));
    // Each claim answers 600 ms after it took the rows; the lease is the least a window allows.
    const events: ({ claimed: string[] } | { sent: string })[] = [];
    const slow = wrapped(store, async (name, call) => {
      const result = await call();
      if (name === "fetchAndLock" || name === "recordAndFetch") {
        await new Promise((resolve) => setTimeout(resolve, 600));
        const claim = (name === "fetchAndLock" ? result : (result as { claim: Claim }).claim) as Claim;
        if (claim.messages.length > 0) events.push({ claimed: claim.messages.map((m) => m.id) });
      }
      return result;
    });
    const retries: number[] = [];
    const sender: Sender = {
      window: 4,
      async send(messages) {
        for (const m of messages) {
          events.push({ sent: m.id });
          retries.push(m.retries);
          m.markAsSent();
        }
        return messages;
      },
    };
    const outbox = new Outbox(slow, sender, { batchSize: 5, sendTimeout: 500, leaseDuration: 1500 });
    const ticks = [];
    for (let round = 0; round < 10 && (await store.stats()).pending > 0; round++) {
      ticks.push(await outbox.tick({ budgetMs: 3000 }));
    }
    expect(ticks.reduce((n, t) => n + t.sent, 0)).toBe(5);
    expect(retries).toEqual([0, 0, 0, 0, 0]);
    expect(await store.stats()).toMatchObject({ pending: 0, inFlight: 0, dead: 0 });
    // `batches` counts the claims that handed a message to the sender: a claim that came back
    // too late and went back whole is none. (A send belongs to the latest claim holding its id.)
    const claims: string[][] = [];
    const handing = new Set<number>();
    for (const event of events) {
      if ("claimed" in event) claims.push(event.claimed);
      else handing.add(claims.findLastIndex((ids) => ids.includes(event.sent)));
    }
    expect(claims.length).toBeGreaterThan(handing.size);
    expect(ticks.reduce((n, t) => n + t.batches, 0)).toBe(handing.size);
  });

  it("a claim recorded in several writes counts each delivery once (the newest row first)", {
    timeout: 60_000,
  }, async () => {
    const store = await libsqlFile();
    await commitMessages(store, numbered(30));
    const r = await receiver();
    // The newest message answers at once, the rest later: its claim is recorded in two writes
    // or more, and the first one leaves the newest row as the id-keeping tombstone.
    r.respond((request) => (request.text() === "m29" ? {} : { delayMs: 300 }));
    const outbox = new Outbox(store, windowedHttp(r.url, 30), { batchSize: 30 });
    expect(await outbox.tick()).toMatchObject({ batches: 1, sent: 30, failed: 0, dead: 0 });
    expect(r.requests).toHaveLength(30);
    expect(await store.stats()).toMatchObject({ pending: 0, inFlight: 0, dead: 0 });
  });

  it("a failed combined write is recorded again without releasing twice (no false LeaseLostError)", async () => {
    const store = await libsqlFile();
    await commitMessages(store, numbered(2));
    let failures = 1;
    const flaky = wrapped(store, async (name, call) => {
      if (name === "recordAndFetch" && failures-- > 0)
        throw new StoreError("database is locked", { retryable: true });
      return call();
    });
    const sender: Sender = {
      window: 2,
      async send(messages) {
        for (const m of messages) {
          if (m.text() === "m0") m.markAsFailed({ attempted: false, retryAfter: 100 });
          else m.markAsSent();
        }
        return messages;
      },
    };
    const errors: unknown[] = [];
    const outbox = new Outbox(flaky, sender, { batchSize: 2, onError: (e) => errors.push(e) });
    await expect(outbox.tick()).rejects.toBeInstanceOf(StoreError);
    expect(failures).toBe(0);
    expect(errors.map((e) => (e as Error).name)).toEqual([]);
    // m1's delivery was stored by the plain marks; m0 went back once, no attempt spent.
    await new Promise((resolve) => setTimeout(resolve, 150));
    expect((await remaining(store)).map((m) => [m.text(), m.retries])).toEqual([["m0", 0]]);
  });

  it("an empty store is not polled while a slow send is out", { timeout: 30_000 }, async () => {
    const store = await libsqlFile();
    await commitMessages(store, numbered(1));
    const r = await receiver();
    r.respond(() => ({ delayMs: 1500 }));
    let claims = 0;
    const counted = wrapped(store, (name, call) => {
      if (name === "fetchAndLock" || name === "recordAndFetch") claims += 1;
      return call();
    });
    const outbox = new Outbox(counted, windowedHttp(r.url, 4), {
      sendTimeout: 10_000,
      leaseDuration: 11_000,
    });
    expect(await outbox.tick()).toMatchObject({ batches: 1, sent: 1 });
    // The claim that got m0, one that found nothing, and the one made with m0's write: the
    // store is claimed again when a send ends (or after `period`), not every 100 ms.
    expect(claims).toBeLessThanOrEqual(3);
  });

  it("one slow claim: later leases stay under twice leaseDuration and shrink back (a crash frees messages in time)", {
    timeout: 60_000,
  }, async () => {
    const path = dbPath(temp.dir);
    const store = await libsqlFile(path, { busyTimeout: 30_000 });
    await commitMessages(store, numbered(32));
    // The lease each claim that got messages asked for.
    const leases: number[] = [];
    const watched = new Proxy(store, {
      get(target, name) {
        const value = Reflect.get(target, name);
        if (typeof value !== "function") return value;
        if (name !== "fetchAndLock" && name !== "recordAndFetch") return value.bind(target);
        return async (...args: unknown[]) => {
          const result = await value.apply(target, args);
          const [options, claim] =
            name === "fetchAndLock" ? [args[0], result] : [args[1], (result as { claim?: Claim }).claim];
          if ((claim as Claim | undefined)?.messages.length)
            leases.push((options as ClaimOptions).leaseDuration);
          return result;
        };
      },
    });
    const r = await receiver();
    // m0's first request hangs (until sendTimeout aborts it); every other answer is at once.
    let hung = false;
    r.respond((request) => {
      if (request.text() !== "m0" || hung) return {};
      hung = true;
      return { delayMs: 60_000 };
    });
    const leaseDuration = 3000;
    const sendTimeout = 2000;
    // The application holds the write lock while the relay's first claim waits for it.
    const app = createClient({ url: `file:${path}` });
    cleanups.push(async () => app.close());
    const tx = await app.transaction("write");
    await tx.execute("UPDATE outbox_messages SET headers = headers WHERE 0");
    const outbox = new Outbox(watched, windowedHttp(r.url, 4), {
      batchSize: 4,
      leaseDuration,
      sendTimeout,
      backoff: { initialDelay: 0, maxDelay: 0 },
      onError: (e) => errors.push(e),
    });
    const errors: unknown[] = [];
    const ticking = outbox.tick();
    await new Promise((resolve) => setTimeout(resolve, 2500));
    await tx.rollback();
    // While m0 hangs (a relay that crashed now would leave it leased), its lease ends within
    // twice leaseDuration: at most leaseDuration + sendTimeout + 500 ms after its claim.
    await waitFor(() => hung, 20_000);
    const rows = await app.execute(
      "SELECT lease_until - CAST(unixepoch('subsec') * 1000 AS INTEGER) AS left_ms FROM outbox_messages WHERE status = 0 AND lease_until IS NOT NULL",
    );
    expect(rows.rows.length).toBeGreaterThan(0);
    for (const row of rows.rows) expect(Number(row.left_ms)).toBeLessThan(2 * leaseDuration);
    const result = await ticking;
    expect(result.sent).toBe(32);
    expect(await store.stats()).toMatchObject({ pending: 0, inFlight: 0, dead: 0 });
    // Every message was sent once, m0 twice (its first request was aborted).
    expect(r.requests).toHaveLength(33);
    // The claim after the stall asked for more than leaseDuration (so its messages could still
    // start), never for twice as much; the claims after a run of fast ones ask for about
    // leaseDuration again (not the stalled claim's lease for the rest of the drain).
    // m0's abort is reported; no outcome was written after its lease ended.
    expect(errors.some((e) => (e as Error).name === "LeaseLostError")).toBe(false);
    expect(leases.length).toBeGreaterThan(6);
    expect(leases.every((lease) => lease < 2 * leaseDuration)).toBe(true);
    expect(leases.some((lease) => lease > leaseDuration)).toBe(true);
    expect(leases[leases.length - 1]).toBeLessThan(leaseDuration + sendTimeout);
  });

  it("wake() while a slow send is out: the message just committed goes out at once", {
    timeout: 30_000,
  }, async () => {
    const store = await libsqlFile();
    const r = await receiver();
    // When m1 arrives: how many requests are out, m1 included.
    let outWithM1 = 0;
    r.respond((request) => {
      if (request.text() === "m1") outWithM1 = r.inFlight;
      return request.text() === "m0" ? { delayMs: 3000 } : {};
    });
    const outbox = new Outbox(store, windowedHttp(r.url, 4), {
      period: 60_000,
      sendTimeout: 5000,
      leaseDuration: 6000,
    });
    cleanups.push(() => outbox.stop());
    outbox.start();
    await commitMessages(store, [{ key: "k0", value: "m0" }]);
    outbox.wake();
    await waitFor(() => r.requests.length === 1);
    // The loop's pass is waiting on m0 with the store found empty; wake() must reach it.
    await commitMessages(store, [{ key: "k1", value: "m1" }]);
    outbox.wake();
    await waitFor(() => r.requests.length === 2, 20_000);
    expect(r.requests.map((q) => q.text())).toEqual(["m0", "m1"]);
    // m0 was still out: m1 did not wait for it (nor for `period`).
    expect(outWithM1).toBe(2);
    await outbox.stop();
    expect(await store.stats()).toMatchObject({ pending: 0, inFlight: 0, dead: 0 });
  });

  it("a write tried again after a failed release releases nothing twice (no false LeaseLostError)", async () => {
    const store = await libsqlFile();
    await commitMessages(store, numbered(3));
    // The release of m1's delay fails (reported), and so does the failed-attempt write that
    // stands in for it: the group's write fails after m0's release went through.
    let releaseFailures = 1;
    let retryFailures = 1;
    const ids: Record<string, string> = {};
    const failing = new Proxy(store, {
      get(target, name) {
        const value = Reflect.get(target, name);
        if (typeof value !== "function") return value;
        return (...args: unknown[]) => {
          if (name === "release" && (args[1] as string[]).includes(ids.m1 ?? "") && releaseFailures-- > 0) {
            return Promise.reject(new StoreError("database is locked", { retryable: true }));
          }
          if (name === "updateRetryCount" && retryFailures-- > 0) {
            return Promise.reject(new StoreError("database is locked", { retryable: true }));
          }
          return value.apply(target, args);
        };
      },
    });
    const sender: Sender = {
      window: 3,
      async send(messages) {
        for (const m of messages) {
          ids[m.text()] = m.id;
          if (m.text() === "m0") m.markAsFailed({ attempted: false, retryAfter: 100 });
          else if (m.text() === "m1") m.markAsFailed({ attempted: false, retryAfter: 200 });
          else m.markAsSent();
        }
        return messages;
      },
    };
    const errors: unknown[] = [];
    const outbox = new Outbox(failing, sender, { batchSize: 3, onError: (e) => errors.push(e) });
    await expect(outbox.tick()).rejects.toBeInstanceOf(StoreError);
    expect(releaseFailures).toBeLessThan(1);
    expect(retryFailures).toBeLessThan(1);
    // The failed release is reported; m0's release is not written again (it would change no
    // row: a false LeaseLostError).
    expect(errors.map((e) => (e as Error).name)).toEqual(["StoreError"]);
    // m2's delivery was stored; m0 and m1 went back once, no attempt spent.
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect((await remaining(store)).map((m) => [m.text(), m.retries])).toEqual([
      ["m0", 0],
      ["m1", 0],
    ]);
  });
});
