/**
 * `edge-outbox/http` for Node (the `node` condition of the package's `exports`): the same API
 * as `http.ts`, but `httpSender` sends through `node:http`/`node:https` keep-alive agents
 * instead of the global `fetch` (about 3x the requests per second on Node; see BENCHMARKS.md),
 * unless it is given its own `fetch`. Deno, Bun, workerd and browsers resolve `http.ts`.
 *
 * @module
 */
import type { HttpSenderOptions } from "./http/options.ts";
import { createHttpSender, type HttpSender } from "./http/sender.ts";
import { defaultNodeTransport } from "./http/transport-node.ts";

// Everything else is the web build's; the local `httpSender` below takes precedence over the
// star export of the same name (ECMAScript: a module's own export shadows a star export).
export * from "./http.ts";

/**
 * {@inheritDoc httpSender}
 *
 * On this build (Node), requests go through `node:http`/`node:https` with keep-alive agents
 * shared by every sender of the process (`sender.transport` is `"node:http"`); with a `fetch`
 * option they go through that `fetch` instead.
 *
 * @example
 * ```ts
 * const sender = httpSender({ url: "https://example.com/hooks", secret: env.WEBHOOK_SECRET });
 * const outbox = new Outbox(store, sender);
 * ```
 */
export function httpSender(options: HttpSenderOptions): HttpSender {
  return createHttpSender(options, defaultNodeTransport());
}
