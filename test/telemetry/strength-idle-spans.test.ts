/**
 * Which idle passes leave a span, with the real OpenTelemetry SDK: a `tick()` always does (a
 * cron tick that found nothing is still worth seeing), the `start()` loop's idle polls never do
 * (one span every `period` on an empty outbox would be noise). Written against surviving
 * mutants of `src/outbox.ts`.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MemoryStore } from "../../adapters/memory.ts";
import { recordingSender } from "../support/senders.ts";
import { installContextManager, instrumented, useCleanups } from "./support.ts";

let uninstall: () => void;
beforeAll(() => {
  uninstall = installContextManager();
});
afterAll(() => uninstall());

useCleanups();

describe("spans of idle passes", () => {
  it("a tick on an empty outbox leaves its tick span", async () => {
    const { rig, outbox } = instrumented(new MemoryStore(), recordingSender());
    expect(await outbox.tick()).toMatchObject({ batches: 0, sent: 0 });
    expect(rig.spans().map((s) => s.name)).toEqual(["relay outbox"]);
  });

  it("the start() loop's polls of an empty outbox leave none", async () => {
    const { rig, outbox } = instrumented(new MemoryStore(), recordingSender(), { period: 10 });
    outbox.start();
    await new Promise((resolve) => setTimeout(resolve, 120));
    await outbox.stop();
    expect(rig.spans()).toEqual([]);
  });
});
