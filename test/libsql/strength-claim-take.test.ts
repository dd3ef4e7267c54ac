/**
 * A local claim reads its batch, then leases it in the same write. The lease must take the
 * rows the read returned, not pick the ready rows again: between the two statements time
 * passes, and a row can become ready (its retry wait or a lease ends). Picking again would
 * lease a row nobody was given (it waits out the lease, an attempt spent) and leave a given
 * one unleased (another relay takes it too: a duplicate). Written against mutation survivors
 * (TESTING.md).
 */
import { type Client, createClient, type Transaction } from "@libsql/client";
import { afterAll, describe, expect, it } from "vitest";
import { LibsqlStore } from "../../adapters/libsql.ts";
import { commitMessages } from "../conformance/store-conformance.ts";
import { dbPath, tempDir } from "./helpers.ts";

const tmp = tempDir();
afterAll(() => tmp.cleanup());

const claim = { batchSize: 3, leaseDuration: 60_000, ordering: "none" } as const;

/** True for the claim's lease write, prepared or inlined. */
const isLeaseWrite = (sql: string) => /^\s*UPDATE\b[\s\S]*\bSET claim_token = /.test(sql);

/**
 * A real file client whose write transactions run `between` once, inside the transaction,
 * right before the claim's lease write: what time passing between the read and the write
 * would do, made certain.
 */
function clientWithPause(client: Client, between: (tx: Transaction) => Promise<unknown>): Client {
  let pending = true;
  const wrapTx = (tx: Transaction): Transaction =>
    new Proxy(tx, {
      get(target, name) {
        if (name === "execute" || name === "executeMultiple") {
          return async (statement: string | { sql: string }, ...rest: unknown[]) => {
            const sql = typeof statement === "string" ? statement : statement.sql;
            if (pending && isLeaseWrite(sql)) {
              pending = false;
              await between(target);
            }
            return (target[name] as (...args: unknown[]) => Promise<unknown>)(statement, ...rest);
          };
        }
        const value = Reflect.get(target, name, target);
        return typeof value === "function" ? value.bind(target) : value;
      },
    });
  return new Proxy(client, {
    get(target, name) {
      if (name === "transaction") {
        return async (mode?: "write" | "read" | "deferred") => wrapTx(await target.transaction(mode));
      }
      const value = Reflect.get(target, name, target);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}

describe("LibsqlStore local claim: the lease takes the rows the read returned", () => {
  it("leases exactly the messages it hands out when an older message becomes ready in between", async () => {
    const real = createClient({ url: `file:${dbPath(tmp.dir)}` });
    try {
      const plain = new LibsqlStore(real);
      await plain.migrate();
      await commitMessages(
        plain,
        ["a", "b", "c", "d", "e", "f"].map((key) => ({ key, value: key })),
      );
      const table = `"${plain.table}"`;
      // a and b (the oldest) wait; they become ready between the claim's read and its write.
      await real.execute(`UPDATE ${table} SET available_at = 9e15 WHERE key IN ('a', 'b')`);
      const store = new LibsqlStore(
        clientWithPause(real, (tx) =>
          tx.execute(`UPDATE ${table} SET available_at = 0 WHERE key IN ('a', 'b')`),
        ),
      );
      const first = await store.fetchAndLock(claim);
      expect(first.messages.map((m) => m.key)).toEqual(["c", "d", "e"]);

      // Every message handed out is held by this claim: all three marks land.
      expect(
        await store.markAsSent(
          first.token,
          first.messages.map((m) => m.id),
        ),
      ).toBe(3);
      // The messages that became ready were leased by nobody: the next claim gets them at once.
      const second = await plain.fetchAndLock(claim);
      expect(second.messages.map((m) => m.key)).toEqual(["a", "b", "f"]);
    } finally {
      real.close();
    }
  });
});
