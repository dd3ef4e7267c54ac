/**
 * The `httpSender` of the Worker fixtures whose tests count exact deliveries and retries: no
 * request may time out on a loaded machine (a timed-out request the receiver did get is sent
 * again), and a receiver that refuses first attempts on purpose must not open the breaker (which
 * would defer every message). Pair it with `sendTimeout: 5_000`.
 */
import { httpSender } from "../../adapters/http.ts";
import type { Sender } from "../../mod.ts";

export function exactCountSender(env: { WEBHOOK_URL: string; WEBHOOK_SECRET: string }): Sender {
  return httpSender({
    url: env.WEBHOOK_URL,
    secret: env.WEBHOOK_SECRET,
    requestTimeout: 4_000,
    breaker: false,
  });
}
