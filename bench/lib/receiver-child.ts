/**
 * A loopback HTTP receiver in its own process (so it does not share the event loop it is
 * measuring): answers every POST with 204, counts deliveries per `webhook-id`.
 * Prints `{"port":N}` on stdout once listening. `GET /stats` answers
 * `{"requests":N,"unique":N,"duplicates":N}`; `POST /reset` clears the counts.
 */
import { createServer } from "node:http";
import { announceOnLoopback } from "./announce.ts";

let requests = 0;
const seen = new Map<string, number>();
let duplicates = 0;

const server = createServer((req, res) => {
  if (req.method === "GET" && req.url === "/stats") {
    res.writeHead(200, { "content-type": "application/json" });
    res.end(JSON.stringify({ requests, unique: seen.size, duplicates }));
    return;
  }
  if (req.url === "/reset") {
    requests = 0;
    duplicates = 0;
    seen.clear();
    res.writeHead(204).end();
    return;
  }
  // Drain the body so the connection can be reused, then answer.
  req.on("data", () => {});
  req.on("end", () => {
    requests += 1;
    const id = req.headers["webhook-id"];
    if (typeof id === "string") {
      const n = (seen.get(id) ?? 0) + 1;
      seen.set(id, n);
      if (n > 1) duplicates += 1;
    }
    res.writeHead(204).end();
  });
});
announceOnLoopback(server);
