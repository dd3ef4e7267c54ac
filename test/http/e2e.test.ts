import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createClient } from "@libsql/client";
import { Webhook } from "standardwebhooks";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { httpSender, verifyWebhook } from "../../adapters/http.ts";
import { LibsqlStore } from "../../adapters/libsql.ts";
import { MemoryStore } from "../../adapters/memory.ts";
import { type Message, Outbox, type Sender } from "../../mod.ts";
import { type HttpReceiver, startHttpReceiver } from "../support/http-receiver.ts";

const SECRET = `whsec_${Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString("base64")}`;

/** Wraps a sender to record which message ids it was handed. */
function recording(inner: Sender): Sender & { ids: string[] } {
  const ids: string[] = [];
  return {
    ids,
    send(messages: Message[], signal: AbortSignal) {
      for (const m of messages) ids.push(m.id);
      return inner.send(messages, signal);
    },
  };
}

let receiver: HttpReceiver;
beforeEach(async () => {
  receiver = await startHttpReceiver();
});
afterEach(() => receiver.close());

describe("Outbox + MemoryStore + httpSender -> receiver", () => {
  it("delivers committed messages once each, signed, with webhook-id = message id", async () => {
    const store = new MemoryStore();
    const sender = recording(httpSender({ url: receiver.url, secret: SECRET, concurrency: 4 }));
    const outbox = new Outbox(store, sender, { batchSize: 5, onError: () => {} });
    await store.transaction(async (tx) => {
      for (let i = 0; i < 12; i++) {
        await outbox.addMessage(tx, {
          key: `order:${i}`,
          value: JSON.stringify({ i }),
          headers: { "content-type": "application/json" },
        });
      }
    });
    // A rolled-back transaction is never delivered.
    await store
      .transaction(async (tx) => {
        await outbox.addMessage(tx, { key: "rolled-back", value: "{}" });
        throw new Error("rollback");
      })
      .catch(() => {});

    const result = await outbox.tick();
    expect(result).toMatchObject({ sent: 12, failed: 0, dead: 0 });
    expect(receiver.requests).toHaveLength(12);
    const ids = receiver.requests.map((r) => r.headers["webhook-id"]);
    expect(new Set(ids).size).toBe(12);
    expect([...ids].sort()).toEqual([...sender.ids].sort());
    for (const request of receiver.requests) {
      expect(request.headers["content-type"]).toBe("application/json");
      const payload = new Webhook(SECRET).verify(request.text(), request.headers) as { i: number };
      const hook = await verifyWebhook(request.toRequest(), SECRET);
      expect(hook.json()).toEqual(payload);
    }
    expect((await store.stats()).pending).toBe(0);
  });

  it("retries a 503 with Retry-After: 0 and kills a 404 at once", async () => {
    const store = new MemoryStore();
    const outbox = new Outbox(store, httpSender({ url: receiver.url, unsigned: true }), {
      onError: () => {},
    });
    receiver.respond((request, index) => {
      if (request.text() === "gone") return { status: 404 };
      return index < 2 ? { status: 503, headers: { "retry-after": "0" } } : {};
    });
    await store.transaction(async (tx) => {
      await outbox.addMessage(tx, { key: "a", value: "flaky" });
      await outbox.addMessage(tx, { key: "b", value: "gone" });
    });
    const result = await outbox.tick();
    expect(result).toMatchObject({ sent: 1, dead: 1 });
    const flaky = receiver.requests.filter((r) => r.text() === "flaky");
    expect(flaky.length).toBeGreaterThanOrEqual(2);
    expect(new Set(flaky.map((r) => r.headers["webhook-id"])).size).toBe(1);
    const [dead] = await store.listDead();
    expect(dead!.value).toEqual(new TextEncoder().encode("gone"));
    expect(dead!.lastError).toMatch(/HTTP 404 for message/);
  });

  it("a receiver slower than sendTimeout fails the attempt; the next attempt carries the same webhook-id", async () => {
    const store = new MemoryStore();
    const outbox = new Outbox(store, httpSender({ url: receiver.url, unsigned: true }), {
      sendTimeout: 1000,
      backoff: { initialDelay: 0, maxDelay: 0 },
      onError: () => {},
    });
    receiver.respond((_, index) => (index === 0 ? { delayMs: 10_000 } : {}));
    await store.transaction((tx) => outbox.addMessage(tx, { key: "slow", value: "x" }));
    const result = await outbox.tick();
    expect(result).toMatchObject({ sent: 1, failed: 1 });
    const ids = receiver.requests.map((r) => r.headers["webhook-id"]);
    expect(ids).toHaveLength(2);
    expect(ids[0]).toBe(ids[1]);
  });
});

