import { describe, expect, it } from "vitest";
import { MAX_DETAIL, safeText } from "../../adapters/shared/error-text.ts";
import { checkTargetUrl, redactUrl, redactUrls } from "../../adapters/shared/urls.ts";

describe("redactUrl: what of a URL value may appear in an error", () => {
  it.each([
    ["https://u:p@h.example/x?y=1", "https://***@h.example/x?…"],
    ["https://h.example/x#token", "https://h.example/x?…"],
    ["HTTPS://U:P@H.EXAMPLE", "https://***@h.example/"],
    ["https:u:p@h.example", "https://***@h.example/"],
    ["https://:@h.example/", "https://***@h.example/"],
    // A path with "@" is hidden up to it: "https://u:12/pw@h" parses as port 12 and a path.
    ["https://h.example/a@b?c", "https://***@b?…"],
    ["https://u:12/pw@h.example/x", "https://***@h.example/x"],
    // Values that do not parse (or are not http) show their scheme only: where would a password end?
    ["https://svc:s3cr/et@h.example/hook", "scheme https:, the rest not shown"],
    ["https://svc:s3cr?et@h.example/hook", "scheme https:, the rest not shown"],
    ["https://svc:s3cr#et@h.example/hook", "scheme https:, the rest not shown"],
    ["u:p@h.example/x", "no scheme; not shown"],
    ["admin:hunter2@h.example/x", "no scheme; not shown"],
    ["//u:p@h.example/x", "no scheme; not shown"],
  ])("%s -> %s", (url, shown) => {
    expect(redactUrl(url)).toBe(shown);
  });

  it("is bounded", () => {
    expect(redactUrl(`https://h.example/${"p".repeat(500)}`)).toHaveLength(120);
  });
});

describe("redactUrls: URLs inside free text", () => {
  it("hides everything from // to the last @ of the word, even across / ? # in a password", () => {
    expect(redactUrls("connect failed for https://svc:s3cr/et@h.example/hook (ECONNREFUSED)")).toBe(
      "connect failed for https://***@h.example/hook (ECONNREFUSED)",
    );
    for (const password of ["s3cr/et", "s3cr?et", "s3cr#et", "s3cr\\et", "a@b", "p'q", 'p"q']) {
      const text = redactUrls(`x https://svc:${password}@h.example/hook?tok=1 y`);
      expect(text).toBe("x https://***@h.example/hook?… y");
    }
    expect(
      redactUrls(
        "cannot fetch https://user:pass@a.example/hook?tok=1 nor http://b.example/?k=2 (ECONNREFUSED)",
      ),
    ).toBe("cannot fetch https://***@a.example/hook?… nor http://b.example/?… (ECONNREFUSED)");
    // A service's JSON answer: no whitespace around the URL.
    expect(redactUrls('{"error":"invalid destination: https://svc:p4ss/w0rd@h.example/hook"}')).toBe(
      '{"error":"invalid destination: https://***@h.example/hook"}',
    );
    // Backslashes read as slashes, as the URL parser reads them.
    expect(redactUrls("bad https:\\\\u:pw@h.example/x")).toBe("bad https:\\\\***@h.example/x");
    // Forms the URL parser forgives, schemes of any length, and a scheme glued to a word.
    for (const [text, shown] of [
      ["see https:/u:pw@h/x", "see https:/***@h/x"],
      ["see https:u:pw@h.example/x", "see https:***@h.example/x"],
      ["_https://u:pw@h/x", "_https://***@h/x"],
      [`${"a".repeat(40)}://u:pw@h/x`, `${"a".repeat(40)}://***@h/x`],
      ["key:value,https://h.example/x?token=1", "key:value,https://h.example/x?…"],
      ["at node:internal/fs:12 (file:///app/x.ts:1:2)", "at node:internal/fs:12 (file:///app/x.ts:1:2)"],
    ] as const) {
      expect(redactUrls(text)).toBe(shown);
    }
  });

  it("is linear on text made to backtrack (a.a.a…, long schemes)", () => {
    for (const text of [
      "a.".repeat(100_000),
      "a:".repeat(100_000),
      `${"a".repeat(200_000)}://x`,
      ":".repeat(200_000),
      `${"a".repeat(31)}:`.repeat(6000),
    ]) {
      const started = performance.now();
      redactUrls(text);
      // Seconds before the bound on the scheme; a loaded machine still does this in well under 1 s.
      expect(performance.now() - started).toBeLessThan(1000);
    }
  });
});

