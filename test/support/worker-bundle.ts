/**
 * Bundles a Worker module for Miniflare as wrangler would (esbuild, ESM, the `workerd` export
 * conditions), with `edge-outbox` and its subpaths resolved to the sources as an installed
 * package would be. Used by the workerd tests and the D1 benchmarks.
 */
import { join } from "node:path";
import { build, type Plugin } from "esbuild";
import { ROOT, SUBPATHS } from "../runtimes/support.ts";

/** Resolves `edge-outbox` and its subpaths to the sources. */
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

/** The bundled source of the Worker module `entry` (a path from the repository root). */
export async function bundleWorker(entry: string): Promise<string> {
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
