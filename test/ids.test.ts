import { describe, expect, it } from "vitest";
import {
  checkIdNamespace,
  formatMessageId,
  newIdNamespace,
  parseMessageId,
  ValidationError,
} from "../mod.ts";

describe("message ids", () => {
  it("namespaces are random, well-formed and distinct", () => {
    const seen = new Set<string>();
    for (let i = 0; i < 1000; i += 1) seen.add(checkIdNamespace(newIdNamespace()));
    expect(seen.size).toBe(1000);
  });

  it("round-trips a row id through its public id, and only in its own namespace", () => {
    const ns = newIdNamespace();
    const other = newIdNamespace();
    const id = formatMessageId(ns, "9223372036854775807");
    expect(id).toMatch(/^msg_[0-9a-z]{16}_9223372036854775807$/);
    expect(parseMessageId(ns, id)).toBe("9223372036854775807");
    expect(parseMessageId(other, id)).toBeUndefined();
  });

  it("accepts bare row ids from before namespaces, and refuses everything else", () => {
    const ns = newIdNamespace();
    expect(parseMessageId(ns, "42")).toBe("42");
    for (const bad of [
      "",
      "0",
      "01",
      "-1",
      "9223372036854775808",
      `msg_${ns}_0`,
      `msg_${ns}_`,
      `msg_${ns}`,
      42,
      null,
      "1.5",
    ]) {
      expect(parseMessageId(ns, bad)).toBeUndefined();
    }
  });

  it("refuses a malformed namespace with a ValidationError", () => {
    expect(() => checkIdNamespace("short")).toThrow(ValidationError);
    expect(() => checkIdNamespace("ABCDEFGHJKMNPQRS")).toThrow(/16 characters/);
  });
});
