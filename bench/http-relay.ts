/**
 * Benchmark 9 (issue 15): HTTP delivery on Node at the speed Node can do.
 *
 * Part 1, the clients alone: 250-byte POSTs, 8 in flight, to a receiver in its own process,
 * through `node:http` with a keep-alive Agent, undici's `request` with a keep-alive Pool, and
 * the global `fetch`: the measurement behind the choice of the Node transport.
 *
 * Part 2, end to end: `Outbox.tick()` draining a MemoryStore through a signed `httpSender`
 * (8 in flight) to the same receiver, on the Node build (node:http) against the web build
 * (fetch) and against a hand-written relay that uses fetch; the web build under Bun and Deno
 * beside them (child processes, interleaved round by round with the Node sides); and, for the
 * choice of transport only, httpSender over undici's `request` (bench/http-relay-undici.ts).
 */
import { type ChildProcess, spawn } from "node:child_process";
import { Agent, request as httpRequest } from "node:http";
import { createInterface } from "node:readline";
import { Pool, request as undiciRequest } from "undici";
import { createHttpSender } from "../adapters/http/sender.ts";
import { httpSender as fetchBuildSender } from "../adapters/http.ts";
import { httpSender as nodeBuildSender } from "../adapters/http-node.ts";
import type { MemoryStore } from "../adapters/memory.ts";
import { undiciTransport } from "./http-relay-undici.ts";
import {
  BODY_BYTES,
  IN_FLIGHT,
  loadedOutbox,
  RELAY_BATCH,
  RELAY_SECRET,
  relayBody,
  relayRound,
} from "./http-relay-work.ts";
import { benchFile, nextJson, stopChild } from "./lib/child.ts";
import { startReceiver } from "./lib/receiver.ts";
import { type Benchmark, num, ratio, type Section } from "./lib/report.ts";
import { interleave, median } from "./lib/stats.ts";

/** Runs `work()` `n` times with `IN_FLIGHT` in flight; requests per second. */
async function requestsPerSecond(n: number, work: () => Promise<void>): Promise<number> {
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: IN_FLIGHT }, async () => {
      while (next++ < n) await work();
    }),
  );
  return n / ((performance.now() - started) / 1000);
}

/** The three clients of part 1, each doing what a sender must: a signal per request, body drained. */
function clients(url: string) {
  const target = new URL(url);
  const body = new TextEncoder().encode(relayBody(0));
  let id = 0;
  const headers = () => ({ "content-type": "application/json", "webhook-id": `c-${++id}` });
  const agent = new Agent({ keepAlive: true, timeout: 4_000 });
  const pool = new Pool(target.origin, { connections: IN_FLIGHT, keepAliveTimeout: 4_000 });
  const check = (status: number) => {
    if (status < 200 || status >= 300) throw new Error(`receiver answered ${status}`);
  };
  return {
    nodeHttp: () =>
      new Promise<void>((resolve, reject) => {
        const signal = new AbortController().signal;
        const req = httpRequest(
          {
            hostname: target.hostname,
            port: target.port,
            path: target.pathname,
            method: "POST",
            agent,
            signal,
            headers: { ...headers(), "content-length": String(body.byteLength) },
          },
          (res) => {
            res.on("data", () => {});
            res.on("end", () => {
              check(res.statusCode ?? 0);
              resolve();
            });
          },
        );
        req.on("error", reject);
        req.end(body);
      }),
    undici: async () => {
      const res = await undiciRequest(url, {
        dispatcher: pool,
        method: "POST",
        headers: headers(),
        body,
        signal: new AbortController().signal,
      });
      await res.body.dump();
      check(res.statusCode);
    },
    fetch: async () => {
      const res = await fetch(url, {
        method: "POST",
        headers: headers(),
        body,
        redirect: "manual",
        signal: new AbortController().signal,
      });
      await res.arrayBuffer();
      check(res.status);
    },
    async close() {
      agent.destroy();
      await pool.close();
    },
  };
}

/**
 * The baseline of part 2: what a hand-written relay on the same store does, with fetch. Claim a
 * batch, sign each message (Standard Webhooks HMAC through crypto.subtle), POST it with the
 * batch's deadline as a signal, 8 in flight, drain the answer, mark the sent ones.
 */
