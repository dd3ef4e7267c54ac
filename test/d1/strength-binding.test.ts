/**
 * What D1Store takes as a database and as a `tx`, checked before any SQL runs: an RPC stub (a
 * Service binding or Durable Object stub answers every method name) is refused with what it is,
 * in Node too (the workerd test in robustness.test.ts runs bundled, where no mutant is seen).
 * Written against mutation survivors (TESTING.md).
 */
import { describe, expect, it } from "vitest";
import { type D1Database, D1Store } from "../../adapters/d1.ts";
import { prepareMessage, ValidationError } from "../../mod.ts";

/** An object that, like a workerd RPC stub, has a callable method of every name. */
const rpcStub = () =>
  new Proxy(
    {},
    {
      get: (_target, name) => (name === "then" ? undefined : () => Promise.resolve(undefined)),
    },
  );
/** Shaped like a binding; never called by these tests. */
const lookalike = { prepare() {}, batch() {} } as unknown as D1Database;
const message = prepareMessage({ key: "k", value: "v" }, { maxMessageBytes: 64 });

describe("D1Store's database", () => {
  it("refuses an RPC stub, saying what it got and what to check", () => {
    expect(() => new D1Store(rpcStub() as never)).toThrow(
      new ValidationError(
        "db must be a D1 database binding (such as env.DB), got an RPC stub (a Service binding or a Durable Object stub answers every method name); check the binding's name in wrangler.toml",
      ),
    );
  });

  it("refuses an object lacking prepare() or batch(), naming its type", () => {
    for (const db of [
      { prepare() {} },
      { batch() {} },
      { prepare: 1, batch() {} },
      { prepare() {}, batch: "x" },
    ]) {
      expect(() => new D1Store(db as never)).toThrow(
        new ValidationError(
          "db must be a D1 database binding (an object with prepare() and batch(), such as env.DB), got object",
        ),
      );
    }
    expect(() => new D1Store(null as never)).toThrow(
      new ValidationError(
        "db must be a D1 database binding (an object with prepare() and batch(), such as env.DB), got null",
      ),
    );
    expect(() => new D1Store(undefined as never)).toThrow(/got undefined$/);
    expect(() => new D1Store((() => {}) as never)).toThrow(/got function$/);
  });

  it("takes anything with prepare() and batch() that is not a stub", () => {
    expect(new D1Store(lookalike).table).toBe("outbox_messages");
    expect(new D1Store(lookalike, { table: "t2" }).table).toBe("t2");
  });

  it("refuses options that are not an object", () => {
    for (const options of [null, "x", 3]) {
      expect(() => new D1Store(lookalike, options as never)).toThrow(
        new ValidationError(`options must be an object, got ${String(options)}`),
      );
    }
  });
});

describe("D1Store.addMessage's tx", () => {
  it("refuses an RPC stub or a lookalike without batch(), writing nothing", async () => {
    const store = new D1Store(lookalike);
    for (const tx of [rpcStub(), { prepare() {} }, null, "stmts"]) {
      const error = await store.addMessage(tx as never, message).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ValidationError);
      expect(error).toMatchObject({
        code: "INVALID_MESSAGE",
        message: "tx must be an array of D1 statements (run later with db.batch) or a D1 database binding",
      });
    }
  });
});
