import { describe, expect, it } from "vitest";
import { truncateText, wellFormedText } from "../mod.ts";

const encodesCleanly = (s: string) =>
  new TextDecoder("utf-8", { fatal: true }).decode(new TextEncoder().encode(s)) === s;

describe("wellFormedText", () => {
  it("replaces lone surrogates, high or low, and keeps pairs and plain text", () => {
    expect(wellFormedText("a\uD800b")).toBe("a\uFFFDb");
    expect(wellFormedText("\uDC00x")).toBe("\uFFFDx");
    expect(wellFormedText("x\uD83D")).toBe("x\uFFFD");
    expect(wellFormedText("😀 ok")).toBe("😀 ok");
    expect(wellFormedText("nul\0")).toBe("nul\0");
  });
});

describe("truncateText", () => {
  it("keeps text within the limit as it is", () => {
    expect(truncateText("abc", 3)).toBe("abc");
  });

  it("cuts to exactly the limit, ending in an ellipsis", () => {
    const cut = truncateText("x".repeat(5000), 2000);
    expect(cut).toHaveLength(2000);
    expect(cut.endsWith("…")).toBe(true);
  });

  it("never cuts inside a surrogate pair", () => {
    for (let offset = 0; offset < 4; offset += 1) {
      const text = `${"a".repeat(offset)}${"😀".repeat(20)}`;
      for (let max = 1; max < text.length; max += 1) {
        const cut = truncateText(text, max);
        expect(cut.length).toBeLessThanOrEqual(max);
        expect(encodesCleanly(cut)).toBe(true);
      }
    }
  });

  it("makes a long text with lone surrogates well-formed", () => {
    const cut = truncateText(`${"\uD800".repeat(3000)}`, 2000);
    expect(encodesCleanly(cut)).toBe(true);
    expect(cut).toHaveLength(2000);
  });
});