async function handWrittenRelay(store: MemoryStore, url: string, key: CryptoKey): Promise<number> {
  const encoder = new TextEncoder();
  let sent = 0;
  for (let pass = 0; pass < 1_000_000; pass++) {
    const claim = await store.fetchAndLock({
      batchSize: RELAY_BATCH,
      leaseDuration: 60_000,
      ordering: "none",
    });
    const batch = claim.messages;
    if (batch.length === 0) return sent;
    const signal = new AbortController().signal;
    const timestamp = String(Math.floor(Date.now() / 1000));
    const ok: string[] = [];
    let next = 0;
    await Promise.all(
      Array.from({ length: Math.min(IN_FLIGHT, batch.length) }, async () => {
        while (next < batch.length) {
          const m = batch[next++]!;
          const prefix = encoder.encode(`${m.id}.${timestamp}.`);
          const content = new Uint8Array(prefix.length + m.value.length);
          content.set(prefix);
          content.set(m.value, prefix.length);
          const mac = await crypto.subtle.sign("HMAC", key, content);
          const res = await fetch(url, {
            method: "POST",
            headers: {
              "content-type": "application/json",
              "webhook-id": m.id,
              "webhook-timestamp": timestamp,
              "webhook-signature": `v1,${Buffer.from(mac).toString("base64")}`,
            },
            body: content.subarray(prefix.length),
            redirect: "manual",
            signal,
          });
          await res.arrayBuffer();
          if (res.ok) ok.push(m.id);
        }
      }),
    );
    sent += await store.markAsSent(claim.token, ok);
  }
  return sent;
}

/** A relay child under `command` (bun or deno): ask it for a round, read back its rate. */
interface RuntimeChild {
  runtime: string;
  round(): Promise<number>;
  close(): Promise<void>;
}

async function startRuntimeChild(command: string, args: string[]): Promise<RuntimeChild> {
  const child: ChildProcess = spawn(command, args, {
    stdio: ["pipe", "pipe", "inherit"],
    env: {
      ...process.env,
      DENO_NO_UPDATE_CHECK: "1",
      DO_NOT_TRACK: "1",
      BUN_DISABLE_TELEMETRY: "1",
      NO_COLOR: "1",
    },
  });
  const lines = createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
  const exited = new Promise<never>((_, reject) =>
    child.once("exit", (code) => reject(new Error(`${command} relay child exited with ${code}`))),
  );
  exited.catch(() => {});
  const hello = await Promise.race([nextJson<{ runtime: string }>(lines), exited]);
  return {
    runtime: hello.runtime,
    async round() {
      child.stdin!.write("go\n");
      const { rate, transport } = await Promise.race([
        nextJson<{ rate: number; transport: string }>(lines),
        exited,
      ]);
      if (transport !== "fetch") throw new Error(`${hello.runtime} relayed through ${transport}, not fetch`);
      return rate;
    },
    async close() {
      child.stdin!.end();
      await stopChild(child);
    },
  };
}

function bin(name: string): string {
  return benchFile(`../node_modules/.bin/${name}`);
}

