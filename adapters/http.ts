/**
 * `edge-outbox/http`: deliver outbox messages as signed HTTP requests (Standard Webhooks),
 * and verify them on the receiving side with {@link verifyWebhook}. Web standards only
 * (`fetch`, Web Crypto): runs on Workers, Deno, Bun, Node 20+ and Vercel. On Node, the package
 * resolves to `http-node.ts` instead (the `node` export condition), whose `httpSender` sends
 * through `node:http` keep-alive agents.
 *
 * @module
 */
export { DEFAULT_CONTENT_TYPE, type HttpSenderOptions } from "./http/options.ts";
export { type HttpSender, httpSender } from "./http/sender.ts";
export { signWebhook, type WebhookSecret, type WebhookSecrets } from "./http/signing.ts";
export { classifyStatus, isPermanentStatus, parseRetryAfter, type StatusOutcome } from "./http/status.ts";
export {
  type VerifiedWebhook,
  type VerifyWebhookOptions,
  verifyWebhook,
  type WebhookParts,
  WebhookVerificationError,
  type WebhookVerificationReason,
} from "./http/verify.ts";
