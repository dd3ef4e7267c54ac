/**
 * edge-outbox on Cloudflare Workers, with the outbox in D1.
 *
 * `POST /orders` writes the order row and its outbox message in one `env.DB.batch` (all or
 * nothing), answers, and delivers at once in the background (`ctx.waitUntil(outbox.tick())`).
 * The cron trigger (wrangler.toml) drains whatever is left: messages whose first attempt failed,
 * or whose immediate tick never ran. `GET /stats` shows the backlog. Webhooks go to
 * `WEBHOOK_URL`, signed (Standard Webhooks) with `WEBHOOK_SECRET`.
 */
import { Outbox } from "edge-outbox";
import { type D1Database, D1Store, type D1Tx } from "edge-outbox/d1";
import { httpSender } from "edge-outbox/http";

/** Bindings from wrangler.toml (`[[d1_databases]]`, `[vars]`) and `wrangler secret put`. */
export interface Env {
  DB: D1Database;
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
 * The tick after a request: a Worker may keep running `waitUntil` work for 30 s after its
 * response, so a short budget delivers the new order now and leaves stragglers to the cron.
 */
const REQUEST_TICK_BUDGET_MS = 5_000;
/**
 * The cron tick: a Worker gets 30 s of CPU time per invocation by default on Workers Paid
 * (`limits.cpu_ms` raises it up to 5 min). Waiting on fetch or D1 is not CPU time, so this is
 * conservative: no new pass starts after 20 s, which leaves room for the pass in flight (up to
 * `sendTimeout`) and the writes that record its outcome.
 */
const CRON_TICK_BUDGET_MS = 20_000;

interface Order {
  id: string;
  total: number;
}

/**
 * An outbox for one invocation, disposed of when its work is done (which unregisters its
 * gauges). Cloudflare does not let one request's handler use I/O objects made by another, and
 * one Outbox runs one pass at a time (a second tick waits for the first), so a shared outbox
 * would tie each request to another's pass: each request and each cron run gets its own.
 */
function openOutbox(env: Env): Outbox<D1Tx> {
  // Each request may take up to 4 s (requestTimeout) within a send of at most 5 s (sendTimeout).
  const sender = httpSender({ url: env.WEBHOOK_URL, secret: env.WEBHOOK_SECRET, requestTimeout: 4_000 });
  return new Outbox(new D1Store(env.DB), sender, {
    sendTimeout: 5_000,
    onError: (error) => console.error("[outbox]", error),
  });
}

/** Relays until the outbox is empty or `budgetMs` is spent, logs the result, then disposes of it. */
async function relay(outbox: Outbox<D1Tx>, budgetMs: number, trigger: string): Promise<void> {
  try {
    const result = await outbox.tick({ budgetMs });
    console.log(`[outbox] ${trigger} tick`, JSON.stringify(result));
  } catch (error) {
    // The store failed (D1 unavailable, say): the messages stay pending for the next tick.
    console.error(`[outbox] ${trigger} tick failed`, error);
  } finally {
    await outbox[Symbol.asyncDispose]();
  }
}

function readOrder(body: unknown): Order | undefined {
  const { id, total } = (body ?? {}) as Partial<Order>;
  if (typeof id !== "string" || id === "" || id.length > 100) return undefined;
  if (typeof total !== "number" || !Number.isFinite(total) || total < 0) return undefined;
  return { id, total };
}

async function placeOrder(request: Request, env: Env, ctx: ExecutionContext): Promise<Response> {
  const order = readOrder(await request.json().catch(() => undefined));
  if (order === undefined) {
    return Response.json({ error: "expected { id: non-empty string, total: number >= 0 }" }, { status: 400 });
  }
  const outbox = openOutbox(env);
  const statements = [
    env.DB.prepare("INSERT INTO orders (id, total, created_at) VALUES (?1, ?2, ?3)").bind(
      order.id,
      order.total,
      Date.now(),
    ),
  ];
  try {
    // Pushes the message's INSERT onto the same array: one batch, one implicit transaction.
    await outbox.addMessage(statements, {
      key: `order:${order.id}`,
      value: JSON.stringify({ type: "order.placed", order }),
      headers: { "content-type": "application/json" },
    });
    await env.DB.batch(statements);
  } catch (error) {
    await outbox[Symbol.asyncDispose]();
    // The batch failed as a whole: neither the order nor its message was written.
    if (/UNIQUE constraint failed/.test(String(error))) {
      return Response.json({ error: `order ${order.id} exists` }, { status: 409 });
    }
    throw error;
  }
  // Deliver now, after the response has gone; the cron delivers whatever this leaves.
  ctx.waitUntil(relay(outbox, REQUEST_TICK_BUDGET_MS, "request"));
  return Response.json({ placed: order.id }, { status: 201 });
}

export default {
  async fetch(request: Request, env: Env, ctx: ExecutionContext): Promise<Response> {
    const { pathname } = new URL(request.url);
    if (request.method === "POST" && pathname === "/orders") return placeOrder(request, env, ctx);
    if (request.method === "GET" && pathname === "/stats")
      return Response.json(await new D1Store(env.DB).stats());
    return new Response("not found", { status: 404 });
  },

  async scheduled(_controller: ScheduledController, env: Env, ctx: ExecutionContext): Promise<void> {
    // waitUntil keeps the invocation alive until the tick has recorded every outcome.
    ctx.waitUntil(relay(openOutbox(env), CRON_TICK_BUDGET_MS, "cron"));
  },
};
