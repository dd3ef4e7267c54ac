/**
 * What a cron route's caller and its operator see: the exact refusals at construction, the
 * `Authorization` forms that pass (one-character secrets, several spaces or a tab after
 * `Bearer`) and those that do not, and response bodies and headers (never cached).
 */
import { describe, expect, it } from "vitest";
import { MemoryStore } from "../adapters/memory.ts";
import { type CronTarget, cronHandler, Outbox, ValidationError } from "../mod.ts";
import { recordingSender } from "./support/senders.ts";

const SECRET = "s3cret-cron-token";
const URL = "https://app.example/api/outbox";

function outbox() {
  return new Outbox(new MemoryStore(), recordingSender(), { onError: () => {} });
}

function thrown(build: () => unknown): ValidationError {
  try {
    build();
  } catch (error) {
    expect(error).toBeInstanceOf(ValidationError);
    return error as ValidationError;
  }
  throw new Error("expected a ValidationError");
}

const call = (handler: (r: Request) => Promise<Response>, authorization?: string, method = "GET") =>
  handler(new Request(URL, { method, headers: authorization === undefined ? {} : { authorization } }));

describe("cronHandler construction refusals", () => {
  it("refuses a missing outbox or missing options with a ValidationError, not a TypeError", () => {
    expect(thrown(() => cronHandler(undefined as unknown as CronTarget, { secret: SECRET })).message).toBe(
      "outbox must be an Outbox (an object with a tick() method)",
    );
    expect(thrown(() => cronHandler(outbox(), undefined as never)).message).toBe(
      "cronHandler options must be an object, got undefined",
    );
    expect(thrown(() => cronHandler(outbox(), "s3cret" as never)).message).toBe(
      "cronHandler options must be an object, got s3cret",
    );
  });

  it("names a secret that is not a string by its value", () => {
    expect(thrown(() => cronHandler(outbox(), { secret: 42 as unknown as string })).message).toBe(
      "secret must be a non-empty string, got 42",
    );
    expect(thrown(() => cronHandler(outbox(), { secret: null as unknown as string })).message).toBe(
      "secret must be a non-empty string, got null",
    );
  });
});

describe("cronHandler credentials", () => {
  it("accepts a one-character secret", async () => {
    const handler = cronHandler(outbox(), { secret: "x" });
    expect((await call(handler, "Bearer x")).status).toBe(200);
    expect((await call(handler, "Bearer y")).status).toBe(401);
  });

  it("accepts several spaces or a tab between the scheme and the secret", async () => {
    const handler = cronHandler(outbox(), { secret: SECRET });
    for (const header of [`Bearer   ${SECRET}`, `Bearer\t${SECRET}`, `BEARER \t ${SECRET}`]) {
      expect((await call(handler, header)).status).toBe(200);
    }
  });

  it("refuses a scheme that only ends in Bearer, or a secret with no separator", async () => {
    const handler = cronHandler(outbox(), { secret: SECRET });
    for (const header of [`NotBearer ${SECRET}`, `xBearer ${SECRET}`, `Bearer${SECRET}`, "Bearer"]) {
      expect((await call(handler, header)).status).toBe(401);
    }
  });
});

describe("cronHandler responses", () => {
  it("every answer is JSON that no cache keeps", async () => {
    const handler = cronHandler(outbox(), { secret: SECRET });
    const answers = [
      await call(handler, `Bearer ${SECRET}`),
      await call(handler, "Bearer wrong"),
      await call(handler, `Bearer ${SECRET}`, "PUT"),
    ];
    expect(answers.map((r) => r.status)).toEqual([200, 401, 405]);
    for (const response of answers) {
      expect(response.headers.get("content-type")).toBe("application/json");
      expect(response.headers.get("cache-control")).toBe("no-store");
    }
  });

  it("answers 405 with a JSON body that says why", async () => {
    const response = await call(cronHandler(outbox(), { secret: SECRET }), `Bearer ${SECRET}`, "DELETE");
    expect(response.status).toBe(405);
    expect(await response.json()).toEqual({ error: "method not allowed" });
  });
});
