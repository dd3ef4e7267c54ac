/**
 * verifyWebhook in a real Node server (127.0.0.1), given `req` itself as the body: what an
 * unauthenticated caller can make it read, hold, or spend CPU on.
 */
import { createServer, type IncomingMessage } from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { signWebhook, verifyWebhook, WebhookVerificationError } from "../../adapters/http.ts";
import { DEFAULT_MAX_MESSAGE_BYTES } from "../../mod.ts";
import { upload } from "./upload.ts";

const SECRET = `whsec_${Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString("base64")}`;
const WRONG_V1 = `v1,${Buffer.alloc(32, 7).toString("base64")}`;
const MiB = 1024 * 1024;

interface Verdict {
  status: number;
  reason?: string;
  /** Bytes Node had read from the socket when verifyWebhook answered. */
  bytesRead: number;
  body?: string;
}

let server: ReturnType<typeof createServer>;
let origin: string;
let verdicts: Verdict[];

beforeEach(async () => {
  verdicts = [];
  server = createServer(async (req: IncomingMessage, res) => {
    const socket = req.socket; // null once the request is destroyed
    try {
      const hook = await verifyWebhook({ headers: req.headers, body: req }, SECRET);
      verdicts.push({ status: 204, bytesRead: socket.bytesRead, body: hook.text() });
      res.writeHead(204).end();
    } catch (error) {
      const reason = error instanceof WebhookVerificationError ? error.reason : String(error);
      const status =
        reason === "body_too_large" ? 413 : error instanceof WebhookVerificationError ? 401 : 500;
      verdicts.push({ status, reason, bytesRead: socket.bytesRead });
      res.writeHead(status, { connection: "close" }).end();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterEach(async () => {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

const now = () => String(Math.floor(Date.now() / 1000));

describe("verifyWebhook({ headers: req.headers, body: req }) in a Node server", () => {
  it("verifies a signed delivery read straight from the request", async () => {
    const body = JSON.stringify({ hello: "world", pad: "x".repeat(200_000) });
    const signed = await signWebhook({ id: "msg_node_1", body }, SECRET);
    const response = await fetch(`${origin}/hook`, { method: "POST", headers: signed, body });
    expect(response.status).toBe(204);
    expect(verdicts[0]).toMatchObject({ status: 204, body });
  });

  it("reads no body without the webhook headers: 256 MiB offered, almost nothing pulled", async () => {
    const { status, sent } = await upload(`${origin}/hook`, {}, 256);
    expect([401, 0]).toContain(status);
    expect(verdicts[0]).toMatchObject({ status: 401, reason: "missing_headers" });
    // Socket buffers only: the body was never read.
    expect(verdicts[0]!.bytesRead).toBeLessThan(2 * MiB);
    expect(sent).toBeLessThan(64);
  });

  it("reads no body without a well-formed v1 signature", async () => {
    const headers = { "webhook-id": "a", "webhook-timestamp": now(), "webhook-signature": "v1,garbage" };
    await upload(`${origin}/hook`, headers, 64);
    expect(verdicts[0]).toMatchObject({ status: 401, reason: "invalid_signature" });
    expect(verdicts[0]!.bytesRead).toBeLessThan(2 * MiB);
  });

  it("stops at maxBodyBytes (1 MiB) and closes the request: the rest of 256 MiB is never received", async () => {
    const headers = { "webhook-id": "a", "webhook-timestamp": now(), "webhook-signature": WRONG_V1 };
    const { status, sent } = await upload(`${origin}/hook`, headers, 256);
    // The request is destroyed with its connection: the client sees the 413 or a reset.
    expect([413, 0]).toContain(status);
    expect(verdicts[0]).toMatchObject({ status: 413, reason: "body_too_large" });
    expect(verdicts[0]!.bytesRead).toBeLessThan(DEFAULT_MAX_MESSAGE_BYTES + 2 * MiB);
    expect(sent).toBeLessThan(64);
  });

  it("refuses a declared content-length over the bound without reading, and answers 413", async () => {
    const body = new Uint8Array(DEFAULT_MAX_MESSAGE_BYTES + 1);
    const signed = await signWebhook({ id: "big", body }, SECRET);
    const response = await fetch(`${origin}/hook`, { method: "POST", headers: signed, body });
    expect(response.status).toBe(413);
    expect(verdicts[0]).toMatchObject({ status: 413, reason: "body_too_large" });
  });

  it("answers a webhook-signature of commas quickly: no regex backtracking blocks the event loop", async () => {
    // ",,,,…,x" made /,+$/ backtrack quadratically: 16 KB blocked the loop for seconds.
    /** The longest the event loop was held up (beyond its 10 ms tick) while one request ran. */
    const blocked = async (commas: number): Promise<number> => {
      let last = performance.now();
      let worst = 0;
      const timer = setInterval(() => {
        const t = performance.now();
        worst = Math.max(worst, t - last - 10);
        last = t;
      }, 10);
      try {
        const headers = {
          "webhook-id": "a",
          "webhook-timestamp": now(),
          "webhook-signature": `${",".repeat(commas)}x`,
        };
        const response = await fetch(`${origin}/hook`, { method: "POST", headers });
        expect(response.status).toBe(401);
      } finally {
        clearInterval(timer);
      }
      return worst;
    };
    for (const commas of [8_000, 16_000]) {
      // The least of a few runs: what the request costs, not a stall a loaded machine (GC, other
      // processes) adds to one of them. Generous still; the quadratic version took 250 ms and
      // 1.5 s on every run.
      const runs: number[] = [];
      for (let run = 0; run < 3; run++) runs.push(await blocked(commas));
      expect(Math.min(...runs)).toBeLessThan(200);
    }
    expect(verdicts.map((v) => v.reason)).toEqual(Array(6).fill("invalid_signature"));
  });

  it("parses the longest webhook-signature it accepts in linear time", async () => {
    const signed = await signWebhook({ id: "m", body: "b" }, SECRET);
    const hostile = [
      `${",".repeat(8 * 1024 - 1)}x`,
      `v1,${",".repeat(8 * 1024 - 4)}x`,
      "v1, ".repeat(2 * 1024),
    ];
    for (const signature of hostile) {
      let fastest = Number.POSITIVE_INFINITY;
      // The fastest of a few runs: what the work costs, not what a loaded machine adds.
      for (let run = 0; run < 5; run++) {
        const started = performance.now();
        const error = await verifyWebhook(
          { headers: { ...signed, "webhook-signature": signature }, body: "b" },
          SECRET,
        ).catch((e: unknown) => e);
        fastest = Math.min(fastest, performance.now() - started);
        expect((error as WebhookVerificationError).reason).toBe("invalid_signature");
      }
      expect(fastest).toBeLessThan(50);
    }
  });
});
