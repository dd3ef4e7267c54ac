/**
 * README's Quick start, run as written: the secret command, the receiver and the app are taken
 * from README.md's code blocks, with only the package imports pointed at this repository's
 * sources and port 3000 swapped for a free one. Real processes (tsx), a real libSQL file,
 * a real receiver on 127.0.0.1.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { bin, ROOT, run, runtimeEnv, SUBPATHS } from "../runtimes/support.ts";
import { waitFor } from "../support/senders.ts";

/** The fenced code blocks of README's "## Quick start" section, in order. */
function quickStartBlocks(): { lang: string; code: string }[] {
  const readme = readFileSync(join(ROOT, "README.md"), "utf8");
  const start = readme.indexOf("\n## Quick start\n");
  const end = readme.indexOf("\n## ", start + 1);
  expect(start, "README has a Quick start section").toBeGreaterThan(0);
  const section = readme.slice(start, end);
  return [...section.matchAll(/```(\w+)\n([\s\S]*?)```/g)].map((m) => ({ lang: m[1]!, code: m[2]! }));
}

function localised(code: string, port: number): string {
  let out = code.replaceAll("3000", String(port));
  for (const [specifier, file] of Object.entries(SUBPATHS)) {
    out = out.replaceAll(`from "${specifier}"`, `from ${JSON.stringify(join(ROOT, file))}`);
  }
  return out;
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

// Inside the repository (.tmp/ is ignored by git) so "@libsql/client" resolves from node_modules.
mkdirSync(join(ROOT, ".tmp"), { recursive: true });
const dir = mkdtempSync(join(ROOT, ".tmp", "quickstart-"));
let receiver: ChildProcess | undefined;
afterAll(() => {
  if (receiver && receiver.exitCode === null) receiver.kill("SIGKILL");
  rmSync(dir, { recursive: true, force: true });
});

describe("README Quick start", { timeout: 120_000 }, () => {
  it("runs as pasted: the secret command, the receiver, and the app that delivers one order", async () => {
    const blocks = quickStartBlocks();
    const shell = blocks.find((b) => b.lang === "sh" && b.code.includes("WEBHOOK_SECRET"));
    const receiverCode = blocks.find((b) => b.code.startsWith("// receiver.ts"));
    const appCode = blocks.find((b) => b.code.startsWith("// app.ts"));
    expect(shell && receiverCode && appCode, "secret command, receiver.ts and app.ts blocks").toBeTruthy();

    const secretRun = await run("bash", ["-c", `${shell!.code}\nprintf %s "$WEBHOOK_SECRET"`], { cwd: dir });
    expect(secretRun.code).toBe(0);
    const secret = secretRun.output.trim();
    expect(secret).toMatch(/^whsec_[A-Za-z0-9+/]{43}=$/);

    const port = await freePort();
    writeFileSync(join(dir, "package.json"), JSON.stringify({ type: "module" }));
    writeFileSync(join(dir, "receiver.ts"), localised(receiverCode!.code, port));
    writeFileSync(join(dir, "app.ts"), localised(appCode!.code, port));
    const env = runtimeEnv({ WEBHOOK_SECRET: secret });

    let received = "";
    receiver = spawn(bin("tsx"), ["receiver.ts"], { cwd: dir, env, stdio: ["ignore", "pipe", "pipe"] });
    receiver.stdout!.on("data", (chunk) => {
      received += chunk;
    });
    receiver.stderr!.on("data", (chunk) => {
      received += chunk;
    });
    await waitFor(async () => {
      try {
        // Unsigned: the receiver must refuse it (and so proves it is up).
        return (await fetch(`http://127.0.0.1:${port}/`, { method: "POST", body: "x" })).status === 401;
      } catch {
        return false;
      }
    }, 60_000);
    expect(received).toContain("refused:");

    const app = await run(bin("tsx"), ["app.ts"], { cwd: dir, env, timeoutMs: 60_000 });
    expect(app.code, app.output).toBe(0);
    expect(app.output).toMatch(/sent: 1/);
    await waitFor(() => /received \S+ \{/.test(received), 20_000).catch(() => {
      throw new Error(`receiver output:\n${received}\napp output:\n${app.output}`);
    });
    expect(received).toContain("order.created");
    expect(received).toContain("total: 4200");

    // The orders table and the outbox live in the one libSQL file the app made.
    const check = await run(
      "node",
      [
        "-e",
        `const { createClient } = require(${JSON.stringify(join(ROOT, "node_modules/@libsql/client"))});
         const c = createClient({ url: "file:app.db" });
         c.execute("SELECT count(*) AS n FROM orders").then((r) => { console.log("orders", r.rows[0].n); c.close(); });`,
      ],
      { cwd: dir },
    );
    expect(check.output.trim()).toBe("orders 1");

    // Without the secret the app refuses to start instead of sending unsigned requests.
    const { WEBHOOK_SECRET: _, ...withoutSecret } = env;
    const unsigned = await run(bin("tsx"), ["app.ts"], { cwd: dir, env: withoutSecret, timeoutMs: 60_000 });
    expect(unsigned.code).not.toBe(0);
    expect(unsigned.output).toContain("secret is required");
  });
});
