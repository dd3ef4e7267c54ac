/**
 * The libSQL store's marks, claims and retention where the conformance suite cannot look: the
 * wait a retry mark records for every shape of `RetryUpdate`, what a lost lease leaves in the
 * row, and which rows a purge keeps. Written against mutation survivors (TESTING.md).
 */
import type { Client } from "@libsql/client";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import type { LibsqlStore } from "../../adapters/libsql.ts";
import type { RetryUpdate } from "../../mod.ts";
import { commitMessages } from "../conformance/store-conformance.ts";
import { dbPath, openStore, rowId, tempDir } from "./helpers.ts";

const tmp = tempDir();
afterAll(() => tmp.cleanup());

const claim = { batchSize: 10, leaseDuration: 30_000, ordering: "none" } as const;
const MINUTE = 60_000;

let close: (() => Promise<void>) | undefined;
afterEach(async () => {
  await close?.();
  close = undefined;
});

async function open(
  options: Parameters<typeof openStore>[1] = {},
): Promise<{ client: Client; store: LibsqlStore }> {
  const opened = await openStore(`file:${dbPath(tmp.dir)}`, options);
  close = opened.close;
  return opened;
}

/** The database's now, in ms, as the store reads it. */
async function dbNow(client: Client): Promise<number> {
  const result = await client.execute("SELECT CAST(unixepoch('subsec') * 1000 AS INTEGER) AS now");
  return Number(result.rows[0]!.now);
}

/** Each row's wait after the database's now (negative: ready), by key. */
async function waits(client: Client): Promise<Record<string, number>> {
  const now = await dbNow(client);
  const rows = await client.execute("SELECT key, available_at FROM outbox_messages");
  return Object.fromEntries(rows.rows.map((r) => [String(r.key), Number(r.available_at) - now]));
}

describe("LibsqlStore retry marks: the wait recorded for each RetryUpdate shape", () => {
  it("waits `delay` from the database's now, ignoring availableAt when delay is a number", async () => {
    const { client, store } = await open();
    await commitMessages(
      store,
      ["a", "b", "c"].map((key) => ({ key, value: key })),
    );
    const { token, messages } = await store.fetchAndLock(claim);
    const [a, b, c] = messages;
    const past = new Date(Date.now() - 10 * MINUTE);
    const updates: RetryUpdate[] = [
      // delay wins over an availableAt in the past.
      { id: a!.id, delay: 5 * MINUTE, availableAt: past, error: "x" },
      // A fraction is cut to whole ms, never rounded up past what was asked.
      { id: b!.id, delay: 2 * MINUTE + 0.9, availableAt: past },
      // A negative delay waits nothing.
      { id: c!.id, delay: -MINUTE, availableAt: past },
    ];
    expect(await store.updateRetryCount(token, updates)).toBe(3);
    const wait = await waits(client);
    expect(wait.a).toBeGreaterThan(4 * MINUTE);
    expect(wait.a).toBeLessThanOrEqual(5 * MINUTE);
    expect(wait.b).toBeGreaterThan(MINUTE);
    expect(wait.b).toBeLessThanOrEqual(2 * MINUTE);
    expect(wait.c).toBeLessThanOrEqual(0);
    const again = await store.fetchAndLock(claim);
    expect(again.messages.map((m) => [m.key, m.retries, m.lastError])).toEqual([["c", 1, undefined]]);
  });

  it("for a caller that gave only availableAt, waits until then; a bad one or neither waits nothing", async () => {
    const { client, store } = await open();
    await commitMessages(
      store,
      ["at", "nan", "bad-date", "none", "huge"].map((key) => ({ key, value: key })),
    );
    const { token, messages } = await store.fetchAndLock(claim);
    const id = (key: string) => messages.find((m) => m.key === key)!.id;
    const updates = [
      { id: id("at"), availableAt: new Date(Date.now() + 3 * MINUTE) },
      { id: id("nan"), delay: Number.NaN, availableAt: new Date(Date.now() + 3 * MINUTE) },
      { id: id("bad-date"), availableAt: new Date(Number.NaN) },
      { id: id("none") },
      // Clamped to the range of a Date rather than overflowing the integer clock.
      { id: id("huge"), delay: Number.POSITIVE_INFINITY },
    ] as unknown as RetryUpdate[];
    expect(await store.updateRetryCount(token, updates)).toBe(5);
    const wait = await waits(client);
    for (const key of ["at", "nan"]) {
      expect(wait[key]).toBeGreaterThan(2 * MINUTE);
      expect(wait[key]).toBeLessThanOrEqual(3 * MINUTE);
    }
    expect(wait["bad-date"]).toBeLessThanOrEqual(0);
    expect(wait.none).toBeLessThanOrEqual(0);
    expect(wait.huge).toBeGreaterThan(8e15);
    expect(wait.huge).toBeLessThanOrEqual(8.64e15);
    const again = await store.fetchAndLock(claim);
    expect(again.messages.map((m) => m.key).sort()).toEqual(["bad-date", "none"]);
    expect((await store.stats()).pending).toBe(3);
  });
});

