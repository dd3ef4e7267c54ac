/** The loopback receiver process (receiver-child.ts), from the parent's side. */
import type { ChildProcess } from "node:child_process";
import { benchFile, spawnTs, stopChild } from "./child.ts";

/** Deliveries the receiver has seen. */
export interface ReceiverStats {
  requests: number;
  unique: number;
  duplicates: number;
}

/** A running receiver: its URL, counts, and `close()`. */
export interface Receiver {
  url: string;
  stats(): Promise<ReceiverStats>;
  reset(): Promise<void>;
  close(): Promise<void>;
}

/** Starts the receiver in a child process on 127.0.0.1 and an ephemeral port. */
export async function startReceiver(): Promise<Receiver> {
  const { child, hello } = await spawnTs(benchFile("lib/receiver-child.ts"));
  const { port } = hello as { port: number };
  const base = `http://127.0.0.1:${port}`;
  return {
    url: `${base}/hook`,
    async stats() {
      const res = await fetch(`${base}/stats`);
      return (await res.json()) as ReceiverStats;
    },
    async reset() {
      await (await fetch(`${base}/reset`, { method: "POST" })).arrayBuffer();
    },
    close: () => stopChild(child as ChildProcess),
  };
}
