import { constantTimeEqual } from "./constant-time.ts";
import { ValidationError } from "./errors.ts";
import { checkBudget } from "./options.ts";
import type { Outbox } from "./outbox.ts";

/** Options of {@link cronHandler}. */
export interface CronHandlerOptions {
  /**
   * The shared secret a caller must send as `Authorization: Bearer <secret>` (Vercel sends
   * `CRON_SECRET` this way). Required and non-empty unless `allowUnauthenticated` is `true`;
   * when given it is always checked. Printable ASCII without surrounding whitespace: anything
   * else could never arrive in a header, so it is refused at construction.
   */
  secret?: string | undefined;
  /**
   * Passed to `outbox.tick({ budgetMs })`: no new relay pass starts after this many
   * milliseconds. Keep it well under the platform's function time limit (a pass in flight
   * finishes, up to `sendTimeout` plus the database work). Default: none (drain until empty).
   */
  budgetMs?: number;
  /**
   * Opt out of authentication explicitly, for a route that is already protected some other
   * way (a private network, a platform-level guard). Default `false`.
   */
  allowUnauthenticated?: boolean;
}

/** The part of an {@link Outbox} that a cron handler drives. */
export type CronTarget = Pick<Outbox<unknown>, "tick" | "options">;

const ALLOWED_METHODS = "GET, POST";
const encoder = new TextEncoder();

/**
 * Builds a web-standard request handler that runs one `outbox.tick()` per authorised call:
 * a Vercel cron route, or any `fetch`-style handler (Deno, Bun, Hono, Next.js, ...).
 *
 * Answers `405` (with `Allow: GET, POST`) to other methods; `401` when the
 * `Authorization: Bearer <secret>` header is missing or wrong (compared in constant time over
 * SHA-256 digests, so the comparison leaks neither the secret nor its length); `200` with the
 * `TickResult` as JSON; `500` with a generic body when the tick fails, the error itself going
 * to the outbox's `onError` (nothing is lost: claimed messages return when their lease ends).
 *
 * Throws a `ValidationError` at construction when `secret` is missing or empty and
 * `allowUnauthenticated` is not `true`, when it has surrounding whitespace or characters beyond
 * printable ASCII, or when `budgetMs` is not a number >= 0.
 *
 * @example
 * ```ts
 * // app/api/outbox/route.ts (Vercel); vercel.json: { "crons": [{ "path": "/api/outbox", "schedule": "* * * * *" }] }
 * export const GET = cronHandler(outbox, { secret: process.env.CRON_SECRET, budgetMs: 8000 });
 * ```
 */
export function cronHandler(
  outbox: CronTarget,
  options: CronHandlerOptions,
): (request: Request) => Promise<Response> {
  if (typeof outbox?.tick !== "function") {
    throw new ValidationError("outbox must be an Outbox (an object with a tick() method)");
  }
  if (typeof options !== "object" || options === null) {
    throw new ValidationError(`cronHandler options must be an object, got ${String(options)}`);
  }
  const { secret, budgetMs, allowUnauthenticated = false } = options;
  if (typeof allowUnauthenticated !== "boolean") {
    throw new ValidationError(`allowUnauthenticated must be a boolean, got ${String(allowUnauthenticated)}`);
  }
  if (secret !== undefined && (typeof secret !== "string" || secret.length === 0)) {
    throw new ValidationError(
      `secret must be a non-empty string, got ${typeof secret === "string" ? '""' : String(secret)}`,
    );
  }
  if (typeof secret === "string") checkSecretText(secret);
  if (secret === undefined && !allowUnauthenticated) {
    throw new ValidationError(
      "secret is required (got undefined): set it, e.g. from CRON_SECRET, or pass allowUnauthenticated: true to opt out",
    );
  }
  checkBudget(budgetMs);
  // Digested once, lazily: Web Crypto is async and the handler may be built at module scope.
  let expected: Promise<Uint8Array> | undefined;

  return async (request) => {
    if (request.method !== "GET" && request.method !== "POST") {
      return json({ error: "method not allowed" }, 405, { allow: ALLOWED_METHODS });
    }
    if (secret !== undefined) {
      expected ??= digest(secret);
      const presented = bearerToken(request.headers.get("authorization"));
      const ok = constantTimeEqual(await expected, await digest(presented ?? ""));
      if (!ok || presented === undefined) {
        return json({ error: "unauthorized" }, 401, { "www-authenticate": "Bearer" });
      }
    }
    try {
      const result = await outbox.tick(budgetMs === undefined ? {} : { budgetMs });
      return json(result, 200);
    } catch (error) {
      try {
        outbox.options.onError(error);
      } catch {
        // A throwing onError must not turn a controlled 500 into an unhandled rejection.
      }
      return json({ error: "tick failed" }, 500);
    }
  };
}

/**
 * Refuses a secret no request could ever present: one with surrounding whitespace (header
 * values are trimmed on the way in) or characters beyond printable ASCII (a header value is
 * not Unicode text). The error says which, never what the secret is.
 */
function checkSecretText(secret: string): void {
  if (secret.trim() !== secret) {
    throw new ValidationError(
      "secret must not start or end with whitespace (a header value is trimmed, so it could never match); check how CRON_SECRET was set",
    );
  }
  if (!/^[\x21-\x7e]([\x20-\x7e]*[\x21-\x7e])?$/.test(secret)) {
    throw new ValidationError(
      "secret must be printable ASCII (characters 0x20-0x7E): a request header cannot carry the other characters it has",
    );
  }
}

/** The credentials of `Authorization: Bearer <token>` (scheme case-insensitive), if any. */
function bearerToken(header: string | null): string | undefined {
  if (header === null) return undefined;
  const match = /^Bearer[ \t]+(.*)$/is.exec(header.trim());
  return match?.[1];
}

async function digest(text: string): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", encoder.encode(text)));
}

function json(body: unknown, status: number, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json", "cache-control": "no-store", ...headers },
  });
}
