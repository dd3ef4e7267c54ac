/** The shared store conformance suite on every driver: the real server (when set) and PGlite. */
import { afterAll, beforeAll, vi } from "vitest";
import { describeStoreConformance } from "../conformance/store-conformance.ts";
import { type DriverName, driversToRun, migratedStore, openClient, serverDatabase } from "./helpers.ts";

// PGlite and child processes need CPU a loaded machine may not have.
vi.setConfig({ testTimeout: 120_000, hookTimeout: 120_000 });

const url = serverDatabase("conformance");

for (const kind of driversToRun()) {
  let client: Awaited<ReturnType<typeof openClient>> | undefined;
  beforeAll(async () => {
    client = await openClient(kind as DriverName, kind === "PGlite" ? undefined : url());
  });
  afterAll(async () => {
    await client?.close();
  });
  describeStoreConformance(`PostgresStore (${kind})`, async () => ({
    store: await migratedStore(client!.db),
  }));
}
