/**
 * D1Store's size check at its exact boundary, on Miniflare's real D1: key and headers whose
 * escaped form in a claim's read takes exactly the room the read leaves are accepted and
 * claimed; 4 bytes more are refused. Written against a mutation survivor of
 * adapters/d1/limits.ts (TESTING.md).
 */
import { describe, expect, it } from "vitest";
import { D1Store } from "../../adapters/d1.ts";
import { type PreparedMessage, prepareMessage } from "../../mod.ts";
import { d1ForFile, freshTable } from "./helpers.ts";

const message = (key: string, headers: Record<string, string>): PreparedMessage =>
  prepareMessage({ key, value: "{}", headers }, { maxMessageBytes: 4 << 20 });

const d1 = d1ForFile();

describe("D1Store: key and headers at the claim read's limit", () => {
  it("accepts them escaped to exactly 1983616 bytes and claims them; refuses 4 bytes more", {
    timeout: 120_000,
  }, async () => {
    const store = new D1Store(d1.db, { table: freshTable() });
    await store.migrate();
    // Key "kk" escapes to 4 bytes; headers {"x-q":"<n quotes>"} are 2n + 10 bytes of JSON, which
    // escape again to 4n + 16: 4n + 20 in all, 1983616 (2000000 less the read's 16384 per
    // message) for n = 495899.
    const quotes = (n: number) => ({ "x-q": '"'.repeat(n) });
    await expect(store.addMessage(d1.db, message("kk", quotes(495_900)))).rejects.toThrow(
      "its key and headers take 1983620 bytes escaped as JSON",
    );
    await store.addMessage(d1.db, message("kk", quotes(495_899)));
    const { messages } = await store.fetchAndLock({ batchSize: 1, leaseDuration: 30_000, ordering: "none" });
    expect(messages.map((m) => m.headers["x-q"]?.length)).toEqual([495_899]);
  });
});
