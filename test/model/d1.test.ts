/**
 * The model-based tests of D1Store on Miniflare's real D1 (workerd's SQLite behind the
 * binding), in process: the store's calls go over Miniflare's proxy into workerd, so no driver
 * here can abort this process. One Miniflare for every run, a fresh table per run. Leases are
 * on workerd's clock, not this process's (`ownClock`: relays whose clocks run off are tried).
 * Each call is a round trip to workerd, so a run takes longer than on a local file: fewer runs
 * in the same time (they are counted and printed); `npm run fuzz` runs many more.
 */
import { afterAll, vi } from "vitest";
import { migratedStore, sharedD1, stopSharedD1 } from "../d1/helpers.ts";
import { runStoreModel } from "./harness.ts";
import type { ModelStoreFactory } from "./store-run.ts";

// Starting workerd takes a while on a loaded machine.
vi.setConfig({ hookTimeout: 120_000 });
afterAll(stopSharedD1);

const d1Store: ModelStoreFactory = async ({ keepSent }) => {
  const { db } = await sharedD1();
  const store = await migratedStore(db, keepSent ? { retention: { sent: "keep", keepFor: 3_600_000 } } : {});
  return {
    store,
    purgeSent: keepSent ? (olderThan) => store.purgeSent(olderThan) : undefined,
    close: async () => {},
  };
};

runStoreModel("D1Store (Miniflare D1)", d1Store, "test/model/d1.test.ts", {}, { ownClock: true, keepsNewestRow: true });
