/**
 * D1Store against the store conformance suite, on Miniflare's real D1 (workerd), with sent rows
 * deleted (the default) and kept.
 */
import { afterAll, beforeAll } from "vitest";
import { describeStoreConformance } from "../conformance/store-conformance.ts";
import { type D1Fixture, migratedStore, startD1 } from "./helpers.ts";

let d1: D1Fixture;
beforeAll(async () => {
  d1 = await startD1();
}, 60_000);
afterAll(async () => {
  await d1?.mf.dispose();
});

// Each call crosses from Node into workerd: under load a round trip takes hundreds of ms, so the
// windows in which a message must NOT be claimable are 2 s, and a test may take a minute. Every
// test gets a store on a table of its own: requests a timed-out test left running touch no
// other test's rows.
const timing = { scale: 5, testTimeout: 60_000 };

describeStoreConformance(
  "D1Store (Miniflare D1)",
  async () => ({ store: await migratedStore(d1.db) }),
  timing,
);
describeStoreConformance(
  "D1Store (Miniflare D1, retention keep)",
  async () => ({ store: await migratedStore(d1.db, { retention: { sent: "keep", keepFor: 3_600_000 } }) }),
  timing,
);
