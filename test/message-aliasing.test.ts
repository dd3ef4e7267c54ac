/**
 * What addMessage accepted is what is delivered, byte for byte, on every attempt: a Node Buffer
 * (whose slice() is a view) changed after addMessage, or a sender writing into message.value,
 * changes nothing stored. On MemoryStore and a real libSQL file.
 */
import { Buffer } from "node:buffer";
import { afterAll, describe, expect, it } from "vitest";
import { MemoryStore } from "../adapters/memory.ts";
import { Outbox, type Sender } from "../mod.ts";
import { tempDir } from "./libsql/helpers.ts";
import { everyStore } from "./support/stores.ts";

const temp = tempDir();
afterAll(() => temp.cleanup());

const stores = everyStore(temp.dir);

for (const [name, open] of stores) {
  describe(`${name}: no aliasing`, () => {
    it("delivers on every attempt the bytes addMessage accepted, whatever the caller and the sender write", async () => {
      const { store, close } = await open();
      try {
        const seen: string[] = [];
        // Fails twice, scribbling into the value each time, then delivers.
        const sender: Sender = {
          async send(messages) {
            for (const m of messages) {
              seen.push(Buffer.from(m.value).toString("hex"));
              m.value.fill(0x58);
              if (seen.length < 3) m.markAsFailed({ retryAfter: 0 });
              else m.markAsSent();
            }
            return messages;
          },
        };
        const outbox = new Outbox(store, sender, { onError: () => {} });
        const backing = Buffer.from("--hello--");
        // A view into a larger buffer, as Buffer#slice and subarray give.
        const view = backing.subarray(2, 7);
        await store.withTransaction((tx) => outbox.addMessage(tx, { key: "k", value: view }));
        backing.fill(0x21);
        expect(await outbox.tick()).toMatchObject({ sent: 1, failed: 2 });
        const hello = Buffer.from("hello").toString("hex");
        expect(seen).toEqual([hello, hello, hello]);
      } finally {
        await close();
      }
    });
  });
}

describe("Message text() and json()", () => {
  it("decode the value (invalid UTF-8 as U+FFFD), including on dead messages from listDead()", async () => {
    const store = new MemoryStore();
    const sender: Sender = {
      async send(messages) {
        for (const m of messages) m.markAsDead({ error: "HTTP 410" });
        return messages;
      },
    };
    const outbox = new Outbox(store, sender);
    await store.transaction(async (tx) => {
      await outbox.addMessage(tx, { key: "a", value: JSON.stringify({ order: 7, note: "é" }) });
      await outbox.addMessage(tx, { key: "b", value: new Uint8Array([0x61, 0xff, 0x62]) });
    });
    await outbox.tick();
    const [json, bytes] = await store.listDead();
    expect(json!.json()).toEqual({ order: 7, note: "é" });
    expect(json!.text()).toBe('{"order":7,"note":"é"}');
    expect(bytes!.text()).toBe("a\uFFFDb");
    expect(() => bytes!.json()).toThrow(SyntaxError);
  });
});
