/**
 * The npm package as users get it: built with tsup, packed with `npm pack`, checked by publint
 * and arethetypeswrong, installed from the tarball into a temporary project (offline: only the
 * npm cache and the repository's node_modules), then every subpath imported in Node, Bun and
 * Deno, and type-checked by a consumer under NodeNext and bundler resolution. Each runtime must
 * get its build of edge-outbox/http: Node the node:http transport (the `node` condition), Bun,
 * Deno, workerd (bundled as wrangler does, run in Miniflare) and other web bundles fetch.
 */
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { build } from "esbuild";
import { Miniflare } from "miniflare";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bin, ROOT, run, runtimeEnv, SUBPATHS } from "./runtimes/support.ts";

const pkg = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8"));
const deno = JSON.parse(readFileSync(join(ROOT, "deno.json"), "utf8"));
const PEERS = ["@libsql/client", "@upstash/qstash"];

/** What each subpath must export at runtime. */
const EXPECTED: Record<string, string[]> = {
  "edge-outbox": ["Outbox", "cronHandler", "OutboxError", "ValidationError", "SendStatus"],
  "edge-outbox/libsql": ["LibsqlStore"],
  "edge-outbox/http": ["httpSender", "verifyWebhook"],
  "edge-outbox/qstash": ["qstashSender"],
  "edge-outbox/memory": ["MemoryStore"],
  "edge-outbox/d1": ["D1Store"],
  "edge-outbox/queues": ["queueSender", "readQueuedMessage"],
};

// Imports every subpath, checks its exports, and relays one message through the built core, so
// that a broken chunk or a missing external fails here. Plain JS: runs as is in all three runtimes.
const CHECK = `
const expected = ${JSON.stringify(EXPECTED)};
const modules = {};
for (const [subpath, names] of Object.entries(expected)) {
  modules[subpath] = await import(subpath);
  for (const name of names) {
    if (modules[subpath][name] === undefined) throw new Error(subpath + " does not export " + name);
  }
}
const { Outbox, ValidationError } = modules["edge-outbox"];
const { MemoryStore } = modules["edge-outbox/memory"];
const store = new MemoryStore();
const sent = [];
const outbox = new Outbox(store, { async send(ms) { for (const m of ms) { sent.push(m.key); m.markAsSent(); } return ms; } });
await store.transaction((tx) => outbox.addMessage(tx, { key: "k", value: "v" }));
const result = await outbox.tick();
// One copy of the core: an error thrown by an adapter is an instance of the core's class.
let shared = false;
try { await store.addMessage({}, {}); } catch (error) { shared = error instanceof ValidationError; }
// Which build of edge-outbox/http this runtime resolved: its httpSender names its transport.
const transport = modules["edge-outbox/http"].httpSender({
  url: "http://127.0.0.1:9/hook",
  secret: "whsec_" + btoa("a 32-byte secret for the check!!"),
}).transport;
console.log(JSON.stringify({ subpaths: Object.keys(modules).length, sent, tickSent: result.sent, shared, transport }));
`;

// A Worker that reports which build of edge-outbox/http it was bundled with.
const WORKER = `
import { httpSender } from "edge-outbox/http";
export default {
  async fetch() {
    const sender = httpSender({ url: "http://127.0.0.1:9/hook", secret: "whsec_" + btoa("a 32-byte secret for the check!!") });
    return Response.json({ transport: sender.transport });
  },
};
`;

/**
 * Conditions bundlers use for runtimes without `node:*` (wrangler for workerd; Next.js and Vercel
 * for the edge runtime), in their order: each must get the fetch build.
 */
const WEB_CONDITIONS: Record<string, string[]> = {
  workerd: ["workerd", "worker", "browser"],
  "edge-light": ["edge-light", "worker", "browser"],
  browser: ["browser"],
};

const CONSUMER = `
import { cronHandler, Outbox, type TickResult } from "edge-outbox";
import { httpSender } from "edge-outbox/http";
import { LibsqlStore } from "edge-outbox/libsql";
import { MemoryStore } from "edge-outbox/memory";
import { qstashSender } from "edge-outbox/qstash";
const outbox = new Outbox(new MemoryStore(), httpSender({ url: "https://example.com/hook", unsigned: true }));
const handler: (request: Request) => Promise<Response> = cronHandler(outbox, { secret: "s" });
const result: Promise<TickResult> = outbox.tick({ budgetMs: 1 });
export { handler, result, LibsqlStore, qstashSender };
`;

