/**
 * A loopback receiver in its own process that misbehaves like a real endpoint under load:
 * answers 500 to a share of requests, resets the connection of others, and holds others open
 * for `hangMs` before answering. Which request gets which fate is decided per delivery attempt
 * from a seeded generator, so runs are comparable. Prints `{"port":N}` once listening.
 * `GET /stats` answers `{"delivered":N,"requests":N}` (delivered: distinct `webhook-id`s answered
 * 2xx); `GET /stats?nth=K` adds `"at"`: when the K-th distinct id was answered 2xx, in ms since
 * the epoch (`performance.timeOrigin + performance.now()`, sub-millisecond, comparable with the
 * same figure in another process on this machine), or null before that; `POST /config` with `{"fail":0.1,"reset":0.02,"hang":0.04,"hangMs":1500}` sets the mix
 * and clears the counts.
 */
import { createServer } from "node:http";
import { announceOnLoopback } from "./announce.ts";

let mix = { fail: 0, reset: 0, hang: 0, hangMs: 0 };
let requests = 0;
const delivered = new Set<string>();
// When each distinct id was first answered 2xx, in order: the bench reads the time of the
// K-th delivery from here rather than from a poll of the count.
const deliveredAt: number[] = [];
// Mulberry32: a small seeded generator, reset with each config.
let seed = 1;
function random(): number {
  seed = (seed + 0x6d2b79f5) | 0;
  let t = seed;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}

const server = createServer((req, res) => {
  if (req.url?.startsWith("/stats")) {
    const nth = Number(new URL(req.url, "http://receiver").searchParams.get("nth") ?? Number.NaN);
    const at = nth >= 1 ? (deliveredAt[nth - 1] ?? null) : undefined;
    res.writeHead(200, { "content-type": "application/json" });
    res.end(JSON.stringify({ delivered: delivered.size, requests, at }));
    return;
  }
  const chunks: Buffer[] = [];
  req.on("data", (chunk: Buffer) => chunks.push(chunk));
  req.on("end", () => {
    if (req.url === "/config") {
      mix = JSON.parse(Buffer.concat(chunks).toString("utf8"));
      requests = 0;
      delivered.clear();
      deliveredAt.length = 0;
      seed = 1;
      res.writeHead(204).end();
      return;
    }
    requests += 1;
    const roll = random();
    if (roll < mix.reset) {
      req.socket.destroy();
      return;
    }
    if (roll < mix.reset + mix.fail) {
      res.writeHead(500).end("unavailable");
      return;
    }
    const answer = () => {
      if (res.destroyed) return;
      const id = req.headers["webhook-id"];
      if (typeof id === "string" && !delivered.has(id)) {
        delivered.add(id);
        deliveredAt.push(performance.timeOrigin + performance.now());
      }
      res.writeHead(204).end();
    };
    if (roll < mix.reset + mix.fail + mix.hang) {
      const timer = setTimeout(answer, mix.hangMs);
      res.on("close", () => clearTimeout(timer));
    } else answer();
  });
});
announceOnLoopback(server);