describe("LibsqlStore claims", () => {
  it("counts a lost lease once per expiry and records why, keeping an older error until then", async () => {
    const { client, store } = await open();
    await commitMessages(store, [{ key: "a", value: "a" }]);
    const first = await store.fetchAndLock(claim);
    await store.updateRetryCount(first.token, [
      { id: first.messages[0]!.id, delay: 0, availableAt: new Date(), error: "HTTP 503" },
    ]);
    // Claimed after a retry mark (no lease held): the mark's count and error come as they are.
    const second = await store.fetchAndLock({ ...claim, leaseDuration: 1 });
    expect(second.messages.map((m) => [m.retries, m.lastError])).toEqual([[1, "HTTP 503"]]);
    await new Promise((resolve) => setTimeout(resolve, 20));
    // Its lease ran out: the takeover counts that attempt and says why.
    const third = await store.fetchAndLock(claim);
    expect(third.messages.map((m) => [m.retries, m.lastError])).toEqual([
      [2, "lease expired before the outcome was recorded"],
    ]);
    const row = await client.execute("SELECT retries, last_error, claim_token FROM outbox_messages");
    expect([row.rows[0]!.retries, row.rows[0]!.last_error, row.rows[0]!.claim_token]).toEqual([
      2,
      "lease expired before the outcome was recorded",
      third.token,
    ]);
    // The stale holder's marks change nothing.
    expect(await store.markAsSent(second.token, [second.messages[0]!.id])).toBe(0);
    expect(await store.markAsDead(second.token, [{ id: second.messages[0]!.id, error: "late" }])).toBe(0);
    expect(await store.markAsSent(third.token, [third.messages[0]!.id])).toBe(1);
  });

  it("takes over only expired leases and never a row held by a live one", async () => {
    const { store } = await open();
    await commitMessages(
      store,
      ["a", "b", "c"].map((key) => ({ key, value: key })),
    );
    await store.fetchAndLock({ ...claim, batchSize: 1, leaseDuration: 10 * MINUTE });
    await store.fetchAndLock({ ...claim, batchSize: 1, leaseDuration: 1 });
    await new Promise((resolve) => setTimeout(resolve, 20));
    const next = await store.fetchAndLock(claim);
    expect(next.messages.map((m) => [m.key, m.retries])).toEqual([
      ["b", 1],
      ["c", 0],
    ]);
    expect(await store.stats()).toMatchObject({ pending: 0, inFlight: 3 });
  });

  it("claims by age, not by id: an older message committed later goes first", async () => {
    const { store } = await open();
    const now = Date.now();
    await commitMessages(store, [{ key: "newer", value: "n" }], now - 1000);
    await commitMessages(store, [{ key: "older", value: "o" }], now - 5000);
    const first = await store.fetchAndLock({ ...claim, batchSize: 1 });
    expect(first.messages.map((m) => m.key)).toEqual(["older"]);
    const both = await store.fetchAndLock(claim);
    expect(both.messages.map((m) => m.key)).toEqual(["newer"]);
  });
});

describe("LibsqlStore dead rows", () => {
  it("requeues only dead rows, with retries 0 and ready at once, leaving sent, pending and held rows", async () => {
    const { client, store } = await open({ retention: { sent: "keep", keepFor: MINUTE } });
    await commitMessages(
      store,
      ["dead", "sent", "held", "pending"].map((key) => ({ key, value: key })),
    );
    const { token, messages } = await store.fetchAndLock({ ...claim, batchSize: 3 });
    const [dead, sent, held] = messages;
    await store.markAsDead(token, [{ id: dead!.id, error: "gone" }]);
    await store.markAsSent(token, [sent!.id]);
    expect(await store.requeueDead([dead!.id, sent!.id, held!.id])).toBe(1);
    expect(await store.requeueDead()).toBe(0);
    expect(await store.requeueDead(["msg_0000000000000000_1", "bad"])).toBe(0);
    const rows = await client.execute(
      "SELECT key, status, retries, claim_token FROM outbox_messages ORDER BY id",
    );
    expect(rows.rows.map((r) => [r.key, r.status, r.retries, r.claim_token === null])).toEqual([
      ["dead", 0, 0, true],
      ["sent", 1, 0, true],
      ["held", 0, 0, false],
      ["pending", 0, 0, true],
    ]);
    const next = await store.fetchAndLock(claim);
    expect(next.messages.map((m) => m.key)).toEqual(["dead", "pending"]);
    expect(rowId(next.messages[0]!.id)).toBe(rowId(dead!.id));
  });
});

