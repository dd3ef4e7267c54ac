import { Webhook } from "standardwebhooks";
import { describe, expect, it } from "vitest";
import { signWebhook, verifyWebhook, WebhookVerificationError } from "../../adapters/http.ts";
import { constantTimeEqual, OutboxError, ValidationError } from "../../mod.ts";

const randomSecret = () =>
  `whsec_${Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString("base64")}`;
const SECRET = randomSecret();
const OTHER = randomSecret();
const now = () => Math.floor(Date.now() / 1000);

function request(headers: Record<string, string>, body: string): Request {
  return new Request("http://127.0.0.1/hook", { method: "POST", headers, body });
}

async function expectRejected(promise: Promise<unknown>, reason: string) {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(WebhookVerificationError);
  expect(error).toBeInstanceOf(OutboxError);
  expect((error as WebhookVerificationError).code).toBe("WEBHOOK_VERIFICATION_FAILED");
  expect((error as WebhookVerificationError).reason).toBe(reason);
}

describe("signWebhook against the standardwebhooks package", () => {
  it("what we sign, standardwebhooks verifies", async () => {
    const body = JSON.stringify({ type: "order.created", n: 1, text: "grüße" });
    const headers = await signWebhook({ id: "42", body }, SECRET);
    expect(headers["webhook-signature"]).toMatch(/^v1,[A-Za-z0-9+/]+=*$/);
    expect(new Webhook(SECRET).verify(body, headers)).toEqual(JSON.parse(body));
  });

  it("produces exactly the reference signature", async () => {
    const timestamp = now();
    const body = "hello";
    const ours = await signWebhook({ id: "msg_1", body, timestamp }, SECRET);
    expect(ours["webhook-signature"]).toBe(
      new Webhook(SECRET).sign("msg_1", new Date(timestamp * 1000), body),
    );
    expect(ours["webhook-timestamp"]).toBe(String(timestamp));
  });

  it("signs with every secret during rotation; each one verifies alone", async () => {
    const body = '{"a":1}';
    const headers = await signWebhook({ id: "7", body }, [SECRET, OTHER]);
    expect(headers["webhook-signature"].split(" ")).toHaveLength(2);
    expect(new Webhook(SECRET).verify(body, headers)).toEqual({ a: 1 });
    expect(new Webhook(OTHER).verify(body, headers)).toEqual({ a: 1 });
  });

  it("accepts secrets without the whsec_ prefix and raw key bytes", async () => {
    const raw = crypto.getRandomValues(new Uint8Array(24));
    const base64 = Buffer.from(raw).toString("base64");
    const a = await signWebhook({ id: "1", body: "x", timestamp: 1_700_000_000 }, raw);
    const b = await signWebhook({ id: "1", body: "x", timestamp: 1_700_000_000 }, base64);
    const c = await signWebhook({ id: "1", body: "x", timestamp: 1_700_000_000 }, `whsec_${base64}`);
    expect(a).toEqual(b);
    expect(b).toEqual(c);
  });

  it("refuses bad secrets with a ValidationError that does not echo them", async () => {
    for (const bad of ["whsec_not*base64!", "", "whsec_", new Uint8Array(0), 42, null, []]) {
      const error = await signWebhook({ id: "1", body: "x" }, bad as never).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ValidationError);
      expect(String((error as Error).message)).not.toContain("not*base64");
    }
  });

  it("refuses placeholder secrets under 16 bytes of key material, naming the length only", async () => {
    const headers = await signWebhook({ id: "1", body: "b" }, SECRET);
    // "whsec_test" is base64 of 3 bytes; "c2VjcmV0c2VjcmV0c2Vj" of 15.
    for (const [placeholder, bytes] of [
      ["whsec_test", 3],
      ["c2VjcmV0c2VjcmV0c2Vj", 15],
      [new Uint8Array(8), 8],
    ] as const) {
      for (const attempt of [
        verifyWebhook(request(headers, "b"), placeholder),
        signWebhook({ id: "1", body: "b" }, placeholder),
      ]) {
        const error = await attempt.catch((e: unknown) => e);
        expect(error).toBeInstanceOf(ValidationError);
        expect((error as Error).message).toMatch(
          new RegExp(`^secret must hold at least 16 bytes of key material, got ${bytes}:`),
        );
        if (typeof placeholder === "string") expect((error as Error).message).not.toContain(placeholder);
      }
    }
    // 16 bytes is enough.
    const sixteen = `whsec_${Buffer.alloc(16, 1).toString("base64")}`;
    const signed = await signWebhook({ id: "1", body: "b" }, sixteen);
    await expect(verifyWebhook(request(signed, "b"), sixteen)).resolves.toMatchObject({ id: "1" });
  });
});

