/** `release(token, ids)`: claimed messages never handed to a sender go back untouched. */
import { afterAll, describe, expect, it } from "vitest";
import { commitMessages } from "../conformance/store-conformance.ts";
import { dbPath, openStore, rowId, tempDir } from "./helpers.ts";

const tmp = tempDir();
afterAll(() => tmp.cleanup());

const claim = { batchSize: 10, leaseDuration: 30_000, ordering: "none" } as const;

describe("LibsqlStore release", () => {
  it("clears lease and token of the given rows still holding the token, keeps retries and the error", async () => {
    const { client, store, close } = await openStore(`file:${dbPath(tmp.dir)}`);
    try {
      await commitMessages(
        store,
        ["a", "b", "c"].map((key) => ({ key, value: key })),
      );
      // a has lost a lease before: retries 1 and that error, which a release must keep.
      const lost = await store.fetchAndLock({ ...claim, batchSize: 1, leaseDuration: 1 });
      await new Promise((resolve) => setTimeout(resolve, 20));
      const first = await store.fetchAndLock(claim);
      const [a, b, c] = first.messages;
      expect([a!.key, a!.retries]).toEqual(["a", 1]);
      expect(await store.release(first.token, [a!.id, b!.id, "msg_0000000000000000_3", "bad"])).toBe(2);
      // A stale token changes nothing, nor does a second release.
      expect(await store.release(lost.token, [a!.id])).toBe(0);
      expect(await store.release(first.token, [a!.id])).toBe(0);
      const rows = await client.execute(
        "SELECT id, lease_until, claim_token, retries, last_error FROM outbox_messages ORDER BY id",
      );
      expect(
        rows.rows.map((r) => [String(r.id), r.lease_until, r.claim_token, r.retries, r.last_error]),
      ).toEqual([
        [rowId(a!.id), null, null, 1, "lease expired before the outcome was recorded"],
        [rowId(b!.id), null, null, 0, null],
        [rowId(c!.id), expect.any(Number), first.token, 0, null],
      ]);
      // Claimable at once, with no attempt counted; c stays held.
      const again = await store.fetchAndLock(claim);
      expect(again.messages.map((m) => [m.key, m.retries])).toEqual([
        ["a", 1],
        ["b", 0],
      ]);
      expect(await store.stats()).toMatchObject({ inFlight: 3, pending: 0 });
      // A released-then-sent row cannot be released by its old claim.
      await store.markAsSent(again.token, [again.messages[1]!.id]);
      expect(await store.release(first.token, [b!.id, c!.id])).toBe(1);
      expect(await store.release(first.token, [])).toBe(0);
    } finally {
      await close();
    }
  });
});
