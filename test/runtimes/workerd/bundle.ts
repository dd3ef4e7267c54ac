/**
 * Worker scripts for Miniflare: bundled with esbuild as wrangler would, `edge-outbox` and its
 * subpaths resolved to this repository's sources (as an installed package would resolve them).
 */
import { join } from "node:path";
import { build, type Plugin } from "esbuild";
import { ROOT, SUBPATHS } from "../support.ts";

const sources: Plugin = {
  name: "edge-outbox-sources",
  setup(esbuild) {
    esbuild.onResolve({ filter: /^edge-outbox(\/|$)/ }, (args) => {
      const file = SUBPATHS[args.path];
      if (file === undefined) return { errors: [{ text: `no subpath export ${args.path}` }] };
      return { path: join(ROOT, file) };
    });
  },
};

/** One ES module of `entry` (relative to the repository root) and everything it imports. */
export async function bundle(entry: string): Promise<string> {
  const result = await build({
    entryPoints: [join(ROOT, entry)],
    bundle: true,
    write: false,
    format: "esm",
    platform: "browser",
    target: "es2022",
    conditions: ["workerd", "worker", "browser"],
    plugins: [sources],
    logLevel: "silent",
  });
  return result.outputFiles[0]!.text;
}

/**
 * The `scheduled()` of Miniflare's Fetcher, typed by hand: Miniflare's own type needs
 * @cloudflare/workers-types, not installed here. It resolves once the handler and its
 * `waitUntil` promises have settled.
 */
export interface ScheduledFetcher {
  scheduled(options: { cron: string; scheduledTime?: Date }): Promise<{ outcome: string; noRetry: boolean }>;
}
