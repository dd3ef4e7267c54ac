import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { httpSender } from "../../adapters/http.ts";
import { SendStatus, wellFormedText } from "../../mod.ts";
import { type HttpReceiver, testMessage as message, startHttpReceiver } from "../support/http-receiver.ts";
import { waitFor } from "../support/senders.ts";

const SECRET = `whsec_${Buffer.from("a test secret of 32 bytes, fine!").toString("base64")}`;
const signal = () => new AbortController().signal;

let receiver: HttpReceiver;
beforeAll(async () => {
  receiver = await startHttpReceiver();
});
afterAll(() => receiver.close());
beforeEach(async () => {
  await waitFor(() => receiver.inFlight === 0);
  receiver.reset();
  receiver.respond(() => undefined);
});

const sentIds = () => receiver.requests.map((r) => r.headers["webhook-id"]).sort();

describe("httpSender: a url(message) function is checked and contained", () => {
  it("fails (never sends) a message whose URL is not http(s), not a URL, not a string, or has credentials", async () => {
    const bad: Record<string, unknown> = {
      "2": "data:,x",
      "3": "file:///etc/passwd",
      "4": "not a url at all",
      "5": 42,
      "6": undefined,
      "7": `http://admin:s3cret@127.0.0.1:1/hook?key=k3y`,
      "8": "javascript:alert(1)",
    };
    const sender = httpSender({
      secret: SECRET,
      url: (m) => (m.id in bad ? (bad[m.id] as string) : receiver.url),
    });
    const batch = await sender.send(
      ["1", ...Object.keys(bad), "9"].map((id) => message(id)),
      signal(),
    );
    expect(sentIds()).toEqual(["1", "9"]);
    const byId = Object.fromEntries(batch.map((m) => [m.id, m]));
    expect(byId["1"]!.status).toBe(SendStatus.Sent);
    for (const id of Object.keys(bad)) {
      expect(byId[id]!.status).toBe(SendStatus.Fail);
      expect(byId[id]!.error).toContain(`url(message) for message ${id} returned a URL that`);
    }
    expect(byId["2"]!.error).toContain("uses data:; only http: and https: are allowed");
    expect(byId["3"]!.error).toContain("uses file:");
    expect(byId["4"]!.error).toContain("is not an absolute http(s) URL");
    expect(byId["5"]!.error).toContain("is not a string (got number)");
    expect(byId["7"]!.error).toContain("carries credentials");
    expect(byId["7"]!.error).not.toContain("s3cret");
    expect(byId["7"]!.error).not.toContain("k3y");
  });

  it("a url(message) that throws fails that message, naming the callback; the batch goes on", async () => {
    const sender = httpSender({
      unsigned: true,
      url: (m) => {
        if (m.id === "2") throw new Error(`no route \uD800 ${"x".repeat(5000)}`);
        if (m.id === "3") throw "a bare string";
        if (m.id === "4") throw Object.create(null); // not even printable
        return receiver.url;
      },
    });
    const batch = await sender.send(
      ["1", "2", "3", "4", "5"].map((id) => message(id)),
      signal(),
    );
    expect(batch.map((m) => m.status)).toEqual([
      SendStatus.Sent,
      SendStatus.Fail,
      SendStatus.Fail,
      SendStatus.Fail,
      SendStatus.Sent,
    ]);
    expect(batch[1]!.error).toMatch(/^url\(message\) threw for message 2: Error: no route \uFFFD x+…$/);
    expect(batch[1]!.error!.length).toBeLessThan(400);
    expect(batch[2]!.error).toBe("url(message) threw for message 3: a bare string");
    expect(batch[3]!.error).toBe("url(message) threw for message 4: a thrown object");
  });
});

describe("httpSender: permanent(status) is contained", () => {
  it("fails (to retry) a message whose permanent() throws or returns a non-boolean", async () => {
    receiver.respond((r) => ({ status: r.headers["webhook-id"] === "3" ? 200 : 404 }));
    const throwing = httpSender({
      unsigned: true,
      url: receiver.url,
      permanent: () => {
        throw new Error("policy bug");
      },
    });
    const [a, , ok] = await throwing.send([message("1"), message("2"), message("3")], signal());
    expect(a!.status).toBe(SendStatus.Fail);
    expect(a!.error).toBe("HTTP 404 for message 1; permanent(404) threw: Error: policy bug");
    expect(ok!.status).toBe(SendStatus.Sent); // a 2xx never asks the policy
    const garbage = httpSender({ unsigned: true, url: receiver.url, permanent: (() => "yes") as never });
    const [b] = await garbage.send([message("4")], signal());
    expect(b!.status).toBe(SendStatus.Fail);
    expect(b!.error).toBe("HTTP 404 for message 4; permanent(404) returned string, expected a boolean");
  });
});

