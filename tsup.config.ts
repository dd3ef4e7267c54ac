import { defineConfig } from "tsup";

/**
 * The npm build: one ESM file and one `.d.ts` per subpath export, named after the subpath
 * (`dist/index.js` is `edge-outbox`, `dist/libsql.js` is `edge-outbox/libsql`, ...). Keep in
 * step with `exports` in package.json and deno.json; test/package.test.ts checks all of them
 * against SUBPATHS in test/runtimes/support.ts.
 */
const entries = {
  index: "mod.ts",
  libsql: "adapters/libsql.ts",
  http: "adapters/http.ts",
  // The `node` condition of `edge-outbox/http`: the same API, sending through node:http.
  "http-node": "adapters/http-node.ts",
  qstash: "adapters/qstash.ts",
  memory: "adapters/memory.ts",
  postgres: "adapters/postgres.ts",
  d1: "adapters/d1.ts",
  queues: "adapters/queues.ts",
} as const;

export default defineConfig({
  entry: entries,
  format: ["esm"],
  target: "es2022",
  platform: "neutral",
  dts: true,
  clean: true,
  // Unminified output reads like the sources, so stack traces need no source maps (which would
  // double the package size).
  minify: false,
  sourcemap: false,
  // The adapters share the core through one chunk, so `instanceof OutboxError` holds across subpaths.
  splitting: true,
  treeshake: true,
  // node:* only in the Node build of edge-outbox/http (platform "neutral" knows no built-ins).
  external: ["@opentelemetry/api", "@libsql/client", "@upstash/qstash", /^node:/],
  // Keep `node:http` as written: a bare `http` could resolve to a package of that name.
  removeNodeProtocol: false,
});
