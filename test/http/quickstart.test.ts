/**
 * README's Quick start, run as written: the secret command, the receiver and the app are taken
 * from README.md's code blocks, with only the package imports pointed at this repository's
 * sources and port 3000 swapped for a free one. Real processes (tsx), a real libSQL file,
 * a real receiver on 127.0.0.1; then what a hostile or unlucky sender does to that receiver.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { createClient } from "@libsql/client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { httpSender } from "../../adapters/http.ts";
import { LibsqlStore } from "../../adapters/libsql.ts";
import { Outbox } from "../../mod.ts";
import { bin, ROOT, run, runtimeEnv, SUBPATHS } from "../runtimes/support.ts";
import { waitFor } from "../support/senders.ts";
import { upload } from "./upload.ts";

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

/** Peak resident memory (kB) of process `pid` so far, or undefined off Linux. */
function peakRssKb(pid: number): number | undefined {
  try {
    const match = /VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return match ? Number(match[1]) : undefined;
  } catch {
    return undefined;
  }
}

/** Whether any process of group `pgid` is still alive. */
function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch {
    return false;
  }
}

// Inside the repository (.tmp/ is ignored by git) so "@libsql/client" resolves from node_modules.
mkdirSync(join(ROOT, ".tmp"), { recursive: true });
const dir = mkdtempSync(join(ROOT, ".tmp", "quickstart-"));
let receiver: ChildProcess | undefined;
let received = "";
let port = 0;
let secret = "";
let env: NodeJS.ProcessEnv = {};
let appCode = "";

beforeAll(async () => {
  const blocks = quickStartBlocks();
  const shell = blocks.find((b) => b.lang === "sh" && b.code.includes("WEBHOOK_SECRET"));
  const receiverCode = blocks.find((b) => b.code.startsWith("// receiver.ts"));
  const app = blocks.find((b) => b.code.startsWith("// app.ts"));
  expect(shell && receiverCode && app, "secret command, receiver.ts and app.ts blocks").toBeTruthy();
  appCode = app!.code;

  const secretRun = await run("bash", ["-c", `${shell!.code}\nprintf %s "$WEBHOOK_SECRET"`], { cwd: dir });
  expect(secretRun.code).toBe(0);
  secret = secretRun.output.trim();
  expect(secret).toMatch(/^whsec_[A-Za-z0-9+/]{43}=$/);

  port = await freePort();
  writeFileSync(join(dir, "package.json"), JSON.stringify({ type: "module" }));
  writeFileSync(join(dir, "receiver.ts"), localised(receiverCode!.code, port));
  writeFileSync(join(dir, "app.ts"), localised(appCode, port));
  env = runtimeEnv({ WEBHOOK_SECRET: secret });

  // One process (tsx as a loader, not the tsx CLI, which runs node as its child), in its own
  // process group: afterAll kills the group, so no receiver outlives the test.
  receiver = spawn(process.execPath, ["--import", "tsx", "receiver.ts"], {
    cwd: dir,
    env,
    stdio: ["ignore", "pipe", "pipe"],
    detached: true,
  });
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
  // The 401 can arrive before the receiver's stderr line does.
  await waitFor(() => received.includes("refused:"), 10_000);
}, 120_000);

afterAll(async () => {
  const pgid = receiver?.pid;
  if (receiver && pgid !== undefined) {
    const exited = new Promise((resolve) => {
      if (receiver!.exitCode !== null || receiver!.signalCode !== null) resolve(undefined);
      else receiver!.once("exit", resolve);
    });
    if (groupAlive(pgid)) process.kill(-pgid, "SIGKILL");
    await exited; // reaped: a zombie would still count as alive
    await waitFor(() => !groupAlive(pgid), 10_000);
  }
  rmSync(dir, { recursive: true, force: true });
});

describe("README Quick start", { timeout: 120_000 }, () => {
  it("runs as pasted: the secret command, the receiver, and the app that delivers one order", async () => {
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

  it("the receiver refuses a 64 MiB unauthenticated upload without buffering it", async () => {
    const before = peakRssKb(receiver!.pid!);
    const { status } = await upload(`http://127.0.0.1:${port}/hooks`, {}, 64);
    expect([401, 0]).toContain(status);
    const after = peakRssKb(receiver!.pid!);
    // Reading it whole (twice: chunks, then one Buffer) would add about 128 MiB.
    if (before !== undefined && after !== undefined) expect(after - before).toBeLessThan(32 * 1024);
  });

  it("the receiver answers 500 (retried), not 401 (dead), to an authentic body that is not JSON", async () => {
    const client = createClient({ url: `file:${join(dir, "csv.db")}` });
    try {
      const store = new LibsqlStore(client);
      await store.migrate();
      const sender = httpSender({ url: `http://127.0.0.1:${port}/hooks`, secret });
      const outbox = new Outbox(store, sender, { maxRetries: 5, onError: () => {} });
      await store.withTransaction((tx) => outbox.addMessage(tx, { key: "csv", value: "id,total\n1,4200" }));
      expect(await outbox.tick()).toMatchObject({ sent: 0, failed: 1, dead: 0 });
      expect(await store.listDead()).toEqual([]);
      await waitFor(() => received.includes("failed:"), 10_000);
    } finally {
      client.close();
    }
  });
});
