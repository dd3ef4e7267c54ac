/**
 * LISTEN on a node-postgres (or Neon) pool: one connection of the pool kept for it, and a new
 * one when it drops, after a growing pause (bounded), for as long as the listener lives.
 *
 * @module
 */
import type { PgPoolClientLike, PgPoolLike } from "./drivers/pg.ts";

/** The events of a pg connection a listener needs. */
interface ListeningClient extends PgPoolClientLike {
  on(event: "notification", listener: (message: { channel: string }) => void): unknown;
  on(event: "error" | "end", listener: (error?: Error) => void): unknown;
  off(event: string, listener: (...args: never[]) => void): unknown;
}

const MAX_PAUSE = 5_000;

/** `"name"` for LISTEN; the channel (see `notifyChannel`) never contains a double quote. */
export function quotedChannel(channel: string): string {
  return `"${channel}"`;
}

/**
 * Listens on `channel` through a connection of `pool` until the returned function is called.
 * Resolves once the first LISTEN ran, or failed (then it is reported and retried).
 */
export async function listenOnPool(
  pool: PgPoolLike,
  channel: string,
  onNotify: () => void,
  onError: (error: unknown) => void,
): Promise<() => Promise<void>> {
  let stopped = false;
  let current: ListeningClient | undefined;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let pause = 50;

  const retry = () => {
    if (stopped) return;
    timer = setTimeout(() => void connect(), pause);
    pause = Math.min(pause * 2, MAX_PAUSE);
  };

  // Takes the listener's handlers off its connection; `keepGuard` leaves the no-op 'error'
  // handler on a connection being destroyed (a late 'error' with no handler ends the process),
  // and takes it off one going back to the pool, where it would pile up checkout after checkout.
  let detach = (_keepGuard: boolean) => {};

  const drop = (client: ListeningClient, error: Error | undefined) => {
    if (current !== client) return;
    current = undefined;
    detach(true);
    // A dropped connection is destroyed, never handed back to the pool for reuse.
    client.release(error ?? true);
    if (stopped) return;
    onError(error ?? new Error(`the connection listening on ${channel} ended`));
    // The notifications missed meanwhile: a wake costs one pass, a missed one a whole period.
    onNotify();
    retry();
  };

  const connect = async (): Promise<void> => {
    let client: ListeningClient;
    try {
      client = (await pool.connect()) as ListeningClient;
    } catch (error) {
      onError(error);
      retry();
      return;
    }
    if (stopped) {
      client.release();
      return;
    }
    current = client;
    const notification = (message: { channel: string }) => {
      if (message.channel === channel) onNotify();
    };
    const failed = (error?: Error) => drop(client, error);
    const ended = () => drop(client, undefined);
    const guard = () => {};
    client.on("notification", notification);
    client.on("error", guard);
    client.on("error", failed);
    client.on("end", ended);
    detach = (keepGuard) => {
      client.off("notification", notification);
      client.off("error", failed);
      client.off("end", ended);
      if (!keepGuard) client.off("error", guard);
    };
    try {
      await client.query({ text: `LISTEN ${quotedChannel(channel)}` });
      pause = 50;
    } catch (error) {
      drop(client, error as Error);
    }
  };

  await connect();
  return async () => {
    stopped = true;
    if (timer !== undefined) clearTimeout(timer);
    const client = current;
    current = undefined;
    if (client === undefined) return;
    detach(true);
    try {
      await client.query({ text: `UNLISTEN ${quotedChannel(channel)}` });
      detach(false);
      client.release();
    } catch (error) {
      client.release(error as Error);
    }
  };
}
