import { createClient } from "@libsql/client";
import { describe, expect, it } from "vitest";
import { LibsqlStore } from "../adapters/libsql.ts";
import { MemoryStore } from "../adapters/memory.ts";
import { Outbox, prepareMessage, ValidationError } from "../mod.ts";
import { recordingSender } from "./support/senders.ts";

const limits = { maxMessageBytes: 16 };

function refusal(input: unknown): ValidationError {
  try {
    prepareMessage(input, limits);
  } catch (error) {
    expect(error).toBeInstanceOf(ValidationError);
    expect((error as ValidationError).code).toBe("INVALID_MESSAGE");
    return error as ValidationError;
  }
  throw new Error("expected a ValidationError");
}

describe("prepareMessage", () => {
  it("encodes strings as UTF-8, copies bytes and lowercases header names", () => {
    const bytes = new Uint8Array([1, 2, 3]);
    const prepared = prepareMessage(
      { key: "k", value: bytes, headers: { "Content-Type": "text/plain" } },
      limits,
    );
    bytes[0] = 9;
    expect(Array.from(prepared.value)).toEqual([1, 2, 3]);
    expect(prepared.headers).toEqual({ "content-type": "text/plain" });
    expect(Array.from(prepareMessage({ key: "k", value: "é" }, limits).value)).toEqual([0xc3, 0xa9]);
  });

  it("stamps the current UTC time", () => {
    const before = Date.now();
    const { timestamp } = prepareMessage({ key: "k", value: "" }, limits);
    expect(timestamp.getTime()).toBeGreaterThanOrEqual(before);
    expect(timestamp.getTime()).toBeLessThanOrEqual(Date.now());
  });

  it("names what is wrong and what is allowed", () => {
    expect(refusal(null).message).toMatch(/message must be an object/);
    expect(refusal("hello").message).toMatch(/message must be an object/);
    expect(refusal({ key: "", value: "x" }).message).toMatch(/key must be a non-empty string, got ""/);
    expect(refusal({ key: 7, value: "x" }).message).toMatch(/key must be a non-empty string, got number/);
    expect(refusal({ key: "k".repeat(1025), value: "x" }).message).toMatch(/at most 1024 characters/);
    expect(refusal({ key: "k", value: 5 }).message).toMatch(
      /value must be a Uint8Array or a string, got number/,
    );
    expect(refusal({ key: "k", value: [1, 2] }).message).toMatch(/got an array/);
    expect(refusal({ key: "k" }).message).toMatch(/got undefined/);
    expect(refusal({ key: "k", value: "x".repeat(17) }).message).toMatch(
      /at most 16 bytes \(maxMessageBytes\), got 17/,
    );
    expect(refusal({ key: "k", value: "ééééééééé" }).message).toMatch(/got 18/);
    expect(refusal({ key: "k", value: "x", headers: "a: b" }).message).toMatch(/headers must be an object/);
    expect(refusal({ key: "k", value: "x", headers: { "bad name": "v" } }).message).toMatch(
      /not a valid HTTP header name/,
    );
    expect(refusal({ key: "k", value: "x", headers: { a: 1 } }).message).toMatch(
      /headers\["a"\] must be a string/,
    );
    expect(refusal({ key: "k", value: "x", headers: { a: "x\r\nInjected: yes" } }).message).toMatch(
      /not allowed/,
    );
  });

  it("reads only the headers object's own enumerable keys, never its prototype chain", () => {
    const inherited = Object.create({ inherited: "i" }, { own: { value: "o", enumerable: true } });
    expect(prepareMessage({ key: "k", value: "", headers: inherited }, limits).headers).toEqual({ own: "o" });
    // A revoked Proxy as prototype: walking the chain would throw a TypeError.
    const { proxy, revoke } = Proxy.revocable({}, {});
    revoke();
    const revoked = Object.setPrototypeOf({ a: "1" }, proxy);
    expect(prepareMessage({ key: "k", value: "", headers: revoked }, limits).headers).toEqual({ a: "1" });
  });

  it("keeps a header named __proto__ (a valid header name) as an own header, prototype untouched", () => {
    const headers = JSON.parse('{"__proto__":"x","B":"y"}') as Record<string, string>;
    const prepared = prepareMessage({ key: "k", value: "", headers }, limits);
    expect(Object.getPrototypeOf(prepared.headers)).toBe(Object.prototype);
    expect(Object.entries(prepared.headers)).toEqual([
      ["__proto__", "x"],
      ["b", "y"],
    ]);
  });
});

describe("a header named __proto__ in a SQL store", () => {
  it("is written in the headers JSON and comes back with the claimed message", async () => {
    const client = createClient({ url: ":memory:" });
    const store = new LibsqlStore(client);
    await store.migrate();
    const headers = JSON.parse('{"__proto__":"x","b":"y"}') as Record<string, string>;
    await new Outbox(store, recordingSender()).addMessage(client, { key: "k", value: "v", headers });
    const row = await client.execute("SELECT headers FROM outbox_messages");
    expect(JSON.parse(String(row.rows[0]!.headers))).toEqual(JSON.parse('{"__proto__":"x","b":"y"}'));
    expect(String(row.rows[0]!.headers)).toContain('"__proto__":"x"');
    const { messages } = await store.fetchAndLock({ batchSize: 10, leaseDuration: 30_000, ordering: "none" });
    expect(Object.getOwnPropertyDescriptor(messages[0]!.headers, "__proto__")?.value).toBe("x");
    expect(Object.getPrototypeOf(messages[0]!.headers)).toBe(Object.prototype);
    client.close();
  });
});

describe("Outbox.addMessage", () => {
  it("writes nothing when the input is bad, and commits with the transaction otherwise", async () => {
    const store = new MemoryStore();
    const outbox = new Outbox(store, recordingSender(), { maxMessageBytes: 8 });
    const bad = [
      { key: "", value: "x" },
      { key: "k", value: "123456789" },
      { key: "k", value: {} },
      { key: "k", value: "x", headers: { a: "\n" } },
    ];
    for (const message of bad) {
      await expect(
        store.transaction(async (tx) => {
          await outbox.addMessage(tx, { key: "good", value: "first" });
          await outbox.addMessage(tx, message as never);
        }),
      ).rejects.toBeInstanceOf(ValidationError);
    }
    expect(await store.stats()).toMatchObject({ pending: 0, inFlight: 0, dead: 0 });
    await store.transaction((tx) => outbox.addMessage(tx, { key: "good", value: "ok" }));
    expect((await store.stats()).pending).toBe(1);
  });
});
