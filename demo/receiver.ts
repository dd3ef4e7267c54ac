/**
 * The demo's webhook receiver: a node:http server on 127.0.0.1 that checks every Standard
 * Webhooks signature with `verifyWebhook` and fails on purpose now and then, deterministically:
 * - the first attempt of every 7th order gets `503` with `Retry-After: 0` (retried at once),
 * - the second attempt of every 21st order gets `503` without it (retried after the backoff),
 * - the poisoned order (currency "XXX") gets `422`, a permanent failure: that message goes dead.
 * It counts deliveries per `webhook-id`, so a duplicate would show.
 */
import { createServer, type IncomingMessage, type Server } from "node:http";
import { verifyWebhook, WebhookVerificationError } from "../adapters/http.ts";

/** What the receiver saw. */
export interface ReceiverCounts {
  /** Requests answered, whatever the answer. */
  requests: number;
  /** Distinct messages accepted (2xx). */
  delivered: number;
  /** Accepted again after an earlier 2xx for the same webhook-id (should stay 0). */
  duplicates: number;
  /** Answered 503 on purpose. */
  failedOnPurpose: number;
  /** Answered 422 on purpose. */
  rejected: number;
  /** Requests whose signature did not verify (should stay 0). */
  badSignatures: number;
}

/** A running receiver. */
export interface DemoReceiver {
  url: string;
  counts: ReceiverCounts;
  close(): Promise<void>;
}

async function readBody(req: IncomingMessage): Promise<Uint8Array> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** Starts the receiver on an ephemeral loopback port. */
export async function startReceiver(secret: string): Promise<DemoReceiver> {
  const counts: ReceiverCounts = {
    requests: 0,
    delivered: 0,
    duplicates: 0,
    failedOnPurpose: 0,
    rejected: 0,
    badSignatures: 0,
  };
  const attempts = new Map<string, number>();
  const accepted = new Set<string>();

  const server: Server = createServer((req, res) => {
    handle(req)
      .then(([status, headers]) => res.writeHead(status, headers).end())
      .catch(() => res.writeHead(500).end());
  });

  async function handle(req: IncomingMessage): Promise<[number, Record<string, string>]> {
    counts.requests += 1;
    let id: string;
    let event: { order: { id: number; currency: string } };
    try {
      const hook = await verifyWebhook({ headers: req.headers, body: await readBody(req) }, secret);
      id = hook.id;
      event = hook.json();
    } catch (error) {
      if (!(error instanceof WebhookVerificationError)) throw error;
      counts.badSignatures += 1;
      return [401, {}];
    }
    const attempt = (attempts.get(id) ?? 0) + 1;
    attempts.set(id, attempt);
    const order = event.order.id;
    if (event.order.currency === "XXX") {
      counts.rejected += 1;
      return [422, {}];
    }
    if (order % 7 === 0 && attempt === 1) {
      counts.failedOnPurpose += 1;
      return [503, { "retry-after": "0" }];
    }
    if (order % 21 === 0 && attempt === 2) {
      counts.failedOnPurpose += 1;
      return [503, {}];
    }
    if (accepted.has(id)) counts.duplicates += 1;
    else {
      accepted.add(id);
      counts.delivered += 1;
    }
    return [204, {}];
  }

  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  if (!address || typeof address === "string") throw new Error("receiver has no port");
  return {
    url: `http://127.0.0.1:${address.port}/webhooks/orders`,
    counts,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections();
        server.close((error) => (error ? reject(error) : resolve()));
      }),
  };
}