describe("verifyWebhook", () => {
  it("accepts what standardwebhooks signs and returns id, timestamp and body", async () => {
    const body = JSON.stringify({ hello: "wörld" });
    const timestamp = new Date(now() * 1000);
    const signature = new Webhook(SECRET).sign("msg_abc", timestamp, body);
    const hook = await verifyWebhook(
      request(
        {
          "webhook-id": "msg_abc",
          "webhook-timestamp": String(timestamp.getTime() / 1000),
          "webhook-signature": signature,
        },
        body,
      ),
      SECRET,
    );
    expect(hook.id).toBe("msg_abc");
    expect(hook.timestamp).toEqual(timestamp);
    expect(hook.text()).toBe(body);
    expect(hook.json()).toEqual({ hello: "wörld" });
    expect(hook.body).toBeInstanceOf(Uint8Array);
  });

  it("accepts what we sign, from a Request or from Node-style headers and a body", async () => {
    const body = "plain text body";
    const headers = await signWebhook({ id: "9", body }, SECRET);
    expect((await verifyWebhook(request(headers, body), SECRET)).id).toBe("9");
    const nodeHeaders = {
      "Webhook-Id": headers["webhook-id"],
      "webhook-timestamp": [headers["webhook-timestamp"]],
    };
    const parts = { headers: { ...nodeHeaders, "webhook-signature": headers["webhook-signature"] }, body };
    expect((await verifyWebhook(parts, SECRET)).text()).toBe(body);
  });

  it("accepts a match on any of the verifier's secrets and any of the signatures", async () => {
    const body = "rotating";
    const signedWithOld = await signWebhook({ id: "1", body }, OTHER);
    await expect(verifyWebhook(request(signedWithOld, body), [SECRET, OTHER])).resolves.toMatchObject({
      id: "1",
    });
    const signedWithBoth = await signWebhook({ id: "2", body }, [OTHER, SECRET]);
    await expect(verifyWebhook(request(signedWithBoth, body), SECRET)).resolves.toMatchObject({ id: "2" });
  });

  it("rejects a tampered body, a changed id, a wrong secret and garbage signatures", async () => {
    const headers = await signWebhook({ id: "1", body: "original" }, SECRET);
    await expectRejected(verifyWebhook(request(headers, "tampered"), SECRET), "invalid_signature");
    await expectRejected(
      verifyWebhook(request({ ...headers, "webhook-id": "2" }, "original"), SECRET),
      "invalid_signature",
    );
    await expectRejected(verifyWebhook(request(headers, "original"), OTHER), "invalid_signature");
    for (const signature of [
      "",
      "v1,",
      "v2,abc",
      "v1,***",
      "nonsense",
      `v1a,${headers["webhook-signature"].slice(3)}`,
    ]) {
      const h = { ...headers, "webhook-signature": signature };
      await expectRejected(
        verifyWebhook(request(h, "original"), SECRET),
        signature ? "invalid_signature" : "missing_headers",
      );
    }
  });

  it("rejects missing headers and malformed timestamps", async () => {
    const headers = await signWebhook({ id: "1", body: "b" }, SECRET);
    for (const name of ["webhook-id", "webhook-timestamp", "webhook-signature"] as const) {
      const { [name]: _, ...rest } = headers;
      await expectRejected(verifyWebhook(request(rest, "b"), SECRET), "missing_headers");
    }
    for (const timestamp of ["abc", "-1", "1.5", "1e9"]) {
      await expectRejected(
        verifyWebhook(request({ ...headers, "webhook-timestamp": timestamp }, "b"), SECRET),
        "invalid_timestamp",
      );
    }
  });

  it("enforces the timestamp tolerance both ways (default 300 s)", async () => {
    const body = "t";
    const old = await signWebhook({ id: "1", body, timestamp: now() - 301 }, SECRET);
    await expectRejected(verifyWebhook(request(old, body), SECRET), "timestamp_too_old");
    const future = await signWebhook({ id: "1", body, timestamp: now() + 301 }, SECRET);
    await expectRejected(verifyWebhook(request(future, body), SECRET), "timestamp_too_new");
    await expect(verifyWebhook(request(old, body), SECRET, { toleranceSeconds: 600 })).resolves.toBeDefined();
    const fixed = await signWebhook({ id: "1", body, timestamp: 1_000_000 }, SECRET);
    await expect(
      verifyWebhook(request(fixed, body), SECRET, { now: new Date(1_000_100_000) }),
    ).resolves.toBeDefined();
    await expect(verifyWebhook(request(fixed, body), SECRET, { now: 1_000_000_000 })).resolves.toBeDefined();
  });

  it("refuses a bad secret or tolerance as configuration errors", async () => {
    const headers = await signWebhook({ id: "1", body: "b" }, SECRET);
    await expect(verifyWebhook(request(headers, "b"), "whsec_!!")).rejects.toBeInstanceOf(ValidationError);
    await expect(
      verifyWebhook(request(headers, "b"), SECRET, { toleranceSeconds: -1 }),
    ).rejects.toBeInstanceOf(ValidationError);
  });
});

describe("constantTimeEqual", () => {
  it("compares bytes", () => {
    expect(constantTimeEqual(new Uint8Array([1, 2, 3]), new Uint8Array([1, 2, 3]))).toBe(true);
    expect(constantTimeEqual(new Uint8Array([1, 2, 3]), new Uint8Array([1, 2, 4]))).toBe(false);
    expect(constantTimeEqual(new Uint8Array([1, 2]), new Uint8Array([1, 2, 3]))).toBe(false);
  });
});
