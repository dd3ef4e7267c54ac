/** Temporary libSQL databases and a loopback receiver for the libSQL store's tests. */
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { type Client, type Config, createClient } from "@libsql/client";
import { LibsqlStore, type LibsqlStoreOptions } from "../../adapters/libsql.ts";

/** A temp directory for database files, removed by `cleanup`. */
export function tempDir(): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), "edge-outbox-libsql-"));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

let counter = 0;

/** The row id inside a message id (`msg_<namespace>_<row>`), for SQL run by hand. */
export function rowId(id: string): string {
  return id.slice(id.lastIndexOf("_") + 1);
}

/** A fresh database file path in `dir`. */
export function dbPath(dir: string): string {
  return join(dir, `db-${++counter}.db`);
}

/** A migrated store on a new client for `url`. */
export async function openStore(
  url: string,
  options: LibsqlStoreOptions = {},
  config: Partial<Config> = {},
): Promise<{ client: Client; store: LibsqlStore; close: () => Promise<void> }> {
  const client = createClient({ url, ...config });
  const store = new LibsqlStore(client, options);
  await store.migrate();
  return { client, store, close: async () => client.close() };
}

/**
 * A loopback HTTP receiver: every POST body is a JSON array of `{ id, value }`; it records
 * each delivery (duplicates included) and answers 200 after `delayMs`. `answering` holds the
 * relays (header `x-relay`) whose batch is recorded but not yet answered: killing one of them
 * kills it mid-batch.
 */
export async function startReceiver(delayMs = 0): Promise<{
  url: string;
  deliveries: { id: string; value: string; relay: string }[];
  answering: Set<string>;
  close: () => Promise<void>;
}> {
  const deliveries: { id: string; value: string; relay: string }[] = [];
  const answering = new Set<string>();
  const server: Server = createServer((request, response) => {
    let body = "";
    request.setEncoding("utf8");
    request.on("data", (chunk: string) => {
      body += chunk;
    });
    request.on("end", () => {
      const relay = String(request.headers["x-relay"] ?? "");
      for (const item of JSON.parse(body) as { id: string; value: string }[]) {
        deliveries.push({ ...item, relay });
      }
      answering.add(relay);
      setTimeout(() => {
        answering.delete(relay);
        response.end("ok");
      }, delayMs);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/`,
    deliveries,
    answering,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

const ROOT = fileURLToPath(new URL("../../", import.meta.url));

/**
 * Runs `test/libsql/fixtures/<script>` in a child Node process to its end (killed after
 * `timeout` ms): how a test survives code that may abort the process (the native driver on
 * invalid UTF-8) and runs code under another process's clock.
 */
export function runFixture(
  script: string,
  args: string[],
  timeout = 60_000,
): Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(
      process.execPath,
      ["--import", "tsx", join(ROOT, "test/libsql/fixtures", script), ...args],
      {
        cwd: ROOT,
        stdio: ["ignore", "pipe", "pipe"],
      },
    );
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
      stdout += chunk;
    });
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => {
      stderr += chunk;
    });
    const timer = setTimeout(() => child.kill("SIGKILL"), timeout);
    child.on("exit", (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}
