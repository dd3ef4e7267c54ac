/**
 * The default onError: one console.error line per error and per failed batch (ids and reasons),
 * at most one line per LOG_INTERVAL_MS with a count of the lines held back, so that a wrong
 * port or path is not silent until listDead().
 */
import { createServer } from "node:net";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { httpSender } from "../adapters/http.ts";
import { MemoryStore } from "../adapters/memory.ts";
import { Outbox } from "../mod.ts";
import { LOG_INTERVAL_MS, RateLimitedLog } from "../src/report.ts";
import { recordingSender, waitFor } from "./support/senders.ts";

const SECRET = `whsec_${Buffer.from("a test secret of 32 bytes, fine!").toString("base64")}`;
let consoleError: ReturnType<typeof vi.spyOn>;
const lines = () => consoleError.mock.calls.map((args: unknown[]) => args.map(String).join(" "));

beforeEach(() => {
  consoleError = vi.spyOn(console, "error").mockImplementation(() => {});
});
afterEach(() => consoleError.mockRestore());

/** A loopback port with nothing listening on it. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

describe("the default onError", () => {
  it("says in one line which messages a wrong port failed, and why", async () => {
    const store = new MemoryStore();
    const url = `http://127.0.0.1:${await closedPort()}/hooks`;
    const outbox = new Outbox(store, httpSender({ url, secret: SECRET }), {
      backoff: { initialDelay: 60_000, maxDelay: 60_000 },
    });
    await store.transaction(async (tx) => {
      for (let i = 0; i < 4; i++) await outbox.addMessage(tx, { key: `k${i}`, value: "{}" });
    });
    expect(await outbox.tick()).toMatchObject({ failed: 4 });
    expect(lines()).toHaveLength(1);
    const [line] = lines();
    expect(line).toMatch(
      /^\[edge-outbox\] delivery failed for 4 of 4 message\(s\) \(4 will be retried, 0 dead\)/,
    );
    expect(line).toMatch(/msg_[0-9a-z]{16}_1: /);
    expect(line).toMatch(/ECONNREFUSED|fetch failed|connect/i);
    expect(line).toMatch(/and 1 more$/);
    expect(line).not.toContain("\n");
  });

  it("writes the line for a batch that partly failed, naming only the failed message", async () => {
    const store = new MemoryStore();
    const sender = recordingSender((m) =>
      m.key === "bad" ? m.markAsFailed({ error: "410 gone" }) : m.markAsSent(),
    );
    const outbox = new Outbox(store, sender, { backoff: { initialDelay: 60_000, maxDelay: 60_000 } });
    await store.transaction(async (tx) => {
      await outbox.addMessage(tx, { key: "good", value: "{}" });
      await outbox.addMessage(tx, { key: "bad", value: "{}" });
    });
    expect(await outbox.tick()).toMatchObject({ sent: 1, failed: 1 });
    expect(lines()).toHaveLength(1);
    expect(lines()[0]).toMatch(
      /^\[edge-outbox\] delivery failed for 1 of 2 message\(s\) \(1 will be retried, 0 dead\): msg_[0-9a-z]{16}_2: 410 gone$/,
    );
  });

  it("holds back lines within the interval and says how many", () => {
    let now = 0;
    const log = new RateLimitedLog(LOG_INTERVAL_MS, () => now);
    expect(log.write("first")).toBe(true);
    now += 10;
    expect(log.write("second")).toBe(false);
    expect(log.write("third")).toBe(false);
    now += LOG_INTERVAL_MS;
    expect(log.write("fourth")).toBe(true);
    expect(lines()).toEqual([
      "[edge-outbox] first",
      `[edge-outbox] fourth (2 more line(s) held back in the last ${LOG_INTERVAL_MS / 1000} s)`,
    ]);
  });

  it("logs one line per error with its code, rate-limited across a loop", async () => {
    const store = new MemoryStore();
    const sender = {
      send: async () => {
        throw new Error("receiver exploded");
      },
    };
    const outbox = new Outbox(store, sender, { backoff: { initialDelay: 0, maxDelay: 0 }, maxRetries: 5 });
    await store.transaction(async (tx) => outbox.addMessage(tx, { key: "k", value: "v" }));
    expect(await outbox.tick()).toMatchObject({ failed: 5, dead: 1 });
    // Six failed attempts in a few ms: one line; the rest held back for the next one.
    expect(lines()).toEqual(["[edge-outbox] SEND_FAILED: sender threw: receiver exploded"]);
  });

  it("is not used with your own onError: that gets errors only, and nothing is logged", async () => {
    const store = new MemoryStore();
    const errors: unknown[] = [];
    const outbox = new Outbox(
      store,
      recordingSender((m) => m.markAsFailed({ error: "HTTP 503" })),
      {
        onError: (e) => errors.push(e),
        backoff: { initialDelay: 60_000, maxDelay: 60_000 },
      },
    );
    await store.transaction(async (tx) => outbox.addMessage(tx, { key: "k", value: "v" }));
    await outbox.tick();
    expect(errors).toEqual([]);
    expect(lines()).toEqual([]);
  });

  it("writes the held-back count when the interval ends, with no later line to carry it", async () => {
    const log = new RateLimitedLog(50);
    log.write("first");
    log.write("second");
    log.write("third");
    await waitFor(() => lines().length === 2);
    expect(lines()).toEqual([
      "[edge-outbox] first",
      "[edge-outbox] (2 more line(s) held back in the last 0.05 s)",
    ]);
  });

  it("a flood of failed batches cannot hide a store error; stop() writes what was held back", async () => {
    const memory = new MemoryStore();
    let claims = 0;
    const store = new Proxy(memory, {
      get(target, property, receiver) {
        const value = Reflect.get(target, property, receiver);
        if (property === "fetchAndLock") {
          return async (...args: Parameters<MemoryStore["fetchAndLock"]>) => {
            claims += 1;
            if (claims === 6) throw new Error("database disk image is malformed");
            return target.fetchAndLock(...args);
          };
        }
        return typeof value === "function" ? value.bind(target) : value;
      },
    });
    const sender = recordingSender((m) => m.markAsFailed({ retryAfter: 0, error: "HTTP 503" }));
    const outbox = new Outbox(store, sender, { batchSize: 1, period: 1, maxRetries: 1000 });
    await memory.transaction(async (tx) => {
      for (let i = 0; i < 3; i++) await outbox.addMessage(tx, { key: `k${i}`, value: "v" });
    });
    outbox.start();
    await waitFor(() => claims > 10);
    await outbox.stop();
    const logged = lines();
    expect(logged[0]).toMatch(/^\[edge-outbox\] delivery failed for 1 of 1 message/);
    expect(logged.some((line: string) => line.includes("database disk image is malformed"))).toBe(true);
    // The failed batches held back are counted in a line written at stop().
    expect(logged.at(-1)).toMatch(/^\[edge-outbox\] \(\d+ more line\(s\) held back in the last 10 s\)$/);
  });
});
