/**
 * The road not taken, kept for the measurement: an `HttpTransport` over undici's `request` with
 * a keep-alive `Agent` (a Pool per origin), same contract as adapters/http/transport-node.ts.
 * Benchmark 9 runs the relay through it beside the node:http transport, so the choice between
 * the two rests on the end-to-end figure, not only on the clients alone.
 */
import { Agent, request } from "undici";
import {
  type HttpTransport,
  joinChunks,
  MAX_RESPONSE_BYTES,
  type TransportResponse,
} from "../adapters/http/transport.ts";

/** undici's `request` through one keep-alive Agent. */
export function undiciTransport(): HttpTransport {
  const dispatcher = new Agent({ keepAliveTimeout: 4_000 });
  return {
    name: "undici",
    async request({ method, url, headers, body, signal }): Promise<TransportResponse> {
      const res = await request(url, { dispatcher, method: method as "POST", headers, body, signal });
      const chunks: Uint8Array[] = [];
      let total = 0;
      try {
        for await (const chunk of res.body as AsyncIterable<Uint8Array>) {
          if (total + chunk.byteLength > MAX_RESPONSE_BYTES) {
            res.body.destroy();
            break;
          }
          chunks.push(chunk);
          total += chunk.byteLength;
        }
      } catch {
        // Cut short: the status decided.
      }
      return {
        status: res.statusCode,
        header: (name) => {
          const value = res.headers[name];
          return Array.isArray(value) ? value.join(", ") : value;
        },
        body: joinChunks(chunks, total),
      };
    },
  };
}
