/**
 * Benchmark 9's relay under another runtime (Bun, Deno): the web build of edge-outbox/http
 * (fetch), the same round as the Node side (bench/http-relay-work.ts). Usage:
 * `<runtime> bench/http-relay-child.ts <receiver url> <messages per round>`. Prints
 * `{"ready":true,"runtime":"..."}`, then for each line `go` on stdin one round's
 * `{"rate":N,"transport":"fetch"}`; exits at end of input.
 */
import process from "node:process";
import { createInterface } from "node:readline";
import { httpSender } from "../adapters/http.ts";
import { IN_FLIGHT, RELAY_SECRET, relayRound } from "./http-relay-work.ts";

const [url, count] = process.argv.slice(2);
if (!url || !count) throw new Error("usage: http-relay-child.ts <receiver url> <messages per round>");
const sender = httpSender({ url, secret: RELAY_SECRET, concurrency: IN_FLIGHT });
const versions = process.versions as Record<string, string | undefined>;
const runtime = versions.bun
  ? `Bun ${versions.bun}`
  : versions.deno
    ? `Deno ${versions.deno}`
    : `Node ${process.version}`;
console.log(JSON.stringify({ ready: true, runtime }));
for await (const line of createInterface({ input: process.stdin })) {
  if (line.trim() !== "go") continue;
  const rate = await relayRound(Number(count), sender);
  console.log(JSON.stringify({ rate, transport: sender.transport }));
}
process.exit(0);