export const httpRelayBenchmark: Benchmark = {
  id: 9,
  slug: "http-relay",
  title: "HTTP relay on Node: node:http transport vs fetch (and Bun, Deno)",
  async run({ quick }): Promise<Section> {
    const n = quick ? 500 : 1_000;
    const plan = quick ? { warmup: 1, rounds: 3 } : { warmup: 1, rounds: 9 };
    const receiver = await startReceiver();
    const keyBytes = Buffer.from(RELAY_SECRET.slice("whsec_".length), "base64");
    const hmacKey = await crypto.subtle.importKey("raw", keyBytes, { name: "HMAC", hash: "SHA-256" }, false, [
      "sign",
    ]);
    const children: RuntimeChild[] = [];
    const c = clients(receiver.url);
    try {
      // Part 1: the clients alone.
      const [nodeHttp, undici, fetched] = (await interleave(plan, [
        () => requestsPerSecond(n, c.nodeHttp),
        () => requestsPerSecond(n, c.undici),
        () => requestsPerSecond(n, c.fetch),
      ])) as [number[], number[], number[]];

      // Part 2: end to end, Node's two builds, the hand-written relay, Bun and Deno.
      const child = benchFile("http-relay-child.ts");
      children.push(await startRuntimeChild(bin("bun"), [child, receiver.url, String(n)]));
      children.push(
        await startRuntimeChild(bin("deno"), [
          "run",
          "--config",
          benchFile("../test/runtimes/deno/deno.json"),
          "--allow-net=127.0.0.1",
          "--allow-read",
          "--allow-env",
          child,
          receiver.url,
          String(n),
        ]),
      );
      const nodeSender = nodeBuildSender({ url: receiver.url, secret: RELAY_SECRET, concurrency: IN_FLIGHT });
      const fetchSender = fetchBuildSender({
        url: receiver.url,
        secret: RELAY_SECRET,
        concurrency: IN_FLIGHT,
      });
      const undiciSender = createHttpSender(
        { url: receiver.url, secret: RELAY_SECRET, concurrency: IN_FLIGHT },
        undiciTransport(),
      );
      if (nodeSender.transport !== "node:http" || fetchSender.transport !== "fetch") {
        throw new Error(`wrong transports: ${nodeSender.transport}, ${fetchSender.transport}`);
      }
      // Each round on its own: the receiver must see each of the round's messages exactly once.
      const exactlyOnce = (round: () => Promise<number>) => async () => {
        await receiver.reset();
        const rate = await round();
        const seen = await receiver.stats();
        if (seen.unique !== n || seen.duplicates !== 0) {
          throw new Error(`receiver saw ${seen.unique} of ${n} messages, ${seen.duplicates} duplicates`);
        }
        return rate;
      };
      const [viaNode, viaFetch, hand, bun, deno, viaUndici] = (await interleave(plan, [
        exactlyOnce(() => relayRound(n, nodeSender)),
        exactlyOnce(() => relayRound(n, fetchSender)),
        exactlyOnce(async () => {
          // The store is loaded the same way; only the drain is timed.
          const { store } = await loadedOutbox(n, fetchSender);
          const started = performance.now();
          const sent = await handWrittenRelay(store, receiver.url, hmacKey);
          if (sent !== n) throw new Error(`hand-written relay sent ${sent} of ${n}`);
          return n / ((performance.now() - started) / 1000);
        }),
        exactlyOnce(() => children[0]!.round()),
        exactlyOnce(() => children[1]!.round()),
        exactlyOnce(() => relayRound(n, undiciSender)),
      ])) as [number[], number[], number[], number[], number[], number[]];

      const vsFetch = median(viaNode) / median(viaFetch);
      const vsHand = median(viaNode) / median(hand);
      const node = process.version;
      return {
        id: 9,
        title: this.title,
        target: "Node transport >= 2.0x the fetch transport and >= 1.5x a hand-written relay that uses fetch",
        verdict: vsFetch >= 2 && vsHand >= 1.5 ? "met" : "missed",
        tables: [
          {
            caption: "The clients alone (part 1):",
            header: ["client (Node " + node + ")", "requests/s", "vs fetch"],
            rows: [
              [
                "node:http, keep-alive Agent",
                num(median(nodeHttp)),
                ratio(median(nodeHttp) / median(fetched)),
              ],
              [
                "undici request, keep-alive Pool",
                num(median(undici)),
                ratio(median(undici) / median(fetched)),
              ],
              ["global fetch", num(median(fetched)), ratio(1)],
            ],
          },
          {
            caption: "End to end, signed (part 2):",
            header: ["relay", "runtime", "transport", "messages/s", "Node transport vs this"],
            rows: [
              [
                "Outbox + httpSender (node build)",
                `Node ${node}`,
                "node:http",
                num(median(viaNode)),
                ratio(1),
              ],
              [
                "Outbox + httpSender (web build)",
                `Node ${node}`,
                "fetch",
                num(median(viaFetch)),
                ratio(vsFetch),
              ],
              ["hand-written relay", `Node ${node}`, "fetch", num(median(hand)), ratio(vsHand)],
              [
                "Outbox + httpSender over undici (not shipped; for the choice)",
                `Node ${node}`,
                "undici request, Agent",
                num(median(viaUndici)),
                ratio(median(viaNode) / median(viaUndici)),
              ],
              [
                "Outbox + httpSender (web build)",
                children[0]!.runtime,
                "fetch",
                num(median(bun)),
                ratio(median(viaNode) / median(bun)),
              ],
              [
                "Outbox + httpSender (web build)",
                children[1]!.runtime,
                "fetch",
                num(median(deno)),
                ratio(median(viaNode) / median(deno)),
              ],
            ],
          },
        ],
        notes: [
          `${num(n)} requests or messages per round, ${BODY_BYTES}-byte bodies, ${IN_FLIGHT} in flight, median of ${plan.rounds} rounds after ${plan.warmup} warm-up, the sides of each part interleaved (order rotated per round). The receiver (node:http, answers 204) runs in its own process; Bun and Deno relay from their own processes, driven round by round from this one.`,
          "Part 1: one POST per request with content-type and webhook-id, a fresh AbortSignal per request (a sender's deadline), the answer drained; one keep-alive Agent / one Pool of 8 connections.",
          `Part 2: a MemoryStore loaded with the round's messages (not timed), then drained by Outbox.tick() (batchSize ${RELAY_BATCH}) through httpSender with a Standard Webhooks secret. Hand-written relay: fetchAndLock ${RELAY_BATCH}, per message an HMAC-SHA256 through crypto.subtle and a fetch with the batch's AbortSignal, 8 in flight, body drained, then markAsSent of the 2xx ones: a relay with none of the library's bookkeeping.`,
        ],
      };
    } finally {
      for (const child of children) await child.close();
      await c.close();
      await receiver.close();
    }
  },
};