describe("LibsqlStore sent marks and the newest row (ids never reused)", () => {
  it("counts only the rows it marks, not the older tombstone it clears on the way", async () => {
    const { client, store } = await open();
    await commitMessages(store, [{ key: "a", value: "a" }]);
    const first = await store.fetchAndLock(claim);
    // The newest row stays as a sent tombstone so that SQLite never hands its id out again.
    expect(await store.markAsSent(first.token, [first.messages[0]!.id])).toBe(1);
    // It holds the tag of the write that made it (the claim's read counts it by that), never the
    // claim's token: a later write of the same claim must not count it again.
    const kept = await client.execute("SELECT key, status, claim_token FROM outbox_messages");
    expect(kept.rows.map((r) => [r.key, r.status])).toEqual([["a", 1]]);
    expect(kept.rows[0]?.claim_token).toEqual(expect.any(String));
    expect(kept.rows[0]?.claim_token).not.toBe(first.token);
    expect(await store.stats()).toMatchObject({ pending: 0, inFlight: 0, dead: 0 });
    await commitMessages(
      store,
      ["b", "c"].map((key) => ({ key, value: key })),
    );
    const second = await store.fetchAndLock(claim);
    expect(second.messages.map((m) => m.key)).toEqual(["b", "c"]);
    expect(Number(rowId(second.messages[0]!.id))).toBeGreaterThan(Number(rowId(first.messages[0]!.id)));
    // b's mark also deletes a's tombstone (no longer the newest row), which is not b's count.
    expect(await store.markAsSent(second.token, [second.messages[0]!.id])).toBe(1);
    const left = await client.execute("SELECT key, status FROM outbox_messages ORDER BY id");
    expect(left.rows.map((r) => [r.key, r.status])).toEqual([["c", 0]]);
    // The pass form counts the same way.
    const done = await store.recordAndFetch(
      { token: second.token, sent: [second.messages[1]!.id], retry: [], dead: [] },
      claim,
    );
    expect(done.recorded).toEqual({ sent: 1, failed: 0, dead: 0 });
    expect(done.claim.messages).toEqual([]);
    await commitMessages(store, [{ key: "d", value: "d" }]);
    const third = await store.fetchAndLock(claim);
    expect(third.messages.map((m) => m.key)).toEqual(["d"]);
    expect(Number(rowId(third.messages[0]!.id))).toBeGreaterThan(Number(rowId(second.messages[1]!.id)));
    const after = await store.recordAndFetch(
      { token: third.token, sent: [third.messages[0]!.id], retry: [], dead: [] },
      claim,
    );
    expect(after.recorded.sent).toBe(1);
  });
});

describe("LibsqlStore purgeSent", () => {
  it("deletes sent rows older than the cutoff, never the newest row, nor unsent or dead ones", async () => {
    const { client, store } = await open({ retention: { sent: "keep", keepFor: 10 * MINUTE } });
    await commitMessages(
      store,
      ["dead", "pending", "a", "b"].map((key) => ({ key, value: key })),
    );
    const { token, messages } = await store.fetchAndLock({ ...claim, batchSize: 1 });
    await store.markAsDead(token, [{ id: messages[0]!.id, error: "x" }]);
    await store.fetchAndLock({ ...claim, batchSize: 1 }); // "pending" stays held, unsent
    const sent = await store.fetchAndLock(claim);
    expect(sent.messages.map((m) => m.key)).toEqual(["a", "b"]);
    expect(await store.markAsSent(sent.token, [sent.messages[0]!.id, sent.messages[1]!.id])).toBe(2);
    const keys = async () =>
      (await client.execute("SELECT key FROM outbox_messages ORDER BY id")).rows.map((r) => String(r.key));
    // Within keepFor, and before a cutoff in the past: nothing.
    expect(await store.purgeSent()).toBe(0);
    expect(await store.purgeSent(new Date(Date.now() - MINUTE))).toBe(0);
    // Past the cutoff: a goes; b is the newest row and stays (its id must never come back).
    expect(await store.purgeSent(new Date(Date.now() + MINUTE))).toBe(1);
    expect(await keys()).toEqual(["dead", "pending", "b"]);
    await commitMessages(store, [{ key: "c", value: "c" }]);
    expect(await store.purgeSent(new Date(Date.now() + MINUTE))).toBe(1);
    expect(await keys()).toEqual(["dead", "pending", "c"]);
    expect(await store.stats()).toMatchObject({ pending: 1, inFlight: 1, dead: 1 });
  });

  it("refuses a cutoff that is not a valid Date before touching anything", async () => {
    const { store } = await open({ retention: { sent: "keep", keepFor: MINUTE } });
    for (const bad of [new Date(Number.NaN), "2020-01-01", 0]) {
      await expect(store.purgeSent(bad as Date)).rejects.toMatchObject({
        name: "ValidationError",
        code: "INVALID_OPTIONS",
      });
    }
  });
});

