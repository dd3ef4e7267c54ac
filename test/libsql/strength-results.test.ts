/**
 * LibsqlStore refuses a driver's answer that lacks statement results (a client object that is
 * not `@libsql/client`, or a server that drops results) instead of counting from the wrong
 * result. Remote client (Hrana over HTTP to the stand-in in front of a real file), its `batch`
 * answer cut short. Written against mutation survivors (TESTING.md).
 */
import { type Client, createClient } from "@libsql/client";
import { afterAll, describe, expect, it } from "vitest";
import { LibsqlStore } from "../../adapters/libsql.ts";
import { StoreError } from "../../mod.ts";
import { commitMessages } from "../conformance/store-conformance.ts";
import { startHranaServer } from "../support/hrana-server.ts";
import { dbPath, tempDir } from "./helpers.ts";

const tmp = tempDir();
afterAll(() => tmp.cleanup());

const claim = { batchSize: 10, leaseDuration: 30_000, ordering: "none" } as const;

/** `client` whose `batch` answers leave out their last `drop` results while `drop` is set. */
function cutShort(client: Client): { client: Client; drop: number } {
  const state = {
    drop: 0,
    client: new Proxy(client, {
      get(target, name) {
        if (name === "batch") {
          return async (...args: Parameters<Client["batch"]>) => {
            const results = await target.batch(...args);
            return results.slice(0, results.length - state.drop);
          };
        }
        const value = Reflect.get(target, name, target);
        return typeof value === "function" ? value.bind(target) : value;
      },
    }),
  };
  return state;
}

describe("LibsqlStore on a driver that drops statement results", () => {
  it("fails the pass with a StoreError that is not retried, saying how many results came back", async () => {
    const server = await startHranaServer(dbPath(tmp.dir));
    const real = createClient({ url: server.url });
    try {
      const cut = cutShort(real);
      const store = new LibsqlStore(cut.client);
      await store.migrate();
      await commitMessages(store, [{ key: "a", value: "a" }]);
      const first = await store.fetchAndLock(claim);
      cut.drop = 1;
      const failures = [
        // The claim alone: its write and its read.
        [() => store.fetchAndLock(claim), "expected at least 2 statement results, got 1"],
        // A retry mark first, then the claim.
        [
          () =>
            store.recordAndFetch(
              {
                token: first.token,
                sent: [],
                retry: [{ id: first.messages[0]!.id, delay: 0, availableAt: new Date(), error: "x" }],
                dead: [],
              },
              claim,
            ),
          "expected at least 3 statement results, got 2",
        ],
      ] as const;
      for (const [call, message] of failures) {
        const error = await call().then(
          () => undefined,
          (e: unknown) => e,
        );
        expect(error).toBeInstanceOf(StoreError);
        expect((error as StoreError).message).toContain(message);
        expect((error as StoreError).retryable).toBe(false);
      }
      cut.drop = 0;
      // The refused passes did run on the server: the last one's claim holds the message until
      // its lease ends, so no other claim takes it twice.
      expect((await store.fetchAndLock(claim)).messages).toEqual([]);
    } finally {
      real.close();
      await server.close();
    }
  });
});