describe("Outbox + LibsqlStore (a real file) + httpSender: what listDead() shows", () => {
  it("a url(message) that throws or returns a credentialed URL: the message dies with a safe error, the loop goes on", async () => {
    const dir = mkdtempSync(join(tmpdir(), "edge-outbox-http-e2e-"));
    const client = createClient({ url: `file:${join(dir, "outbox.db")}` });
    try {
      const store = new LibsqlStore(client);
      await store.migrate();
      const errors: unknown[] = [];
      const sender = httpSender({
        secret: SECRET,
        url: (m) => {
          const key = m.key;
          if (key === "creds") return `http://admin:hunter2@127.0.0.1:1/hook?token=t0ken`;
          if (key === "throws") throw new Error(`no route for ${"\uD800"}`);
          return receiver.url;
        },
      });
      const outbox = new Outbox(store, sender, { maxRetries: 0, onError: (e) => errors.push(e) });
      await store.withTransaction(async (tx) => {
        for (const key of ["ok", "creds", "throws"]) await outbox.addMessage(tx, { key, value: key });
      });
      const result = await outbox.tick();
      expect(result).toMatchObject({ sent: 1, dead: 2 });
      expect(receiver.requests.map((r) => r.text())).toEqual(["ok"]);
      const dead = await store.listDead();
      const byKey = Object.fromEntries(dead.map((m) => [m.key, m.lastError ?? ""]));
      expect(byKey.creds).toMatch(/url\(message\) for message \S+ returned a URL that carries credentials/);
      expect(byKey.creds).not.toContain("hunter2");
      expect(byKey.creds).not.toContain("t0ken");
      expect(byKey.throws).toMatch(/url\(message\) threw for message \S+: Error: no route for \uFFFD/);
    } finally {
      client.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("Outbox + LibsqlStore (a real file) + httpSender: hostile url(message) results", () => {
  it("a result that throws when inspected, or a URL with control characters or a password holding / ? #, kills only its own message, and nothing secret is stored", async () => {
    const dir = mkdtempSync(join(tmpdir(), "edge-outbox-http-e2e-"));
    const client = createClient({ url: `file:${join(dir, "outbox.db")}` });
    const { proxy, revoke } = Proxy.revocable({}, {});
    revoke();
    const hostile: Record<string, unknown> = {
      revoked: proxy,
      // biome-ignore lint/suspicious/noThenProperty: a thenable whose `then` getter throws is the point
      thenGetter: Object.defineProperty({}, "then", {
        get() {
          throw new Error("then getter");
        },
      }),
      slash: "https://svc:s3cr/etPass@127.0.0.1:1/hook",
      query: "https://svc:top?s3cret@127.0.0.1:1/hook",
      hash: "http://svc:Zm9v#s3cret@127.0.0.1:1/h",
      newline: `${receiver.url}\n`,
      tab: receiver.url.replace("127.0", "127\t.0"),
    };
    try {
      const store = new LibsqlStore(client);
      await store.migrate();
      const sender = httpSender({
        secret: SECRET,
        concurrency: 1,
        url: (m) => (m.key in hostile ? (hostile[m.key] as string) : receiver.url),
      });
      const outbox = new Outbox(store, sender, { maxRetries: 0, onError: () => {} });
      const keys = ["ok-1", ...Object.keys(hostile), "ok-2"];
      await store.withTransaction(async (tx) => {
        for (const key of keys) await outbox.addMessage(tx, { key, value: key });
      });
      const result = await outbox.tick();
      expect(result).toMatchObject({ sent: 2, dead: Object.keys(hostile).length });
      expect(receiver.requests.map((r) => r.text()).sort()).toEqual(["ok-1", "ok-2"]);
      const dead = await store.listDead();
      const byKey = Object.fromEntries(dead.map((m) => [m.key, m.lastError ?? ""]));
      expect(byKey.revoked).toMatch(
        /url\(message\) for message \S+ returned a value that throws when read: TypeError/,
      );
      expect(byKey.thenGetter).toMatch(/returned a value that throws when read: Error: then getter/);
      for (const key of ["slash", "query", "hash"]) {
        expect(byKey[key]).toMatch(
          /returned a URL that is not an absolute http\(s\) URL \(scheme https?:, the rest not shown\)/,
        );
      }
      expect(byKey.newline).toContain("contains the control character U+000A");
      expect(byKey.tab).toContain("contains the control character U+0009");
      expect(JSON.stringify(dead)).not.toMatch(/s3cr|etPass|top\?|Zm9v/);
    } finally {
      client.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