describe("LibsqlStore marks given odd updates", () => {
  it("skips holes, foreign and malformed ids in a mark's list and marks the rest", async () => {
    const { store } = await open();
    await commitMessages(
      store,
      ["a", "b"].map((key) => ({ key, value: key })),
    );
    const { token, messages } = await store.fetchAndLock(claim);
    const [a, b] = messages;
    const foreign = "msg_0000000000000000_1";
    const retry = [
      null,
      { id: foreign, delay: 0 },
      { id: "nope", delay: 0 },
      { id: a!.id, delay: 0, error: "e" },
    ];
    expect(await store.updateRetryCount(token, retry as never)).toBe(1);
    const dead = [undefined, { id: foreign }, { id: b!.id, error: "gone" }];
    expect(await store.markAsDead(token, dead as never)).toBe(1);
    expect(await store.updateRetryCount(token, [{ id: foreign, delay: 0 }] as never)).toBe(0);
    expect(await store.markAsDead(token, [{ id: foreign }])).toBe(0);
    expect((await store.listDead()).map((m) => [m.key, m.lastError])).toEqual([["b", "gone"]]);
    const again = await store.fetchAndLock(claim);
    expect(again.messages.map((m) => [m.key, m.retries, m.lastError])).toEqual([["a", 1, "e"]]);
  });
});

describe("LibsqlStore claims of large values and ordering", () => {
  it("reads values above the inlined size by id, keeping the small ones after them in place", async () => {
    const { store } = await open();
    const values = [
      new Uint8Array(2048).fill(1),
      new Uint8Array([2, 2]),
      new Uint8Array(5000).fill(3),
      new Uint8Array([4]),
      new Uint8Array(2049).fill(5),
      new Uint8Array(0),
    ];
    await commitMessages(
      store,
      values.map((value, i) => ({ key: `k${i}`, value })),
    );
    const { messages } = await store.fetchAndLock(claim);
    expect(messages.map((m) => m.key)).toEqual(values.map((_, i) => `k${i}`));
    for (const [i, m] of messages.entries()) expect(Array.from(m.value)).toEqual(Array.from(values[i]!));
  });

  it('with ordering "key" holds back a key behind its unfinished elder; "none" does not', async () => {
    const { store } = await open();
    await commitMessages(
      store,
      ["k", "k", "j"].map((key, i) => ({ key, value: String(i) })),
    );
    const first = await store.fetchAndLock({ ...claim, batchSize: 1, ordering: "key" });
    expect(first.messages.map((m) => m.value[0])).toEqual([0x30]);
    const byKey = await store.fetchAndLock({ ...claim, ordering: "key" });
    expect(byKey.messages.map((m) => m.key)).toEqual(["j"]);
    const none = await store.fetchAndLock({ ...claim, ordering: "none" });
    expect(none.messages.map((m) => [m.key, m.value[0]])).toEqual([["k", 0x31]]);
  });
});

describe("LibsqlStore recordAndFetch counts", () => {
  it("counts no sent rows for a pass that marked none, whatever its other marks changed", async () => {
    const { store } = await open();
    await commitMessages(
      store,
      ["a", "b", "c"].map((key) => ({ key, value: key })),
    );
    const first = await store.fetchAndLock(claim);
    const [a, b, c] = first.messages;
    const result = await store.recordAndFetch(
      {
        token: first.token,
        sent: [],
        retry: [{ id: a!.id, delay: 60_000, availableAt: new Date() }],
        dead: [{ id: b!.id, error: "x" }],
      },
      claim,
    );
    expect(result.recorded).toEqual({ sent: 0, failed: 1, dead: 1 });
    const next = await store.recordAndFetch(
      { token: first.token, sent: [c!.id], retry: [], dead: [] },
      claim,
    );
    expect(next.recorded).toEqual({ sent: 1, failed: 0, dead: 0 });
  });
});
