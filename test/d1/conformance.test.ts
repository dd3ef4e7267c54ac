import { describeStoreConformance } from "../conformance/store-conformance.ts";
import { d1ForFile, migratedStore } from "./helpers.ts";

const d1 = d1ForFile();

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
