/**
 * The demo newcomers run first (`npm run demo`), run here as a child process in its quick mode:
 * it must exit 0 and account for every order (delivered once, or the one dead message).
 */
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const root = fileURLToPath(new URL("..", import.meta.url));

function runDemo(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--import", "tsx", "demo/main.ts", ...args], {
      cwd: root,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk) => {
      stdout += chunk;
    });
    child.stderr.on("data", (chunk) => {
      stderr += chunk;
    });
    const timer = setTimeout(() => child.kill("SIGKILL"), 18_000);
    child.on("error", reject);
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

describe("demo", () => {
  it("runs in quick mode, exits 0 and prints a sane summary", { timeout: 20_000 }, async () => {
    const { code, stdout, stderr } = await runDemo(["--quick"]);
    expect(stderr, stdout).not.toContain("PROBLEM");
    expect(code, `${stdout}\n${stderr}`).toBe(0);
    expect(stdout).toMatch(/orders written\s+40\b/);
    expect(stdout).toMatch(/messages delivered\s+39\b/);
    expect(stdout).toMatch(/dead messages\s+1\b/);
    expect(stdout).toMatch(/key order:13\b/);
    expect(stdout).toMatch(/duplicates received\s+0\b/);
    expect(stdout).toMatch(/bad signatures\s+0\b/);
    // Not a TTY here: plain progress lines, no carriage returns.
    expect(stdout).toMatch(/orders \d+\/40 \| sent \d+/);
    expect(stdout).not.toContain("\r");
  });

  it("refuses a bad --orders value with exit code 2", async () => {
    const { code, stderr } = await runDemo(["--orders", "0"]);
    expect(code).toBe(2);
    expect(stderr).toContain("--orders must be an integer");
  });
});
