/**
 * Both builds of `edge-outbox/http`, for suites that must hold on every transport: the web build
 * (`fetch`, what Deno, Bun and workerd get) and the Node build (`node:http` keep-alive agents,
 * what the package's `node` export condition gives Node).
 *
 * @example
 * ```ts
 * describe.each(HTTP_BUILDS)("$transport transport", ({ build }) => {
 *   it("sends", async () => { await build.httpSender({ url }).send(messages, signal); });
 * });
 * ```
 */
import * as fetchBuild from "../../adapters/http.ts";
import * as nodeBuild from "../../adapters/http-node.ts";

/** One build: the transport name its `httpSender` reports, and the module. */
export interface HttpBuild {
  transport: "fetch" | "node:http";
  build: typeof fetchBuild;
}

export const HTTP_BUILDS: readonly HttpBuild[] = [
  { transport: "fetch", build: fetchBuild },
  { transport: "node:http", build: nodeBuild },
];
