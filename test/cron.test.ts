import { describe, expect, it } from "vitest";
import { MemoryStore } from "../adapters/memory.ts";
import { type CronTarget, cronHandler, Outbox, type Sender, StoreError, ValidationError } from "../mod.ts";
import { recordingSender } from "./support/senders.ts";

const SECRET = "s3cret-cron-token";
const URL = "https://app.example/api/outbox";

function setup(sender: Sender = recordingSender(), store = new MemoryStore()) {
  const errors: unknown[] = [];
  const outbox = new Outbox(store, sender, { onError: (e) => errors.push(e) });
  return { store, outbox, errors };
}

async function seed(store: MemoryStore, outbox: Outbox<unknown>, count: number) {
  await store.transaction(async (tx) => {
    for (let i = 0; i < count; i++) await outbox.addMessage(tx, { key: `k${i}`, value: `v${i}` });
  });
}

function call(handler: (r: Request) => Promise<Response>, init: RequestInit = {}) {
  return handler(new Request(URL, init));
}

const bearer = (token: string) => ({ headers: { authorization: `Bearer ${token}` } });

describe("cronHandler construction", () => {
  const { outbox } = setup();

  it("refuses a missing or empty secret unless unauthenticated access is opted into", () => {
    expect(() => cronHandler(outbox, {})).toThrow(ValidationError);
    expect(() => cronHandler(outbox, { secret: undefined })).toThrow(/secret is required/);
    expect(() => cronHandler(outbox, { secret: "" })).toThrow(/secret must be a non-empty string, got ""/);
    expect(() => cronHandler(outbox, { secret: 42 as unknown as string })).toThrow(ValidationError);
    expect(() => cronHandler(outbox, { allowUnauthenticated: "yes" as unknown as boolean })).toThrow(
      /allowUnauthenticated must be a boolean/,
    );
    expect(() => cronHandler(outbox, { allowUnauthenticated: true })).not.toThrow();
  });

  it("refuses a secret no header could carry: surrounding whitespace, controls or non-ASCII", () => {
    const cases: [string[], RegExp][] = [
      [[`${SECRET}\n`, ` ${SECRET}`, `${SECRET} `, `\t${SECRET}`], /must not start or end with whitespace/],
      [[`${SECRET}\u00e9`, `s\u2603${SECRET}`, "a\tb", "a\u0000b", "a\u007fb"], /must be printable ASCII/],
    ];
    for (const [secrets, reason] of cases) {
      for (const secret of secrets) {
        const error = (() => {
          try {
            cronHandler(outbox, { secret });
          } catch (e) {
            return e as Error;
          }
        })();
        expect(error).toBeInstanceOf(ValidationError);
        expect(error!.message).toMatch(reason);
        expect(error!.message).not.toContain(SECRET);
      }
    }
  });

  it("accepts any printable ASCII secret, inner spaces included, and it matches", async () => {
    const secret = "a b~!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}";
    const handler = cronHandler(outbox, { secret });
    expect((await call(handler, bearer(secret))).status).toBe(200);
    expect((await call(handler, bearer("a b"))).status).toBe(401);
  });

  it("refuses a bad budget and a non-outbox", () => {
    expect(() => cronHandler(outbox, { secret: SECRET, budgetMs: -1 })).toThrow(
      /budgetMs must be a number >= 0/,
    );
    expect(() => cronHandler(outbox, { secret: SECRET, budgetMs: Number.NaN })).toThrow(ValidationError);
    expect(() => cronHandler({} as CronTarget, { secret: SECRET })).toThrow(/outbox must be an Outbox/);
    expect(() => cronHandler(outbox, null as never)).toThrow(/options must be an object/);
  });
});

