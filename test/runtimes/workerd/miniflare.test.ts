/**
 * The Cloudflare example in workerd: bundled with esbuild (as wrangler would), run in Miniflare
 * on a real D1 database migrated from the example's `migrations/` folder. Orders posted to its
 * fetch handler are delivered at once by the request's `waitUntil` tick; what that tick could
 * not deliver (a receiver failing a first attempt) goes out on the cron's `scheduled` tick. The
 * receiver on 127.0.0.1 checks every signature with the reference `standardwebhooks` package.
 */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { Miniflare } from "miniflare";
import { Webhook } from "standardwebhooks";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { D1Store } from "../../../adapters/d1.ts";
import { type HttpReceiver, startHttpReceiver } from "../../support/http-receiver.ts";
import { waitFor } from "../../support/senders.ts";
import { bundleWorker } from "../../support/worker-bundle.ts";
import { ROOT, webhookSecret } from "../support.ts";

const EXAMPLE = join(ROOT, "examples/cloudflare");
const MIGRATIONS = join(EXAMPLE, "migrations");

/** The statements of a migration file, as `wrangler d1 migrations apply` runs them. */
function statementsOf(file: string): string[] {
  return readFileSync(join(MIGRATIONS, file), "utf8")
    .split(/;\s*(?:\n|$)/)
    .map((sql) => sql.replace(/^\s*--.*$/gm, "").trim())
    .filter((sql) => sql !== "");
}

/**
 * The `scheduled()` of Miniflare's Fetcher, typed by hand: Miniflare's own type needs
 * @cloudflare/workers-types, not installed here. It resolves once the handler and its
 * `waitUntil` promises have settled.
 */
interface ScheduledFetcher {
  scheduled(options: { cron: string; scheduledTime?: Date }): Promise<{ outcome: string; noRetry: boolean }>;
}

interface D1Like {
  prepare(sql: string): { first<T>(): Promise<T | null> };
  batch(statements: unknown[]): Promise<unknown>;
}

interface Stats {
  pending: number;
  inFlight: number;
  dead: number;
}

