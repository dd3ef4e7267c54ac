/**
 * edge-outbox on Cloudflare Workers.
 *
 * `POST /orders` records an order and its outbox message in one transaction; the cron trigger
 * (wrangler.toml) relays pending messages to `WEBHOOK_URL`, signed with `WEBHOOK_SECRET`.
 * `GET /stats` shows the backlog.
 */
import { Outbox } from "edge-outbox";
import { httpSender } from "edge-outbox/http";
import { MemoryStore, type MemoryTransaction } from "edge-outbox/memory";

/** Bindings from wrangler.toml (`[vars]`) and `wrangler secret put`. */
export interface Env {
  WEBHOOK_URL: string;
  WEBHOOK_SECRET: string;
}

// The two runtime types this worker uses, declared here so the example needs no
// @cloudflare/workers-types; with them installed, use `ExportedHandler<Env>` instead.
interface ExecutionContext {
  waitUntil(promise: Promise<unknown>): void;
}
interface ScheduledController {
  readonly cron: string;
  readonly scheduledTime: number;
}

/**
 * A Worker gets 30 s of CPU time per invocation by default on Workers Paid (`limits.cpu_ms`
 * raises it up to 5 min; the Free plan allows 10 ms). Waiting on fetch is not CPU time, so this
 * budget is conservative: no new pass starts after 20 s, which leaves room for the pass in
 * flight (up to `sendTimeout`) and the writes that record its outcome.
 */
const TICK_BUDGET_MS = 20_000;

// A demo store: it lives in one isolate. For production put the outbox in your database,
// e.g. `new LibsqlStore(createClient({ url, authToken }))` from edge-outbox/libsql over Turso
// (import createClient from "@libsql/client/web"), or D1. See README.md.
const store = new MemoryStore();
let outbox: Outbox<MemoryTransaction> | undefined;

function getOutbox(env: Env): Outbox<MemoryTransaction> {
  outbox ??= new Outbox(store, httpSender({ url: env.WEBHOOK_URL, secret: env.WEBHOOK_SECRET }), {
    sendTimeout: 5_000,
    onError: (error) => console.error("[outbox]", error),
  });
  return outbox;
}

export default {
  async fetch(request: Request, env: Env): Promise<Response> {
    const { pathname } = new URL(request.url);
    const outbox = getOutbox(env);
    if (request.method === "POST" && pathname === "/orders") {
      const order = (await request.json()) as { id: string; total: number };
      await store.withTransaction(async (tx) => {
        // Write the order itself with the same transaction here.
        await outbox.addMessage(tx, { key: `order:${order.id}`, value: JSON.stringify(order) });
      });
      return Response.json({ accepted: order.id }, { status: 202 });
    }
    if (request.method === "GET" && pathname === "/stats") return Response.json(await outbox.stats());
    return new Response("not found", { status: 404 });
  },

  async scheduled(_controller: ScheduledController, env: Env, ctx: ExecutionContext): Promise<void> {
    // waitUntil keeps the invocation alive until the tick has recorded every outcome.
    ctx.waitUntil(
      getOutbox(env)
        .tick({ budgetMs: TICK_BUDGET_MS })
        .then((result) => console.log("[outbox] tick", JSON.stringify(result))),
    );
  },
};
