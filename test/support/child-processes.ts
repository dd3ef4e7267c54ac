/**
 * Child processes for the crash and concurrency suites: a TypeScript fixture run with
 * `node --import tsx`, its output collected, and every child still alive SIGKILLed after each
 * test (only our own, by pid), so a failed test never leaves a relay writing to the next one's
 * database.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach } from "vitest";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));

/** A running fixture: its process, everything it printed so far, and its exit code. */
export interface Child {
  process: ChildProcess;
  output: string;
  exited: Promise<number | null>;
}

/**
 * Registers the afterEach clean-up and returns `run(script, args)`, which starts
 * `<fixturesDir>/<script>` (fixturesDir relative to the repository root).
 */
export function childProcesses(fixturesDir: string): (script: string, args: string[]) => Child {
  const children: Child[] = [];
  afterEach(() => {
    for (const child of children.splice(0)) {
      if (child.process.exitCode === null && child.process.signalCode === null) child.process.kill("SIGKILL");
    }
  });
  return (script, args) => {
    const spawned = spawn(process.execPath, ["--import", "tsx", join(ROOT, fixturesDir, script), ...args], {
      cwd: ROOT,
      stdio: ["pipe", "pipe", "pipe"],
    });
    const child: Child = {
      process: spawned,
      output: "",
      exited: new Promise((resolve) => spawned.on("exit", (code) => resolve(code))),
    };
    const collect = (chunk: string) => {
      child.output += chunk;
    };
    spawned.stdout?.setEncoding("utf8").on("data", collect);
    spawned.stderr?.setEncoding("utf8").on("data", collect);
    children.push(child);
    return child;
  };
}

/** How many times each value occurs: a count above 1 is a duplicate delivery. */
export function counts(values: string[]): Map<string, number> {
  const seen = new Map<string, number>();
  for (const value of values) seen.set(value, (seen.get(value) ?? 0) + 1);
  return seen;
}
