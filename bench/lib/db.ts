/** Temporary libSQL file databases for benchmarks. */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Client, createClient } from "@libsql/client";

/** A fresh directory under the OS temp dir; removed by the returned `cleanup`. */
export function tempDir(prefix = "edge-outbox-bench-"): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

let counter = 0;

/** Opens a new, empty `file:` database in `dir`. Close it with `client.close()`. */
export function openDb(dir: string, name = "bench"): { client: Client; path: string } {
  const path = join(dir, `${name}-${process.pid}-${++counter}.db`);
  return { client: createClient({ url: `file:${path}` }), path };
}

/** Opens an existing database file (another connection to the same file). */
export function connect(path: string): Client {
  return createClient({ url: `file:${path}` });
}