describe("cronHandler authorization", () => {
  it("answers 401 without a header, with a wrong secret, a prefix of it, or another scheme", async () => {
    const sender = recordingSender();
    const { store, outbox } = setup(sender);
    await seed(store, outbox, 2);
    const handler = cronHandler(outbox, { secret: SECRET });
    const attempts: RequestInit[] = [
      {},
      bearer("wrong"),
      bearer(SECRET.slice(0, -1)),
      bearer(`${SECRET}x`),
      bearer(""),
      { headers: { authorization: SECRET } },
      { headers: { authorization: `Basic ${SECRET}` } },
      { method: "POST", headers: { authorization: `Bearer  ${SECRET} extra` } },
    ];
    for (const init of attempts) {
      const response = await call(handler, init);
      expect(response.status).toBe(401);
      expect(response.headers.get("www-authenticate")).toBe("Bearer");
      expect(await response.json()).toEqual({ error: "unauthorized" });
    }
    expect(sender.attempts).toEqual([]);
    expect((await store.stats()).pending).toBe(2);
  });

  it("answers 200 with the TickResult for the right secret, on GET and POST", async () => {
    const sender = recordingSender();
    const { store, outbox } = setup(sender);
    await seed(store, outbox, 3);
    const handler = cronHandler(outbox, { secret: SECRET });
    const response = await call(handler, bearer(SECRET));
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toBe("application/json");
    const body = await response.json();
    expect(body).toMatchObject({ batches: 1, sent: 3, failed: 0, dead: 0 });
    expect(typeof body.durationMs).toBe("number");
    expect(sender.delivered).toHaveLength(3);

    // The scheme is case-insensitive (RFC 9110); POST works the same.
    const again = await call(handler, { method: "POST", headers: { authorization: `bearer ${SECRET}` } });
    expect(again.status).toBe(200);
    expect(await again.json()).toMatchObject({ batches: 0, sent: 0 });
  });

  it("runs without a header when unauthenticated access was opted into", async () => {
    const { store, outbox } = setup();
    await seed(store, outbox, 1);
    const response = await call(cronHandler(outbox, { allowUnauthenticated: true }));
    expect(response.status).toBe(200);
    expect(await response.json()).toMatchObject({ sent: 1 });
  });

  it("still checks a secret when one is given alongside allowUnauthenticated", async () => {
    const { outbox } = setup();
    const handler = cronHandler(outbox, { secret: SECRET, allowUnauthenticated: true });
    expect((await call(handler)).status).toBe(401);
    expect((await call(handler, bearer(SECRET))).status).toBe(200);
  });
});

describe("cronHandler methods and failures", () => {
  it("answers 405 with an Allow header for other methods, before checking credentials", async () => {
    const sender = recordingSender();
    const { store, outbox } = setup(sender);
    await seed(store, outbox, 1);
    const handler = cronHandler(outbox, { secret: SECRET });
    for (const method of ["PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"]) {
      const response = await call(handler, { method, ...bearer(SECRET) });
      expect(response.status).toBe(405);
      expect(response.headers.get("allow")).toBe("GET, POST");
    }
    expect(sender.attempts).toEqual([]);
  });

  it("answers 500 with a generic body and hands the error to onError", async () => {
    const store = new MemoryStore();
    const failure = new StoreError("database is locked: secret table details", { retryable: true });
    store.fetchAndLock = async () => {
      throw failure;
    };
    const { outbox, errors } = setup(recordingSender(), store);
    const response = await call(cronHandler(outbox, { secret: SECRET }), bearer(SECRET));
    expect(response.status).toBe(500);
    const text = await response.text();
    expect(JSON.parse(text)).toEqual({ error: "tick failed" });
    expect(text).not.toContain("locked");
    expect(errors).toEqual([failure]);
  });

  it("answers 500 even when onError itself throws", async () => {
    const target: CronTarget = {
      tick: async () => {
        throw new Error("boom");
      },
      options: {
        ...new Outbox(new MemoryStore(), recordingSender()).options,
        onError: () => {
          throw new Error("onError broke");
        },
      },
    };
    const response = await call(cronHandler(target, { secret: SECRET }), bearer(SECRET));
    expect(response.status).toBe(500);
  });
});

describe("cronHandler budget", () => {
  it("passes budgetMs to tick and leaves the rest pending", async () => {
    const sender: Sender = {
      async send(messages) {
        await new Promise((resolve) => setTimeout(resolve, 10));
        for (const m of messages) m.markAsSent();
        return messages;
      },
    };
    const store = new MemoryStore();
    const outbox = new Outbox(store, sender, { batchSize: 1 });
    await seed(store, outbox, 40);
    const seen: unknown[] = [];
    const spy: CronTarget = {
      options: outbox.options,
      tick: (options) => {
        seen.push(options);
        return outbox.tick(options);
      },
    };
    // A budget a loaded machine's first claim fits in (a tick starts no pass once its budget is
    // spent), well short of the 400 ms or more the 40 sends take one after another.
    const response = await call(cronHandler(spy, { secret: SECRET, budgetMs: 300 }), bearer(SECRET));
    expect(seen).toEqual([{ budgetMs: 300 }]);
    const body = await response.json();
    expect(body.batches).toBeGreaterThanOrEqual(1);
    expect(body.batches).toBeLessThan(40);
    expect((await store.stats()).pending).toBe(40 - body.sent);
  });

  it("passes no budget when none is set", async () => {
    const seen: unknown[] = [];
    const { outbox } = setup();
    const spy: CronTarget = {
      options: outbox.options,
      tick: (options) => {
        seen.push(options);
        return outbox.tick(options);
      },
    };
    await call(cronHandler(spy, { allowUnauthenticated: true }));
    expect(seen).toEqual([{}]);
  });
});