describe("safeText: stored error texts", () => {
  it("cuts a long text before redacting it, in bounded time", () => {
    const started = performance.now();
    const text = safeText("a.".repeat(1_000_000));
    expect(performance.now() - started).toBeLessThan(1000);
    expect(text).toHaveLength(MAX_DETAIL);
  });

  it("drops a URL cut at the bound rather than show a password the cut kept from its @", () => {
    // Redacting the first URL shrinks the text, pulling the cut one into the stored part.
    const text = `see https://h.example/?${"q".repeat(4 * MAX_DETAIL - 50)} then https://svc:SECRETPASSWORD@h.example/`;
    expect(text.length).toBeGreaterThan(4 * MAX_DETAIL);
    expect(text.slice(0, 4 * MAX_DETAIL)).toContain("SECRETPA");
    const stored = safeText(text);
    expect(stored).not.toContain("SECRET");
    expect(stored).toBe("see https://h.example/?… then …");
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
      ["admin:s3cret@h.example/x", "uses another scheme; only http: and https: are allowed"],
      ["/relative?token=s3cret", "is not an absolute http(s) URL (no scheme; not shown)"],
      ["https://user:s3cret@h.example/x", "carries credentials (user:password@) in https://***@h.example/x"],
      ["https://:@h.example/x", "carries credentials (user:password@) in https://***@h.example/x"],
      ["https:h.example/x", "is not an absolute http(s) URL written scheme://host/..."],
      ["https://\\user:s3cret@h.example/", "is not an absolute http(s) URL written scheme://host/..."],
      [
        "https://svc:s3cr/et@h.example/hook",
        "is not an absolute http(s) URL (scheme https:, the rest not shown)",
      ],
      ["https://svc:s3cr?et@h.example/hook", "(scheme https:, the rest not shown)"],
      ["https://svc:s3cr#et@h.example/hook", "(scheme https:, the rest not shown)"],
      [null, "is not a string (got null)"],
      [["https://h.example"], "is not a string (got an array)"],
    ] as const) {
      const result = checkTargetUrl(value);
      expect("problem" in result && result.problem).toContain(problem);
      expect(JSON.stringify(result)).not.toMatch(/s3cr|et@|admin/);
    }
  });

  it("refuses control characters and surrounding whitespace: the URL is sent as written", () => {
    // The URL parser drops tab, CR and LF and trims the ends, so these all parse to a clean URL.
    for (const [value, problem] of [
      ["https://h.example/hook\n", "contains the control character U+000A at index 22"],
      ["https://h.exa\tmple/hook", "contains the control character U+0009 at index 13"],
      ["https://h.example/ho\r\nok", "contains the control character U+000D at index 20"],
      ["https://h.example/\u0000", "contains the control character U+0000"],
      ["https://h.example/\u007f", "contains the control character U+007F"],
      ["https://h.example/\u0085", "contains the control character U+0085"],
      ["https://h.example/hook ", "starts or ends with whitespace"],
      [" https://h.example/hook", "starts or ends with whitespace"],
      ["https://h.example/hook\u00a0", "starts or ends with whitespace"],
    ] as const) {
      expect(new URL(value).href, "the parser forgives it").not.toBe(value);
      const result = checkTargetUrl(value);
      expect("problem" in result && result.problem).toContain(problem);
    }
  });
});
