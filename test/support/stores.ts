/** Stores for core tests that must hold on every store: MemoryStore and a real libSQL file. */
import { MemoryStore } from "../../adapters/memory.ts";
import { type Message, StoreError, type TransactionalStore } from "../../mod.ts";
import { dbPath, openStore } from "../libsql/helpers.ts";

/** A store of any transaction type, as the core sees it. */
export type AnyStore = TransactionalStore<unknown>;

/** A fresh store and how to close it. */
export interface OpenedStore {
  store: AnyStore;
  close: () => Promise<void>;
}

/** `[name, open]` for a fresh MemoryStore and a fresh migrated LibsqlStore file in `dir`. */
export function everyStore(dir: string): Array<[string, () => Promise<OpenedStore>]> {
  return [
    ["MemoryStore", async () => ({ store: new MemoryStore() as AnyStore, close: async () => {} })],
    [
      "LibsqlStore",
      async () => {
        const { store, close } = await openStore(`file:${dbPath(dir)}`);
        return { store: store as unknown as AnyStore, close };
      },
    ],
  ];
}

/** `store` whose `fetchAndLock` fails with a retryable StoreError the first `failures` times. */
export function failingClaims<S extends object>(store: S, failures: number): S {
  let left = failures;
  return new Proxy(store, {
    get(target, name, receiver) {
      if (name === "fetchAndLock" && left > 0) {
        return async () => {
          left -= 1;
          throw new StoreError("database is locked", { retryable: true });
        };
      }
      const value = Reflect.get(target, name, receiver);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}

/** `store` whose method `name` always rejects with `error`; every other method works. */
export function throwingMethod<S extends object>(store: S, name: string & keyof S, error: () => unknown): S {
  return new Proxy(store, {
    get(target, property) {
      if (property === name) {
        return async () => {
          throw error();
        };
      }
      const value = Reflect.get(target, property);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}

/**
 * The messages still in `store`, with their retries: claimed and given back at once (a store
 * without `release` keeps them leased for 30 s).
 */
export async function remaining(store: AnyStore): Promise<Message[]> {
  const claim = await store.fetchAndLock({ batchSize: 1000, leaseDuration: 30_000, ordering: "none" });
  await store.release?.(
    claim.token,
    claim.messages.map((m) => m.id),
  );
  return claim.messages;
}
