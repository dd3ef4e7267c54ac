import { describe, expect, it } from "vitest";
import { MemoryStore } from "../adapters/memory.ts";
import { DEFAULT_OPTIONS, Outbox, type OutboxOptions, ValidationError } from "../mod.ts";
import { recordingSender } from "./support/senders.ts";

const make = (options?: OutboxOptions) => new Outbox(new MemoryStore(), recordingSender(), options);

describe("Outbox options", () => {
  it("fills in the documented defaults", () => {
    const { options } = make();
    expect(options).toMatchObject({
      batchSize: 10,
      maxRetries: 3,
      period: 5000,
      sendTimeout: 2000,
      leaseDuration: 30_000,
      ordering: "none",
      backoff: DEFAULT_OPTIONS.backoff,
      maxMessageBytes: 1024 * 1024,
    });
  });

  const refused: Array<[string, OutboxOptions, RegExp]> = [
    ["batchSize 0", { batchSize: 0 }, /batchSize must be an integer >= 1, got 0/],
    ["batchSize 1.5", { batchSize: 1.5 }, /batchSize must be an integer >= 1, got 1.5/],
    ["batchSize NaN", { batchSize: Number.NaN }, /batchSize .* got NaN/],
    ["batchSize string", { batchSize: "10" as unknown as number }, /batchSize .* got "10"/],
    ["maxRetries -1", { maxRetries: -1 }, /maxRetries must be an integer >= 0, got -1/],
    ["maxRetries Infinity", { maxRetries: Number.POSITIVE_INFINITY }, /maxRetries/],
    ["period 0", { period: 0 }, /period must be a number of milliseconds/],
    ["period negative", { period: -5 }, /period .* got -5/],
    ["period NaN", { period: Number.NaN }, /period .* got NaN/],
    ["period too large for a timer", { period: 2 ** 31 }, /period/],
    ["sendTimeout negative", { sendTimeout: -1 }, /sendTimeout/],
    ["sendTimeout NaN", { sendTimeout: Number.NaN }, /sendTimeout/],
    ["leaseDuration NaN", { leaseDuration: Number.NaN }, /leaseDuration/],
    [
      "leaseDuration equal to sendTimeout",
      { sendTimeout: 1000, leaseDuration: 1000 },
      /leaseDuration must exceed sendTimeout \(1000 ms\), got 1000/,
    ],
    [
      "leaseDuration below the default sendTimeout",
      { leaseDuration: 1500 },
      /leaseDuration must exceed sendTimeout/,
    ],
    ["ordering unknown", { ordering: "fifo" as "key" }, /ordering must be "none" or "key", got "fifo"/],
    ["backoff.initialDelay negative", { backoff: { initialDelay: -1 } }, /backoff.initialDelay/],
    [
      "backoff.maxDelay below initialDelay",
      { backoff: { initialDelay: 100, maxDelay: 10 } },
      /backoff.maxDelay must be >= backoff.initialDelay/,
    ],
    ["backoff.factor below 1", { backoff: { factor: 0.5 } }, /backoff.factor must be a number >= 1, got 0.5/],
    ["maxMessageBytes 0", { maxMessageBytes: 0 }, /maxMessageBytes/],
    ["onError not a function", { onError: "log" as unknown as () => void }, /onError must be a function/],
  ];

  for (const [name, options, message] of refused) {
    it(`refuses ${name}`, () => {
      let error: unknown;
      try {
        make(options);
      } catch (caught) {
        error = caught;
      }
      expect(error).toBeInstanceOf(ValidationError);
      expect((error as ValidationError).code).toBe("INVALID_OPTIONS");
      expect((error as Error).message).toMatch(message);
    });
  }

  it("refuses something that is not a store or a sender", () => {
    expect(() => new Outbox({} as never, recordingSender())).toThrow(ValidationError);
    expect(() => new Outbox(new MemoryStore(), {} as never)).toThrow(/sender must have a send/);
  });

  it("accepts maxRetries 0 and a zero backoff", () => {
    expect(make({ maxRetries: 0, backoff: { initialDelay: 0, maxDelay: 0 } }).options.maxRetries).toBe(0);
  });
});