describe("httpSender: error texts", () => {
  it("never carry a URL's credentials or query, and are well-formed and bounded", async () => {
    const sender = httpSender({
      unsigned: true,
      url: "https://hooks.example/in?token=SECRET1",
      fetch: async (input) => {
        throw new TypeError(
          `cannot reach ${String(input)} or https://u:SECRET2@h.example/p?q=SECRET3 \uDC00${"y".repeat(9000)}`,
        );
      },
    });
    const [m] = await sender.send([message("1")], signal());
    expect(m!.status).toBe(SendStatus.Fail);
    expect(m!.error).toContain("https://hooks.example/in?…");
    expect(m!.error).toContain("https://***@h.example/p?…");
    for (const secret of ["SECRET1", "SECRET2", "SECRET3"]) expect(m!.error).not.toContain(secret);
    expect(m!.error).toBe(wellFormedText(m!.error!));
    expect(m!.error!.length).toBeLessThan(400);
  });
});

describe("httpSender: message headers", () => {
  it("drops a trace header that cannot be sent, and still sends the message", async () => {
    const traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    const batch = [
      message("1", "{}", { traceparent, tracestate: "vendor=\u2603" }), // not Latin-1: Headers would throw
      message("2", "{}", { traceparent: "garbage\u0100", tracestate: "k=v" }),
      message("3", "{}", { traceparent: "not-a-trace", tracestate: "k=v\r\nx: y" }),
      message("4", "{}", { traceparent, tracestate: "k=v" }),
    ];
    await httpSender({ url: receiver.url, secret: SECRET }).send(batch, signal());
    expect(batch.map((m) => m.status)).toEqual(Array(4).fill(SendStatus.Sent));
    const byId = new Map(receiver.requests.map((r) => [r.headers["webhook-id"], r.headers]));
    expect(byId.get("1")!.traceparent).toBe(traceparent);
    expect(byId.get("1")!.tracestate).toBeUndefined();
    expect(byId.get("2")!.traceparent).toBeUndefined();
    expect(byId.get("2")!.tracestate).toBeUndefined(); // meaningless without its traceparent
    expect(byId.get("3")!.traceparent).toBe("not-a-trace"); // sendable: a caller's value goes as given
    expect(byId.get("3")!.tracestate).toBeUndefined();
    expect(byId.get("4")!.tracestate).toBe("k=v");
  });

  it("fails only the message whose own header cannot be sent (a row older than validation)", async () => {
    const batch = [message("1"), message("2", "{}", { "x-note": "caf\u00e9 \u2603" }), message("3")];
    await httpSender({ url: receiver.url, secret: SECRET }).send(batch, signal());
    expect(batch.map((m) => m.status)).toEqual([SendStatus.Sent, SendStatus.Fail, SendStatus.Sent]);
    expect(batch[1]!.error).toBe('message 2: header "x-note" cannot be sent (not a valid HTTP header field)');
    expect(sentIds()).toEqual(["1", "3"]);
  });
});

describe("httpSender: Retry-After from a real server", () => {
  it.each([
    ["a 1", undefined],
    ["Thu Jan  1 00:00:00 1970", 0],
    ["9".repeat(400), 3_600_000],
    ["1.5", undefined],
  ])("Retry-After %j -> retryAfter %j (capped at maxRetryAfter, 1 h)", async (value, expected) => {
    receiver.respond(() => ({ status: 503, headers: { "retry-after": value } }));
    const [m] = await httpSender({ url: receiver.url, unsigned: true }).send([message("1")], signal());
    expect(m!.status).toBe(SendStatus.Fail);
    expect(m!.retryAfter).toBe(expected);
  });
});

describe("httpSender: async callbacks by mistake", () => {
  it("a url(message) or permanent(status) returning a (rejecting) Promise fails the message, no unhandled rejection", async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on("unhandledRejection", onUnhandled);
    try {
      receiver.respond(() => ({ status: 404 }));
      const sender = httpSender({
        unsigned: true,
        url: (async (m: { id: string }) => {
          if (m.id === "1") throw new Error("async url failed");
          return receiver.url;
        }) as never,
      });
      const [a] = await sender.send([message("1")], signal());
      expect(a!.status).toBe(SendStatus.Fail);
      expect(a!.error).toContain("is a Promise: the URL must be returned synchronously");
      const withUrlObject = httpSender({
        unsigned: true,
        url: () => new URL(receiver.url) as never,
        permanent: (async () => {
          throw new Error("async policy failed");
        }) as never,
      });
      const [b] = await withUrlObject.send([message("2")], signal());
      expect(b!.status).toBe(SendStatus.Fail);
      expect(b!.error).toContain("permanent(404) returned a Promise");
      expect(receiver.requests).toHaveLength(1); // the URL object was accepted and used
      await new Promise((resolve) => setTimeout(resolve, 50));
      expect(unhandled).toEqual([]);
    } finally {
      process.off("unhandledRejection", onUnhandled);
    }
  });
});