describe("examples/cloudflare in workerd (Miniflare, D1)", { timeout: 90_000 }, () => {
  let mf: Miniflare;
  let receiver: HttpReceiver;
  let db: D1Like;
  const secret = webhookSecret();
  /** Order ids whose first delivery attempt the receiver refuses (503). */
  const flaky = new Set(["F1"]);
  const seen = new Set<string>();

  beforeAll(async () => {
    receiver = await startHttpReceiver({
      respond: (request) => {
        const id = (JSON.parse(request.text()) as { order: { id: string } }).order.id;
        const first = !seen.has(id);
        seen.add(id);
        return { status: flaky.has(id) && first ? 503 : 204 };
      },
    });
    mf = new Miniflare({
      modules: true,
      script: await bundleWorker("examples/cloudflare/worker.ts"),
      compatibilityDate: "2025-01-01",
      d1Databases: { DB: "edge-outbox-example" },
      bindings: { WEBHOOK_URL: `${receiver.origin}/webhooks/orders`, WEBHOOK_SECRET: secret },
    });
    await mf.ready;
    db = (await mf.getD1Database("DB")) as unknown as D1Like;
    for (const file of readdirSync(MIGRATIONS).sort()) {
      await db.batch(statementsOf(file).map((sql) => db.prepare(sql)));
    }
  }, 90_000);

  afterAll(async () => {
    await mf?.dispose();
    await receiver?.close();
  });

  async function postOrder(id: string, total = 10): Promise<Response> {
    return mf.dispatchFetch("http://worker/orders", {
      method: "POST",
      body: JSON.stringify({ id, total }),
      headers: { "content-type": "application/json" },
    }) as unknown as Promise<Response>;
  }

  async function stats(): Promise<Stats> {
    return (await (await mf.dispatchFetch("http://worker/stats")).json()) as Stats;
  }

  /** Order ids of the deliveries the receiver accepted, each signature verified. */
  function accepted(): string[] {
    const verifier = new Webhook(secret);
    const ids: string[] = [];
    const firsts = new Set<string>();
    for (const request of receiver.requests) {
      expect(request.method).toBe("POST");
      expect(request.path).toBe("/webhooks/orders");
      verifier.verify(request.text(), request.headers);
      const id = (JSON.parse(request.text()) as { order: { id: string } }).order.id;
      const refused = flaky.has(id) && !firsts.has(id);
      firsts.add(id);
      if (!refused) ids.push(id);
    }
    return ids;
  }

  it("keeps migrations/0001_outbox.sql in step with D1Store.migrationSql()", () => {
    const file = readFileSync(join(MIGRATIONS, "0001_outbox.sql"), "utf8").replace(/^--.*\n/gm, "");
    expect(file.trim()).toBe(D1Store.migrationSql().trim());
  });

  it("delivers at once with waitUntil, refuses a duplicate order whole, and drains the rest on the cron", async () => {
    for (const id of ["A1", "A2", "A3"]) {
      const response = await postOrder(id);
      expect(response.status, await response.text()).toBe(201);
    }
    // No cron yet: the request's own waitUntil tick delivers.
    await waitFor(() => accepted().length === 3, 30_000);
    expect(accepted().sort()).toEqual(["A1", "A2", "A3"]);

    // The receiver refuses F1's first attempt: its immediate tick leaves it pending.
    expect((await postOrder("F1")).status).toBe(201);
    await waitFor(async () => receiver.requests.length === 4 && (await stats()).inFlight === 0, 30_000);
    expect(await stats()).toMatchObject({ pending: 1, inFlight: 0, dead: 0 });

    // A duplicate order id: the batch fails on the orders table, so no message is written.
    const duplicate = await postOrder("A1", 99);
    expect(duplicate.status).toBe(409);
    expect(await stats()).toMatchObject({ pending: 1, dead: 0 });
    expect(await db.prepare("SELECT COUNT(*) AS n FROM orders").first<{ n: number }>()).toEqual({ n: 4 });
    expect(
      await db
        .prepare("SELECT COUNT(*) AS n FROM outbox_messages WHERE key = 'order:A1'")
        .first<{ n: number }>(),
    ).toEqual({ n: 0 });

    // The cron tick delivers F1 once its backoff has passed.
    const worker = (await mf.getWorker()) as unknown as ScheduledFetcher;
    await waitFor(async () => {
      const outcome = await worker.scheduled({ cron: "* * * * *" });
      expect(outcome.outcome).toBe("ok");
      return (await stats()).pending === 0;
    }, 30_000);
    expect(accepted().sort()).toEqual(["A1", "A2", "A3", "F1"]);
    expect(receiver.requests).toHaveLength(5); // F1 twice, each other order once
    const ids = receiver.requests.map((r) => r.headers["webhook-id"]);
    expect(new Set(ids).size).toBe(4); // F1's retry carries the same webhook-id
    expect(await stats()).toMatchObject({ pending: 0, inFlight: 0, dead: 0 });
  });

  it("commits no order when its message's INSERT fails: the batch is one transaction", async () => {
    // The order's INSERT runs first in the batch and succeeds; the message's INSERT, second, is
    // refused by a trigger. Statements run one by one would leave the order without its message.
    await db.batch([
      db.prepare(
        "CREATE TRIGGER refuse_bad_message BEFORE INSERT ON outbox_messages WHEN NEW.key = 'order:BAD' BEGIN SELECT RAISE(ABORT, 'message refused'); END",
      ),
    ]);
    try {
      const before = await stats();
      const response = await postOrder("BAD");
      await response.arrayBuffer();
      expect(response.status).toBe(500);
      expect(
        await db.prepare("SELECT COUNT(*) AS n FROM orders WHERE id = 'BAD'").first<{ n: number }>(),
      ).toEqual({ n: 0 });
      expect(await stats()).toEqual(before);
      // The same order goes through once the database takes its message.
      await db.batch([db.prepare("DROP TRIGGER refuse_bad_message")]);
      const retried = await postOrder("BAD");
      expect(retried.status, await retried.text()).toBe(201);
      await waitFor(() => accepted().includes("BAD"), 30_000);
    } finally {
      await db.batch([db.prepare("DROP TRIGGER IF EXISTS refuse_bad_message")]);
    }
  });

  it("answers 400 to an order it cannot read, writing nothing", async () => {
    const response = await mf.dispatchFetch("http://worker/orders", { method: "POST", body: "{" });
    expect(response.status).toBe(400);
    await response.arrayBuffer();
    expect(await db.prepare("SELECT COUNT(*) AS n FROM orders").first<{ n: number }>()).toEqual({ n: 5 });
  });
});
