/**
 * Turso from a Worker: `LibsqlStore` over `@libsql/client/web` inside workerd (Miniflare),
 * against the Hrana-over-HTTP stand-in (test/support/hrana-server.ts) in front of a real SQLite
 * file, relaying with `httpSender` to a receiver on 127.0.0.1. One relay with retries, then two
 * Workers relaying one database side by side.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Miniflare } from "miniflare";
import { Webhook } from "standardwebhooks";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type HranaServer, startHranaServer } from "../../support/hrana-server.ts";
import { type HttpReceiver, startHttpReceiver } from "../../support/http-receiver.ts";
import { bundleWorker } from "../../support/worker-bundle.ts";
import { webhookSecret } from "../support.ts";

interface WorkerFetcher {
  fetch(url: string, init?: RequestInit): Promise<Response>;
}

interface TickAnswer {
  result: { sent: number; failed: number; dead: number };
  errors: string[];
}

describe("LibsqlStore over @libsql/client/web in workerd", { timeout: 120_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), "edge-outbox-turso-worker-"));
  const secret = webhookSecret();
  let hrana: HranaServer;
  let receiver: HttpReceiver;
  let mf: Miniflare;

  beforeAll(async () => {
    hrana = await startHranaServer(join(dir, "turso.db"));
    receiver = await startHttpReceiver();
    const script = await bundleWorker("test/runtimes/workerd/turso-worker.ts");
    const bindings = { DATABASE_URL: hrana.url, WEBHOOK_URL: receiver.url, WEBHOOK_SECRET: secret };
    mf = new Miniflare({
      compatibilityDate: "2025-01-01",
      workers: ["relay-a", "relay-b"].map((name) => ({ name, modules: true, script, bindings })),
    });
    await mf.ready;
    const migrated = await post("relay-a", "/migrate");
    expect(migrated.status, await migrated.text()).toBe(204);
  }, 120_000);

  afterAll(async () => {
    await mf?.dispose();
    await receiver?.close();
    await hrana?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  async function post(worker: string, path: string, body?: unknown): Promise<Response> {
    // Typed by hand: Miniflare's Fetcher type needs @cloudflare/workers-types, not installed here.
    const fetcher = (await mf.getWorker(worker)) as unknown as WorkerFetcher;
    return fetcher.fetch(`http://worker${path}`, {
      method: "POST",
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
  }

  async function tick(worker: string): Promise<TickAnswer> {
    const response = await post(worker, "/tick");
    const text = await response.text();
    expect(response.status, text).toBe(200);
    return JSON.parse(text) as TickAnswer;
  }

  async function stats(): Promise<{ pending: number; inFlight: number; dead: number }> {
    return (await (await post("relay-a", "/stats")).json()) as {
      pending: number;
      inFlight: number;
      dead: number;
    };
  }

  /** Ids of the requests the receiver accepted (answered 2xx), each verified as Standard Webhooks. */
  function accepted(statuses: Map<number, number>): string[] {
    const verifier = new Webhook(secret);
    return receiver.requests
      .filter((_, i) => (statuses.get(i) ?? 200) < 300)
      .map((request) => {
        verifier.verify(request.text(), request.headers);
        return request.headers["webhook-id"]!;
      });
  }

  it("relays with retries: every order's message arrives after its first attempts failed", async () => {
    receiver.reset();
    const statuses = new Map<number, number>();
    const attempts = new Map<string, number>();
    // Each message is refused twice (503), then accepted.
    receiver.respond((request, index) => {
      const id = request.headers["webhook-id"]!;
      const attempt = (attempts.get(id) ?? 0) + 1;
      attempts.set(id, attempt);
      const status = attempt <= 2 ? 503 : 204;
      statuses.set(index, status);
      return { status };
    });
    const orders = Array.from({ length: 12 }, (_, i) => `retry-${i}`);
    expect((await post("relay-a", "/orders", orders)).status).toBe(204);

    // The tick drains: with a 1 ms backoff it retries within the same tick.
    let sent = 0;
    for (let round = 0; round < 10 && sent < orders.length; round++)
      sent += (await tick("relay-a")).result.sent;
    expect(sent).toBe(orders.length);
    expect(receiver.requests).toHaveLength(orders.length * 3);
    const ids = accepted(statuses);
    expect(ids).toHaveLength(orders.length);
    expect(new Set(ids).size).toBe(orders.length);
    const bodies = receiver.requests.map((r) => JSON.parse(r.text()).id as string);
    expect(new Set(bodies)).toEqual(new Set(orders));
    expect(await stats()).toMatchObject({ pending: 0, inFlight: 0, dead: 0 });
  });

  it("two Workers relaying one database side by side deliver each message once, nothing lost", async () => {
    receiver.reset();
    receiver.respond(() => ({ status: 204, delayMs: 5 }));
    const orders = Array.from({ length: 60 }, (_, i) => `pair-${i}`);
    for (let i = 0; i < orders.length; i += 20) {
      expect((await post("relay-a", "/orders", orders.slice(i, i + 20))).status).toBe(204);
    }
    // Both relays tick at once, again and again, until the backlog is gone; a tick that loses
    // a race for the write lock gives up its pass (STORE_BUSY) and the next one carries on.
    const totals = { a: 0, b: 0 };
    for (let round = 0; round < 20; round++) {
      const [a, b, a2] = await Promise.all([tick("relay-a"), tick("relay-b"), tick("relay-a")]);
      totals.a += a.result.sent + a2.result.sent;
      totals.b += b.result.sent;
      if ((await stats()).pending === 0) break;
    }
    const ids = receiver.requests.map((r) => r.headers["webhook-id"]!);
    expect(ids).toHaveLength(orders.length);
    expect(new Set(ids).size).toBe(orders.length);
    const bodies = receiver.requests.map((r) => JSON.parse(r.text()).id as string);
    expect(new Set(bodies)).toEqual(new Set(orders));
    expect(await stats()).toMatchObject({ pending: 0, inFlight: 0, dead: 0 });
    expect(totals.a + totals.b).toBe(orders.length);
    // Both Workers did part of the work.
    expect(totals.b).toBeGreaterThan(0);
  });
});
