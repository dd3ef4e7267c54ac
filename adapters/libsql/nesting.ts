/**
 * Catching `addMessage(client, ...)` called with the very client whose transaction is open
 * around the call (inside `store.withTransaction`, the client instead of `tx`). On a local file
 * that transaction holds the write lock and waits for the call, which waits for the lock: a
 * deadlock that used to end after `busyTimeout` as a retryable STORE_BUSY ("the next pass
 * retries"), which was false. It is a mistake in the caller's code and is reported at once.
 *
 * Only a call made INSIDE the transaction's callback is the mistake: another request of the
 * same server writing through the same client meanwhile is fine (it waits for the lock). The
 * callback's async context tells the two apart (`AsyncLocalStorage`, looked up without an
 * import so that runtimes without it still load this module); where the runtime has none,
 * the store can only tell after the wait, and says so then (see `LibsqlStore.addMessage`).
 *
 * @module
 */
import type { Client } from "@libsql/client";
import { ValidationError } from "../../mod.ts";

interface ContextStorage {
  run<R>(store: unknown, fn: () => R): R;
  getStore(): unknown;
}

function contextStorage(): ContextStorage | undefined {
  type Ctor = new () => ContextStorage;
  const global = globalThis as {
    process?: { getBuiltinModule?: (id: string) => unknown };
    AsyncLocalStorage?: Ctor;
  };
  try {
    // Node 20.16+, Deno, Bun: the module without an import. Otherwise (Node 20.0-20.15, and
    // workerd/Vercel Edge, which expose it as a global in Node-compatible modes) the global.
    const hooks = global.process?.getBuiltinModule?.("node:async_hooks") as
      | { AsyncLocalStorage?: Ctor }
      | undefined;
    const Storage = hooks?.AsyncLocalStorage ?? global.AsyncLocalStorage;
    return typeof Storage === "function" ? new Storage() : undefined;
  } catch {
    return undefined;
  }
}

const storage = contextStorage();
// Open withTransaction calls per client, for runtimes without async context.
const open = new WeakMap<Client, number>();

// What the callback's async context carries. `open` turns false when the transaction ends:
// work the callback started without awaiting it keeps the context after that, and may then
// write through the client (it no longer waits for anything).
interface Marker {
  client: Client;
  open: boolean;
}

/** Runs `fn` (a `withTransaction` callback) marked as inside a transaction of `client`. */
export async function insideTransaction<R>(client: Client, fn: () => Promise<R>): Promise<R> {
  open.set(client, (open.get(client) ?? 0) + 1);
  const marker: Marker = { client, open: true };
  try {
    // Through an async function: a callback that throws synchronously still ends here.
    return await (storage ? storage.run(marker, async () => fn()) : fn());
  } finally {
    marker.open = false;
    // Stryker disable next-line LogicalOperator: equivalent, the count never exceeds 1 (a second withTransaction on a client waits for the write lock the first holds)
    const n = (open.get(client) ?? 1) - 1;
    // Stryker disable next-line ConditionalExpression: equivalent, as above
    if (n === 0) open.delete(client);
    else open.set(client, n);
  }
}

/** Whether a `withTransaction` of the store on `client` is open (anywhere in the process). */
export function hasOpenTransaction(client: Client): boolean {
  return open.has(client);
}

/**
 * Throws a `ValidationError` (code `INVALID_MESSAGE`) when called from inside a
 * `withTransaction` callback on `client`: the write must go through that transaction.
 */
export function refuseClientInsideItsTransaction(client: Client): void {
  const marker = storage?.getStore() as Marker | undefined;
  if (marker?.client === client && marker.open) {
    throw new ValidationError(
      "addMessage was given the client while a store.withTransaction on that same client is open around the call: the transaction holds the write lock and waits for this call, so the write could never happen. Pass the transaction the callback received (tx) instead of the client; nothing was written",
      { code: "INVALID_MESSAGE" },
    );
  }
}
