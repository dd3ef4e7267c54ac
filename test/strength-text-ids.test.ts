/**
 * Edges of the text and id helpers stores rely on: a cut next to the first and last high
 * surrogates, the fallback for a runtime without `String.prototype.toWellFormed`, and a
 * namespace that only looks like one when turned into a string.
 */
import { describe, expect, it, vi } from "vitest";
import { checkIdNamespace, truncateText, ValidationError } from "../mod.ts";

describe("truncateText at the edges of the high-surrogate range", () => {
  it("does not split U+10000 (\\uD800\\uDC00) or U+10FFFF (\\uDBFF\\uDFFF)", () => {
    expect(truncateText("ab\uD800\uDC00cd", 4)).toBe("ab…");
    expect(truncateText("ab\uDBFF\uDFFFcd", 4)).toBe("ab…");
    // A cut just after a whole pair keeps it.
    expect(truncateText("a\uD800\uDC00cde", 4)).toBe("a\uD800\uDC00…");
  });
});

describe("wellFormedText without String.prototype.toWellFormed", () => {
  it("replaces lone surrogates the same way", async () => {
    const proto = String.prototype as { toWellFormed?: unknown };
    const native = proto.toWellFormed;
    delete proto.toWellFormed;
    try {
      vi.resetModules();
      const text = await import("../src/text.ts");
      expect(text.wellFormedText("a\uD800b\uDC00c\uD83D\uDE00")).toBe("a\uFFFDb\uFFFDc\uD83D\uDE00");
      expect(text.truncateText(`${"\uDBFF".repeat(10)}`, 5)).toBe("\uFFFD\uFFFD\uFFFD\uFFFD…");
    } finally {
      proto.toWellFormed = native;
      vi.resetModules();
    }
  });
});

describe("checkIdNamespace", () => {
  it("refuses a value that is not a string, even one that reads as a namespace", () => {
    const namespace = "0123456789abcdef";
    expect(checkIdNamespace(namespace)).toBe(namespace);
    for (const value of [[namespace], { toString: () => namespace }, new String(namespace)]) {
      expect(() => checkIdNamespace(value)).toThrow(ValidationError);
    }
  });
});
