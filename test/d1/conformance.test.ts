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

describeStoreConformance("D1Store (Miniflare D1)", async () => ({ store: await migratedStore(d1.db) }));
describeStoreConformance("D1Store (Miniflare D1, retention keep)", async () => ({
  store: await migratedStore(d1.db, { retention: { sent: "keep", keepFor: 3_600_000 } }),
}));
