/** The Node example on PostgreSQL: DATABASE_URL=postgres://... (a database of this file's own). */
import { join } from "node:path";
import { describe, it, vi } from "vitest";
import { checkServerExample } from "../runtimes/examples.ts";
import { bin, ROOT } from "../runtimes/support.ts";
import { PG_URL, serverDatabase } from "./helpers.ts";

// PGlite and child processes need CPU a loaded machine may not have.
vi.setConfig({ testTimeout: 120_000, hookTimeout: 120_000 });

const url = serverDatabase("example");

describe.runIf(PG_URL !== undefined)("the Node example on PostgreSQL", { timeout: 90_000 }, () => {
  it("relays orders at once by wake() and stops gracefully on SIGTERM", async () => {
    await checkServerExample(bin("tsx"), ["server.ts"], join(ROOT, "examples/node"), { DATABASE_URL: url() });
  });
});
