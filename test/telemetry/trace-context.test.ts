import {
  context,
  createTraceState,
  ROOT_CONTEXT,
  type SpanContext,
  TraceFlags,
  trace,
} from "@opentelemetry/api";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MemoryStore } from "../../adapters/memory.ts";
import { Outbox } from "../../mod.ts";
import { formatTraceparent, injectTraceContext, parseTraceparent } from "../../src/trace-context.ts";
import { recordingSender } from "../support/senders.ts";
import { installContextManager } from "./support.ts";

const TRACE = "4bf92f3577b34da6a3ce929d0e0e4736";
const SPAN = "00f067aa0ba902b7";
const remote = (extra: Partial<SpanContext> = {}): SpanContext => ({
  traceId: TRACE,
  spanId: SPAN,
  traceFlags: TraceFlags.SAMPLED,
  isRemote: true,
  ...extra,
});

describe("formatTraceparent", () => {
  it("writes version 00 with two-digit flags", () => {
    expect(formatTraceparent(remote())).toBe(`00-${TRACE}-${SPAN}-01`);
    expect(formatTraceparent(remote({ traceFlags: TraceFlags.NONE }))).toBe(`00-${TRACE}-${SPAN}-00`);
  });
});

describe("parseTraceparent", () => {
  it("reads a valid header as a remote span context", () => {
    expect(parseTraceparent(`00-${TRACE}-${SPAN}-01`)).toEqual(remote());
    expect(parseTraceparent(` 00-${TRACE}-${SPAN}-00 `)).toEqual(remote({ traceFlags: 0 }));
  });

  it("round-trips with formatTraceparent", () => {
    const header = formatTraceparent(remote());
    expect(formatTraceparent(parseTraceparent(header) as SpanContext)).toBe(header);
  });

  it("keeps only the sampled flag", () => {
    expect(parseTraceparent(`00-${TRACE}-${SPAN}-03`)?.traceFlags).toBe(1);
    expect(parseTraceparent(`00-${TRACE}-${SPAN}-02`)?.traceFlags).toBe(0);
  });

  it("reads the known fields of a future version, and only those", () => {
    expect(parseTraceparent(`01-${TRACE}-${SPAN}-01`)).toEqual(remote());
    expect(parseTraceparent(`cc-${TRACE}-${SPAN}-01-what-the-future-holds`)).toEqual(remote());
    expect(parseTraceparent(`cc-${TRACE}-${SPAN}-01x`)).toBeUndefined();
  });

  it.each([
    ["not a string", 42],
    ["undefined", undefined],
    ["garbage", "not-a-trace"],
    ["empty", ""],
    ["version ff", `ff-${TRACE}-${SPAN}-01`],
    ["extra fields on version 00", `00-${TRACE}-${SPAN}-01-extra`],
    ["uppercase hex", `00-${TRACE.toUpperCase()}-${SPAN}-01`],
    ["all-zero trace id", `00-${"0".repeat(32)}-${SPAN}-01`],
    ["all-zero span id", `00-${TRACE}-${"0".repeat(16)}-01`],
    ["short trace id", `00-${TRACE.slice(1)}-${SPAN}-01`],
    ["long span id", `00-${TRACE}-${SPAN}0-01`],
    ["one-digit flags", `00-${TRACE}-${SPAN}-1`],
    ["non-hex flags", `00-${TRACE}-${SPAN}-zz`],
    ["wrong separators", `00_${TRACE}_${SPAN}_01`],
  ])("ignores %s", (_, value) => {
    expect(parseTraceparent(value)).toBeUndefined();
  });

  it("attaches tracestate when given", () => {
    const parsed = parseTraceparent(`00-${TRACE}-${SPAN}-01`, "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7");
    expect(parsed?.traceState?.get("congo")).toBe("t61rcWkgMzE");
    expect(parsed?.traceState?.serialize()).toBe("congo=t61rcWkgMzE,rojo=00f067aa0ba902b7");
    expect(parseTraceparent(`00-${TRACE}-${SPAN}-01`, "")?.traceState).toBeUndefined();
  });
});

describe("injectTraceContext", () => {
  const within = (sc: SpanContext) => trace.setSpanContext(ROOT_CONTEXT, sc);

  it("adds traceparent and a non-empty tracestate", () => {
    const headers = injectTraceContext({}, within(remote({ traceState: createTraceState("vendor=value") })));
    expect(headers).toEqual({ traceparent: `00-${TRACE}-${SPAN}-01`, tracestate: "vendor=value" });
    expect(injectTraceContext({}, within(remote()))).toEqual({ traceparent: `00-${TRACE}-${SPAN}-01` });
  });

  it("adds nothing without a valid span context", () => {
    expect(injectTraceContext({}, ROOT_CONTEXT)).toEqual({});
    expect(injectTraceContext({}, within(remote({ traceId: "0".repeat(32) })))).toEqual({});
  });

  it("never overwrites the caller's traceparent, nor adds a tracestate to it", () => {
    const own = { traceparent: "00-11111111111111111111111111111111-2222222222222222-00" };
    const ctx = within(remote({ traceState: createTraceState("vendor=value") }));
    expect(injectTraceContext({ ...own }, ctx)).toEqual(own);
  });
});

describe("Outbox.addMessage", () => {
  let uninstall: () => void;
  beforeAll(() => {
    uninstall = installContextManager();
  });
  afterAll(() => uninstall());

  async function stored(add: (outbox: Outbox<unknown>, store: MemoryStore) => Promise<void>) {
    const store = new MemoryStore();
    const outbox = new Outbox(store, recordingSender()) as Outbox<unknown>;
    await add(outbox, store);
    const claim = await store.fetchAndLock({ batchSize: 10, leaseDuration: 30_000, ordering: "none" });
    await outbox[Symbol.asyncDispose]();
    return claim.messages.map((m) => m.headers);
  }

  it("stores the active context's traceparent and tracestate", async () => {
    const ctx = trace.setSpanContext(ROOT_CONTEXT, remote({ traceState: createTraceState("a=1") }));
    const headers = await stored((outbox, store) =>
      context.with(ctx, () =>
        store.transaction((tx) => outbox.addMessage(tx, { key: "k", value: "v", headers: { "x-a": "1" } })),
      ),
    );
    expect(headers).toEqual([{ "x-a": "1", traceparent: `00-${TRACE}-${SPAN}-01`, tracestate: "a=1" }]);
  });

  it("stores no trace headers when no span is active", async () => {
    const headers = await stored((outbox, store) =>
      store.transaction((tx) => outbox.addMessage(tx, { key: "k", value: "v" })),
    );
    expect(headers).toEqual([{}]);
  });

  it("keeps a caller-provided Traceparent (any case) as given", async () => {
    const own = "00-11111111111111111111111111111111-2222222222222222-01";
    const headers = await stored((outbox, store) =>
      context.with(trace.setSpanContext(ROOT_CONTEXT, remote()), () =>
        store.transaction((tx) =>
          outbox.addMessage(tx, { key: "k", value: "v", headers: { Traceparent: own } }),
        ),
      ),
    );
    expect(headers).toEqual([{ traceparent: own }]);
  });
});
