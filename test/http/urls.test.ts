import { describe, expect, it } from "vitest";
import { checkTargetUrl, redactUrl, redactUrls } from "../../adapters/shared/urls.ts";

describe("redactUrl: what of a URL may appear in an error", () => {
  it.each([
    ["https://u:p@h.example/x?y=1", "https://***@h.example/x?…"],
    ["https://h.example/a@b?c", "https://h.example/a@b?…"],
    ["https://h.example/x#token", "https://h.example/x?…"],
    ["u:p@h.example/x", "***@h.example/x"],
    ["//u:p@h.example/x", "//***@h.example/x"],
    ["https:u:p@h.example", "***@h.example"],
    ["http://a@b@c.example/d", "http://***@c.example/d"],
    ["HTTPS://U:P@H.EXAMPLE", "HTTPS://***@H.EXAMPLE"],
  ])("%s -> %s", (url, shown) => {
    expect(redactUrl(url)).toBe(shown);
  });

  it("is bounded and redacts every URL inside a runtime's message", () => {
    expect(redactUrl(`https://h.example/${"p".repeat(500)}`)).toHaveLength(120);
    expect(
      redactUrls(
        "cannot fetch https://user:pass@a.example/hook?tok=1 nor http://b.example/?k=2 (ECONNREFUSED)",
      ),
    ).toBe("cannot fetch https://***@a.example/hook?… nor http://b.example/?… (ECONNREFUSED)");
  });
});

describe("checkTargetUrl", () => {
  it("accepts absolute http(s) URLs (and URL objects), refuses the rest without echoing secrets", () => {
    expect(checkTargetUrl("https://h.example/hook?x=1")).toEqual({ url: "https://h.example/hook?x=1" });
    expect(checkTargetUrl(new URL("http://127.0.0.1:8080/a"))).toEqual({ url: "http://127.0.0.1:8080/a" });
    for (const [value, problem] of [
      ["data:,x", "uses data:; only http: and https: are allowed"],
      ["file:///etc/passwd", "uses file:"],
      ["javascript:alert(1)", "uses javascript:"],
      ["/relative?token=s3cret", "is not an absolute http(s) URL: /relative?…"],
      ["https://user:s3cret@h.example/x", "carries credentials (user:password@) in https://***@h.example/x"],
      ["https:h.example/x", "is not an absolute http(s) URL (scheme://host/...)"],
      [" https://h.example/x", "is not an absolute http(s) URL (scheme://host/...)"],
      [null, "is not a string (got null)"],
      [["https://h.example"], "is not a string (got an array)"],
    ] as const) {
      const result = checkTargetUrl(value);
      expect("problem" in result && result.problem).toContain(problem);
      expect(JSON.stringify(result)).not.toContain("s3cret");
    }
  });
});
