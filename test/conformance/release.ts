/**
 * Conformance of `MessageStore.release` (optional in the contract; every built-in store has it):
 * claimed messages that were never handed to a sender go back as if never claimed. Store-agnostic:
 * a store without `release` skips these tests.
 */
import { afterEach, describe, expect, it } from "vitest";
import type { ClaimOptions, TransactionalStore } from "../../mod.ts";
import { commitMessages, type StoreFixture } from "./store-conformance.ts";

const claimDefaults: ClaimOptions = { batchSize: 10, leaseDuration: 30_000, ordering: "none" };
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Runs the `release` conformance tests against fresh stores from `makeStore`. */
export function describeReleaseConformance<T>(name: string, makeStore: () => Promise<StoreFixture<T>>): void {
  describe(`${name}: release conformance`, () => {
    let fixture: StoreFixture<T> | undefined;
    /** The store, or undefined (the test then passes vacuously) when it has no `release`. */
    const open = async (): Promise<
      (TransactionalStore<T> & Required<Pick<TransactionalStore<T>, "release">>) | undefined
    > => {
      fixture = await makeStore();
      const { store } = fixture;
      return store.release === undefined ? undefined : (store as never);
    };
    afterEach(async () => {
      await fixture?.close?.();
      fixture = undefined;
    });

    it("gives back exactly the given ids of the claim: claimable at once, attempts untouched", async () => {
      const store = await open();
      if (store === undefined) return;
      await commitMessages(store, [
        { key: "a", value: "1" },
        { key: "b", value: "2" },
        { key: "c", value: "3" },
      ]);
      const claim = await store.fetchAndLock(claimDefaults);
      const [a, b, c] = claim.messages.map((m) => m.id);
      expect(await store.release(claim.token, [a!, b!])).toBe(2);
      expect(await store.stats()).toMatchObject({ pending: 2, inFlight: 1 });
      const again = await store.fetchAndLock(claimDefaults);
      expect(again.messages.map((m) => m.id)).toEqual([a, b]);
      expect(again.messages.map((m) => m.retries)).toEqual([0, 0]);
      // The one not released is still held by the first claim.
      expect(await store.markAsSent(claim.token, [c!])).toBe(1);
    });

    it("keeps the retry count and last error of earlier attempts", async () => {
      const store = await open();
      if (store === undefined) return;
      await commitMessages(store, [{ key: "a", value: "1" }]);
      const first = await store.fetchAndLock(claimDefaults);
      const id = first.messages[0]!.id;
      await store.updateRetryCount(first.token, [
        { id, availableAt: new Date(), delay: 0, error: "HTTP 503" },
      ]);
      const second = await store.fetchAndLock(claimDefaults);
      expect(await store.release(second.token, [id])).toBe(1);
      const third = await store.fetchAndLock(claimDefaults);
      expect(third.messages).toHaveLength(1);
      expect(third.messages[0]).toMatchObject({ id, retries: 1, lastError: "HTTP 503" });
    });

    it("counts no lost attempt: a released message claimed after its old lease ran out keeps retries 0", async () => {
      const store = await open();
      if (store === undefined) return;
      await commitMessages(store, [{ key: "a", value: "1" }]);
      // Long enough that a slow fsync on a loaded machine cannot end the lease before release.
      const claim = await store.fetchAndLock({ ...claimDefaults, leaseDuration: 300 });
      expect(await store.release(claim.token, [claim.messages[0]!.id])).toBe(1);
      await sleep(350);
      const again = await store.fetchAndLock(claimDefaults);
      expect(again.messages.map((m) => m.retries)).toEqual([0]);
      expect(again.messages[0]!.lastError).toBeUndefined();
    });

    it("changes nothing for a stale token, a finished message, an unknown id or no ids", async () => {
      const store = await open();
      if (store === undefined) return;
      await commitMessages(store, [
        { key: "a", value: "1" },
        { key: "b", value: "2" },
        { key: "c", value: "3" },
      ]);
      const stale = await store.fetchAndLock({ ...claimDefaults, batchSize: 1, leaseDuration: 300 });
      const a = stale.messages[0]!.id;
      await sleep(350);
      const owner = await store.fetchAndLock({ ...claimDefaults, batchSize: 1 });
      expect(owner.messages.map((m) => m.id)).toEqual([a]);
      // The stale holder cannot give back what the new owner holds.
      expect(await store.release(stale.token, [a])).toBe(0);
      expect(await store.release("not-a-token", [a])).toBe(0);
      expect(await store.stats()).toMatchObject({ pending: 2, inFlight: 1 });
      expect(await store.markAsSent(owner.token, [a])).toBe(1);

      const rest = await store.fetchAndLock(claimDefaults);
      const [b, c] = rest.messages.map((m) => m.id);
      expect(await store.markAsSent(rest.token, [b!])).toBe(1);
      expect(await store.markAsDead(rest.token, [{ id: c!, error: "HTTP 404" }])).toBe(1);
      expect(await store.release(rest.token, [a, b!, c!, "999999999", "msg_0000000000000000_1"])).toBe(0);
      expect(await store.release(rest.token, [])).toBe(0);
      expect(await store.stats()).toMatchObject({ pending: 0, inFlight: 0, dead: 1 });
      expect((await store.listDead())[0]).toMatchObject({ id: c, lastError: "HTTP 404" });
    });

    it('with ordering "key" a released message still goes before the later ones of its key', async () => {
      const store = await open();
      if (store === undefined) return;
      await commitMessages(store, [
        { key: "x", value: "x1" },
        { key: "x", value: "x2" },
      ]);
      const keyed: ClaimOptions = { ...claimDefaults, ordering: "key" };
      const first = await store.fetchAndLock(keyed);
      expect(first.messages.map((m) => m.text())).toEqual(["x1"]);
      expect(await store.release(first.token, [first.messages[0]!.id])).toBe(1);
      const again = await store.fetchAndLock(keyed);
      expect(again.messages.map((m) => m.text())).toEqual(["x1"]);
    });

    it("with a delay: not claimable before it passes, then claimed with retries and last error untouched", async () => {
      const store = await open();
      if (store === undefined) return;
      await commitMessages(store, [
        { key: "a", value: "1" },
        { key: "b", value: "2" },
      ]);
      const first = await store.fetchAndLock(claimDefaults);
      const [a, b] = first.messages.map((m) => m.id);
      await store.updateRetryCount(first.token, [
        { id: a!, availableAt: new Date(), delay: 0, error: "HTTP 503" },
      ]);
      expect(await store.release(first.token, [b!], 400)).toBe(1);
      const second = await store.fetchAndLock(claimDefaults);
      // Only a is ready: b waits out its delay, counted on the store's clock.
      expect(second.messages.map((m) => m.id)).toEqual([a]);
      expect(await store.release(second.token, [a!], 400)).toBe(1);
      expect((await store.fetchAndLock(claimDefaults)).messages).toEqual([]);
      expect(await store.stats()).toMatchObject({ pending: 2, inFlight: 0 });
      await sleep(600);
      const third = await store.fetchAndLock(claimDefaults);
      expect(third.messages.map((m) => [m.id, m.retries, m.lastError])).toEqual([
        [a, 1, "HTTP 503"],
        [b, 0, undefined],
      ]);
    });

    it('with ordering "key" a message released with a delay holds back the later ones of its key', async () => {
      const store = await open();
      if (store === undefined) return;
      await commitMessages(store, [
        { key: "x", value: "x1" },
        { key: "x", value: "x2" },
        { key: "y", value: "y1" },
      ]);
      const keyed: ClaimOptions = { ...claimDefaults, ordering: "key" };
      const first = await store.fetchAndLock(keyed);
      expect(first.messages.map((m) => m.text())).toEqual(["x1", "y1"]);
      expect(await store.release(first.token, [first.messages[0]!.id], 400)).toBe(1);
      expect((await store.fetchAndLock(keyed)).messages).toEqual([]);
      await sleep(600);
      expect((await store.fetchAndLock(keyed)).messages.map((m) => m.text())).toEqual(["x1"]);
    });
  });
}
