/**
 * Node-side helpers of the runtime checks: run a binary from node_modules/.bin with a deadline,
 * and a loopback HTTP receiver that records what it is sent.
 */
import { spawn } from "node:child_process";
import { createServer, type IncomingHttpHeaders } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

/** The repository root. */
export const ROOT = fileURLToPath(new URL("../../", import.meta.url));

/** The path of an installed binary (deno, bun, tsx, ...). */
export function bin(name: string): string {
  return join(ROOT, "node_modules", ".bin", name);
}

/**
 * Environment for child runtimes: no update checks, no telemetry, a Deno cache outside the
 * tree that survives between runs (type-check results), and nothing that points at the network.
 */
export function runtimeEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return {
    ...process.env,
    DENO_NO_UPDATE_CHECK: "1",
    DENO_NO_PROMPT: "1",
    DENO_DIR: process.env.DENO_DIR ?? join(tmpdir(), "edge-outbox-deno-dir"),
    DO_NOT_TRACK: "1",
    BUN_DISABLE_TELEMETRY: "1",
    NO_COLOR: "1",
    ...extra,
  };
}

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  output: string;
}

/** Runs `command` to completion (killing it after `timeoutMs`); stdout and stderr interleaved. */
export function run(
  command: string,
  args: string[],
  options: { cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {},
): Promise<RunResult> {
  const { cwd = ROOT, env = runtimeEnv(), timeoutMs = 60_000 } = options;
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd, env, stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    child.stdout.on("data", (chunk) => {
      output += chunk;
    });
    child.stderr.on("data", (chunk) => {
      output += chunk;
    });
    const timer = setTimeout(() => {
      output += `\n[killed after ${timeoutMs} ms]`;
      child.kill("SIGKILL");
    }, timeoutMs);
    child.on("error", reject);
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, output });
    });
  });
}

/** One request a {@link Receiver} got. */
export interface Received {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
}

/** A loopback HTTP server on 127.0.0.1 that answers 204 and records every request. */
export interface Receiver {
  url: string;
  requests: Received[];
  close(): Promise<void>;
}

/** Starts a {@link Receiver} on an ephemeral port. */
export async function startReceiver(): Promise<Receiver> {
  const requests: Received[] = [];
  const server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on("data", (chunk: Buffer) => chunks.push(chunk));
    request.on("end", () => {
      requests.push({
        method: request.method ?? "",
        path: request.url ?? "",
        headers: request.headers,
        body: Buffer.concat(chunks).toString("utf8"),
      });
      response.writeHead(204).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** The subpath exports and the source file each one maps to (mirrors package.json and deno.json). */
export const SUBPATHS: Readonly<Record<string, string>> = {
  "edge-outbox": "mod.ts",
  "edge-outbox/libsql": "adapters/libsql.ts",
  "edge-outbox/http": "adapters/http.ts",
  "edge-outbox/qstash": "adapters/qstash.ts",
  "edge-outbox/memory": "adapters/memory.ts",
  "edge-outbox/postgres": "adapters/postgres.ts",
  "edge-outbox/d1": "adapters/d1.ts",
  "edge-outbox/queues": "adapters/queues.ts",
};

/** A whsec_ signing secret for the examples' httpSender (Standard Webhooks format). */
export function webhookSecret(): string {
  return `whsec_${Buffer.from(crypto.getRandomValues(new Uint8Array(24))).toString("base64")}`;
}

/** A long-running example server started by {@link startServer}. */
export interface ServerProcess {
  /** Base URL the server printed as `listening on <url>`, without a trailing slash. */
  url: string;
  /** Everything the process printed so far. */
  output(): string;
  /** Sends `signal` and resolves when the process has exited (SIGKILL after `timeoutMs`). */
  stop(signal?: NodeJS.Signals, timeoutMs?: number): Promise<RunResult>;
}

/** Spawns a server and waits until it prints `listening on <url>`. */
export function startServer(
  command: string,
  args: string[],
  options: { cwd: string; env: NodeJS.ProcessEnv; timeoutMs?: number },
): Promise<ServerProcess> {
  const { cwd, env, timeoutMs = 30_000 } = options;
  const child = spawn(command, args, { cwd, env, stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  const exited = new Promise<RunResult>((resolve) => {
    child.on("close", (code, signal) => resolve({ code, signal, output }));
  });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`no "listening on" within ${timeoutMs} ms:\n${output}`));
    }, timeoutMs);
    const onData = (chunk: Buffer) => {
      output += chunk;
      const match = /listening on (http:\/\/\S+)/.exec(output);
      if (!match) return;
      clearTimeout(timer);
      resolve({
        url: match[1]!.replace(/\/$/, ""),
        output: () => output,
        stop(signal = "SIGTERM", stopTimeoutMs = 10_000) {
          const killer = setTimeout(() => child.kill("SIGKILL"), stopTimeoutMs);
          child.kill(signal);
          return exited.finally(() => clearTimeout(killer));
        },
      });
    };
    child.stdout.on("data", onData);
    child.stderr.on("data", (chunk: Buffer) => {
      output += chunk;
    });
    child.on("error", reject);
    void exited.then((result) => {
      clearTimeout(timer);
      reject(new Error(`exited (${result.code ?? result.signal}) before listening:\n${output}`));
    });
  });
}
