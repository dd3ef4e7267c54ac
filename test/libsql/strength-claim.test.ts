/**
 * How often LibsqlStore's claim writes when the write fails: a claim whose batch is too big to
 * read as one row is tried again with half the batch (down to one message), and any other
 * failure fails the claim at once. Written against mutation survivors (TESTING.md).
 */
import { type Client, createClient } from "@libsql/client";
import { afterAll, describe, expect, it } from "vitest";
import { LibsqlStore } from "../../adapters/libsql.ts";
import { StoreError } from "../../mod.ts";
import { commitMessages } from "../conformance/store-conformance.ts";
import { dbPath, tempDir } from "./helpers.ts";

const tmp = tempDir();
afterAll(() => tmp.cleanup());

const claim = { batchSize: 10, leaseDuration: 30_000, ordering: "none" } as const;

/**
 * A real file client whose write transactions (one per attempt of a local write) are counted;
 * while `tooBig` is above 0, each one fails as SQLite fails a value over its length limit.
 * `beforeNextExecute` runs once, before the next statement run outside a transaction.
 */
function countingClient(client: Client): {
  client: Client;
  writes: number;
  tooBig: number;
  beforeNextExecute: (() => Promise<unknown>) | undefined;
} {
  const state = {
    writes: 0,
    tooBig: 0,
    beforeNextExecute: undefined as (() => Promise<unknown>) | undefined,
    client: new Proxy(client, {
      get(target, name) {
        if (name === "execute") {
          return async (...args: Parameters<Client["execute"]>) => {
            const before = state.beforeNextExecute;
            state.beforeNextExecute = undefined;
            await before?.();
            return target.execute(...args);
          };
        }
        if (name === "transaction") {
          return (mode?: "write" | "read" | "deferred") => {
            state.writes++;
            if (state.tooBig > 0) {
              state.tooBig--;
              const error = Object.assign(new Error("SQLITE_TOOBIG: string or blob too big"), {
                code: "SQLITE_TOOBIG",
              });
              return Promise.reject(error);
            }
            return target.transaction(mode);
          };
        }
        const value = Reflect.get(target, name, target);
        return typeof value === "function" ? value.bind(target) : value;
      },
    }),
  };
  return state;
}

async function open() {
  const real = createClient({ url: `file:${dbPath(tmp.dir)}` });
  const counted = countingClient(real);
  const store = new LibsqlStore(counted.client);
  await store.migrate();
  await commitMessages(
    store,
    Array.from({ length: 12 }, (_, i) => ({ key: `k${i}`, value: `v${i}` })),
  );
  return { real, counted, store };
}

describe("LibsqlStore claim attempts", () => {
  it("fails a claim that fails for another reason than size after one write, without halving", async () => {
    const { real, counted, store } = await open();
    try {
      // A real failure of the claim's UPDATE: a trigger refuses it.
      await real.execute(
        "CREATE TRIGGER no_claims BEFORE UPDATE ON outbox_messages BEGIN SELECT RAISE(ABORT, 'claims refused'); END",
      );
      counted.writes = 0;
      const failure = await store.fetchAndLock(claim).then(
        () => undefined,
        (error: unknown) => error,
      );
      expect(failure).toBeInstanceOf(StoreError);
      expect(String((failure as Error).message)).toContain("claims refused");
      expect(counted.writes).toBe(1);
      await real.execute("DROP TRIGGER no_claims");
      expect((await store.fetchAndLock(claim)).messages).toHaveLength(10);
    } finally {
      real.close();
    }
  });

  it("halves a claim too big to read down to one message, then fails it rather than trying again", async () => {
    const { real, counted, store } = await open();
    try {
      counted.writes = 0;
      counted.tooBig = 8; // more than the halvings 10, 5, 3, 2, 1
      const failure = await store.fetchAndLock(claim).then(
        () => undefined,
        (error: unknown) => error,
      );
      expect(failure).toBeInstanceOf(StoreError);
      expect(counted.writes).toBe(5);
      // Nothing was claimed by the failed attempts.
      counted.tooBig = 0;
      expect((await store.fetchAndLock(claim)).messages).toHaveLength(10);
    } finally {
      real.close();
    }
  });

  it("claims a smaller batch once the read fits", async () => {
    const { real, counted, store } = await open();
    try {
      counted.writes = 0;
      counted.tooBig = 2; // batches of 10 and 5 are too big; 3 fits
      const { messages } = await store.fetchAndLock(claim);
      expect(messages.map((m) => m.key)).toEqual(["k0", "k1", "k2"]);
      expect(counted.writes).toBe(3);
    } finally {
      real.close();
    }
  });

  it("names the read of large values after the claim when that read fails", async () => {
    const { real, counted, store } = await open();
    try {
      await commitMessages(store, [{ key: "big", value: "x".repeat(4096) }]);
      await store.fetchAndLock(claim); // the 10 small ones
      // The claim's write commits; the table is gone before its large value is read.
      counted.writes = 0;
      const claimed = store.fetchAndLock(claim);
      counted.beforeNextExecute = () => real.execute("ALTER TABLE outbox_messages RENAME TO outbox_gone");
      const failure = await claimed.then(
        () => undefined,
        (error: unknown) => error,
      );
      expect(failure).toBeInstanceOf(StoreError);
      expect((failure as Error).message).toContain("reading claimed values");
      expect((failure as Error).message).toContain("no such table");
      expect(counted.writes).toBe(1);
    } finally {
      real.close();
    }
  });
});
