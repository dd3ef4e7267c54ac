/** Starting benchmark helpers as child processes running TypeScript through tsx. */
import { type ChildProcess, spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

/** Absolute path of a file next to this one's parent (bench/). */
export function benchFile(relative: string): string {
  return fileURLToPath(new URL(`../${relative}`, import.meta.url));
}

/**
 * Spawns `node [nodeFlags] --import tsx <file> [args]` and resolves with the child and the
 * first line it prints as JSON (its handshake). Rejects if it exits first.
 */
export function spawnTs(
  file: string,
  args: string[] = [],
  nodeFlags: string[] = [],
): Promise<{ child: ChildProcess; hello: unknown; lines: AsyncIterableIterator<string> }> {
  const child = spawn(process.execPath, [...nodeFlags, "--import", "tsx", file, ...args], {
    stdio: ["pipe", "pipe", "inherit"],
  });
  const lines = createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
  return new Promise((resolve, reject) => {
    child.once("exit", (code) => reject(new Error(`${file} exited with ${code} before its handshake`)));
    lines.next().then(
      (first) => {
        if (first.done) return;
        resolve({ child, hello: JSON.parse(first.value), lines });
      },
      (error: unknown) => reject(error),
    );
  });
}

/** Reads the next JSON line a child prints. */
export async function nextJson<T>(lines: AsyncIterableIterator<string>): Promise<T> {
  const line = await lines.next();
  if (line.done) throw new Error("child closed its output");
  return JSON.parse(line.value) as T;
}

/** Sends SIGTERM and waits for the exit. */
export function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once("exit", () => resolve());
    child.kill("SIGTERM");
  });
}