// Generous: tsup, attw and tsc are CPU-bound on a busy 2-core machine.
describe("the packed npm package", { timeout: 120_000 }, () => {
  const work = mkdtempSync(join(tmpdir(), "edge-outbox-package-"));
  const staging = join(work, "staging");
  const project = join(work, "project");
  let tarball = "";

  beforeAll(async () => {
    mkdirSync(staging);
    // Built outside the tree, so `npm test` never rewrites dist/ under a developer's feet.
    const built = await run(bin("tsup"), ["--out-dir", join(staging, "dist")], { timeoutMs: 240_000 });
    expect(built.code, built.output).toBe(0);
    cpSync(join(ROOT, "package.json"), join(staging, "package.json"));
    for (const entry of pkg.files as string[]) {
      // npm pack skips listed files that do not exist; so does this.
      if (entry !== "dist" && existsSync(join(ROOT, entry)))
        cpSync(join(ROOT, entry), join(staging, entry), { recursive: true, force: true });
    }
    const packed = await run("npm", ["pack", "--silent", "--pack-destination", work], { cwd: staging });
    expect(packed.code, packed.output).toBe(0);
    tarball = join(work, packed.output.trim().split("\n").at(-1)!);

    mkdirSync(project);
    writeFileSync(
      join(project, "package.json"),
      JSON.stringify({
        name: "consumer",
        private: true,
        type: "module",
        // The one dependency taken from the repository's own install: `--offline` can then
        // resolve it on a machine whose npm cache never saw its registry entry (npm ci
        // fetches tarballs, not registry entries).
        dependencies: {
          "edge-outbox": `file:${tarball}`,
          "@opentelemetry/api": `file:${join(ROOT, "node_modules/@opentelemetry/api")}`,
        },
      }),
    );
    const installed = await run(
      "npm",
      ["install", "--offline", "--no-audit", "--no-fund", "--ignore-scripts", "--no-package-lock"],
      { cwd: project, timeoutMs: 120_000 },
    );
    expect(installed.code, installed.output).toBe(0);
    // The optional peers, linked from the repository (their own dependencies resolve there).
    mkdirSync(join(project, "node_modules/@libsql"), { recursive: true });
    mkdirSync(join(project, "node_modules/@upstash"), { recursive: true });
    for (const peer of PEERS)
      symlinkSync(join(ROOT, "node_modules", peer), join(project, "node_modules", peer), "dir");
    writeFileSync(join(project, "check.mjs"), CHECK);
    writeFileSync(join(project, "worker.mjs"), WORKER);
  }, 360_000);

  afterAll(() => rmSync(work, { recursive: true, force: true }));

  it("gives Node the node:http build of edge-outbox/http and every other runtime the fetch build", () => {
    const conditions = Object.keys(pkg.exports["./http"]);
    expect(conditions[0]).toBe("types");
    expect(conditions.at(-1)).toBe("default");
    // Deno and Bun also match "node", and some worker bundlers add it: theirs must come first.
    for (const web of ["workerd", "worker", "edge-light", "deno", "bun", "browser"]) {
      expect(conditions.indexOf(web), web).toBeGreaterThan(0);
      expect(conditions.indexOf(web), web).toBeLessThan(conditions.indexOf("node"));
      expect(pkg.exports["./http"][web]).toBe(pkg.exports["./http"].default);
    }
    expect(pkg.exports["./http"].node).toBe("./dist/http-node.js");
    expect(pkg.exports["./http"].default).toBe("./dist/http.js");
    // JSR (Deno) gets the sources of the fetch build.
    expect(deno.exports["./http"]).toBe("./adapters/http.ts");
  });

  it("exports every subpath, types first, the same in package.json and deno.json", () => {
    const subpaths = Object.keys(SUBPATHS).map((s) => s.replace(/^edge-outbox/, "."));
    expect(Object.keys(pkg.exports).filter((k) => k !== "./package.json")).toEqual(subpaths);
    for (const subpath of subpaths) {
      expect(Object.keys(pkg.exports[subpath])[0]).toBe("types");
      expect(deno.exports[subpath]).toBe(`./${SUBPATHS[subpath.replace(/^\./, "edge-outbox")]}`);
    }
    expect(deno.version).toBe(pkg.version);
  });

  it("ships only dist/, README and the manifest, one .js and one .d.ts per subpath", async () => {
    const listed = await run("tar", ["-tzf", tarball]);
    const files = listed.output.trim().split("\n");
    for (const file of files) expect(file).toMatch(/^package\/(dist\/|README\.md$|LICENSE$|package\.json$)/);
    for (const subpath of Object.keys(pkg.exports)) {
      if (subpath === "./package.json") continue;
      expect(files).toContain(`package/${pkg.exports[subpath].default.slice(2)}`);
      expect(files).toContain(`package/${pkg.exports[subpath].types.slice(2)}`);
    }
    expect(files).toContain(`package/${pkg.exports["./http"].node.slice(2)}`);
  });

  it("is clean under publint --strict and arethetypeswrong (ESM only)", async () => {
    const lint = await run(bin("publint"), ["--strict", staging]);
    expect(lint.code, lint.output).toBe(0);
    const types = await run(bin("attw"), [tarball, "--profile", "esm-only", "--format", "table-flipped"]);
    expect(types.code, types.output).toBe(0);
  });

  const expectedCheck = {
    subpaths: Object.keys(EXPECTED).length,
    sent: ["k"],
    tickSent: 1,
    shared: true,
    transport: "fetch",
  };
  const lastJsonLine = (output: string) => JSON.parse(output.trim().split("\n").at(-1)!);

  it("imports every subpath in Node", async () => {
    const result = await run("node", ["check.mjs"], { cwd: project });
    expect(result.code, result.output).toBe(0);
    expect(lastJsonLine(result.output)).toEqual({ ...expectedCheck, transport: "node:http" });
  });

  /** worker.mjs bundled from the installed package with `conditions`, as a runtime's bundler would. */
  async function bundleWorker(conditions: string[]): Promise<string> {
    const result = await build({
      entryPoints: [join(project, "worker.mjs")],
      absWorkingDir: project,
      bundle: true,
      write: false,
      format: "esm",
      platform: "browser",
      target: "es2022",
      conditions,
      logLevel: "silent",
    });
    return result.outputFiles[0]!.text;
  }

  it.each(Object.entries(WEB_CONDITIONS))(
    "bundles the fetch build for %s (no node:* in the bundle)",
    async (_, conditions) => {
      const code = await bundleWorker(conditions);
      expect(code).not.toMatch(/node:http|from "http"|from 'http'/);
      expect(code).toContain("fetchTransport");
    },
  );

  it("runs the fetch build in workerd (Miniflare), bundled as wrangler does", async () => {
    const script = await bundleWorker(WEB_CONDITIONS.workerd!);
    const mf = new Miniflare({
      modules: true,
      script,
      compatibilityDate: "2025-01-01",
    });
    try {
      const response = await mf.dispatchFetch("http://worker/");
      expect(await response.json()).toEqual({ transport: "fetch" });
    } finally {
      await mf.dispose();
    }
  });

  it("imports every subpath in Bun", async () => {
    const result = await run(bin("bun"), ["--no-install", "check.mjs"], { cwd: project });
    expect(result.code, result.output).toBe(0);
    expect(lastJsonLine(result.output)).toEqual(expectedCheck);
  });

  it("imports every subpath in Deno (npm package from node_modules)", async () => {
    const result = await run(
      bin("deno"),
      ["run", "--node-modules-dir=manual", "--no-lock", "-A", "check.mjs"],
      {
        cwd: project,
        env: runtimeEnv(),
      },
    );
    expect(result.code, result.output).toBe(0);
    expect(lastJsonLine(result.output)).toEqual(expectedCheck);
  });

  it("type-checks for a consumer under NodeNext and bundler resolution", async () => {
    writeFileSync(join(project, "consumer.ts"), CONSUMER);
    const modes = [
      ["NodeNext", "NodeNext"],
      ["ESNext", "bundler"],
    ] as const;
    const results = await Promise.all(
      modes.map(([module, moduleResolution]) => {
        const config = `tsconfig.${moduleResolution.toLowerCase()}.json`;
        // Under NodeNext with skipLibCheck off, the package's own .d.ts files must resolve and
        // check (once is enough: it is the slow part). ESNext.Disposable (or @types/node) is
        // needed: Outbox declares [Symbol.asyncDispose].
        const compilerOptions = {
          module,
          moduleResolution,
          target: "ES2022",
          strict: true,
          noEmit: true,
          skipLibCheck: moduleResolution === "bundler",
          lib: ["ES2023", "DOM", "ESNext.Disposable"],
          types: [],
        };
        writeFileSync(join(project, config), JSON.stringify({ compilerOptions, files: ["consumer.ts"] }));
        return run(bin("tsc"), ["-p", config], { cwd: project });
      }),
    );
    results.forEach((result, i) => {
      expect(result.code, `${modes[i]![1]}: ${result.output}`).toBe(0);
    });
    expect(readdirSync(join(project, "node_modules/edge-outbox/dist")).some((f) => f.endsWith(".d.ts"))).toBe(
      true,
    );
  });
});
