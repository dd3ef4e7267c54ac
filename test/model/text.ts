/**
 * Hostile inputs for the model-based tests: texts with lone surrogates, NUL, 4-byte characters
 * and lengths around the stores' truncation limits; keys, values and headers built from them;
 * and what a store may legitimately hand back for a text it was given.
 */
import fc from "fast-check";
import { wellFormedText } from "../../mod.ts";

const PLAIN_PIECES = ["a", "Z9", " ", "é", "\u00ff", "\n", "\t", "\uFFFD", "\uFEFF", '"\\', "%s"];
const HOSTILE_PIECES = [
  ...PLAIN_PIECES,
  "\0",
  "\uD800", // lone high surrogate
  "\uDFFF", // lone low surrogate
  "\uDBFF\uDFFF", // a pair (U+10FFFF)
  "\u{1F600}", // 4-byte UTF-8
];

/** Texts of one flavour: `hostile` ones hold NUL, lone surrogates and 4-byte characters. */
export interface Texts {
  /** Short text (may be empty). */
  short: fc.Arbitrary<string>;
  /** A sender's error text: absent, short, around the 2000-unit cut, or very long. */
  error: fc.Arbitrary<string | undefined>;
  /**
   * A pool of distinct message keys for one run (some refused by validation: empty, over 1024
   * units). A store may make keys well-formed, so no two keys of a pool have the same
   * well-formed text (else per-key order could not tell them apart).
   */
  keys: fc.Arbitrary<string[]>;
}

/** The texts of one flavour. */
export function texts(hostile: boolean): Texts {
  const short = fc
    .array(fc.constantFrom(...(hostile ? HOSTILE_PIECES : PLAIN_PIECES)), { maxLength: 8 })
    .map((parts) => parts.join(""));
  // A run of `x` whose length puts a surrogate pair or a lone surrogate right on a store's cut
  // (2000 units for libSQL errors).
  const edges = hostile ? ["\u{1F600}", "\uD800", "\uDC00"] : ["é", "\uFFFD"];
  const long = fc
    .tuple(fc.integer({ min: 1990, max: 2010 }), short, fc.constantFrom(...edges))
    .map(([n, tail, edge]) => `${"x".repeat(n)}${edge}${tail}`);
  return {
    short,
    error: fc.oneof(
      { arbitrary: fc.constant(undefined), weight: 1 },
      { arbitrary: short, weight: 4 },
      { arbitrary: long, weight: 2 },
      { arbitrary: fc.constant("x".repeat(20_000)), weight: 1 },
    ),
    keys: fc.uniqueArray(
      fc.oneof(
        { arbitrary: fc.constantFrom("a", "b", "order:1", "c"), weight: 4 },
        { arbitrary: short, weight: 3 },
        {
          arbitrary: fc.constantFrom(
            "k".repeat(1024),
            "k".repeat(1025),
            ...(hostile ? ["\uD800".repeat(3)] : []),
          ),
          weight: 1,
        },
      ),
      { minLength: 1, maxLength: 5, selector: (key) => wellFormedText(key) },
    ),
  };
}

const HOSTILE = texts(true);

/** How a value is handed to `addMessage`. */
export type ValueSpec =
  | { kind: "string"; text: string }
  | { kind: "bytes"; bytes: number[] }
  | { kind: "buffer"; bytes: number[] }
  | { kind: "large"; length: number; seed: number };

/**
 * Values, always hostile (a string value is encoded to UTF-8 bytes at once): strings, raw
 * bytes, Node Buffers, large blobs, empty.
 */
export const valueSpec: fc.Arbitrary<ValueSpec> = fc.oneof(
  { arbitrary: HOSTILE.short.map((text) => ({ kind: "string" as const, text })), weight: 4 },
  {
    arbitrary: HOSTILE.error
      .filter((t) => t !== undefined)
      .map((text) => ({ kind: "string" as const, text })),
    weight: 1,
  },
  {
    arbitrary: fc.array(fc.integer({ min: 0, max: 255 }), { maxLength: 16 }).map((bytes) => ({
      kind: "bytes" as const,
      bytes,
    })),
    weight: 3,
  },
  {
    arbitrary: fc.array(fc.integer({ min: 0, max: 255 }), { minLength: 1, maxLength: 16 }).map((bytes) => ({
      kind: "buffer" as const,
      bytes,
    })),
    weight: 2,
  },
  {
    // Past the 2048 bytes a libSQL claim carries in its read: read back by id.
    arbitrary: fc
      .record({ length: fc.integer({ min: 2000, max: 70_000 }), seed: fc.integer({ min: 0, max: 255 }) })
      .map((r) => ({ kind: "large" as const, ...r })),
    weight: 1,
  },
);

/** The value `spec` describes, as the application passes it. */
export function inputValue(spec: ValueSpec): string | Uint8Array {
  switch (spec.kind) {
    case "string":
      return spec.text;
    case "bytes":
      return new Uint8Array(spec.bytes);
    case "buffer":
      return Buffer.from(spec.bytes);
    case "large": {
      const bytes = new Uint8Array(spec.length);
      for (let i = 0; i < bytes.length; i++) bytes[i] = (spec.seed + i * 31) & 255;
      return bytes;
    }
  }
}

const HEADER_NAMES = ["content-type", "X-Trace", "x-a", "ce-id", "X-Upper-Case", "bad name", "x:y"];
const HEADER_VALUES = [
  "",
  "text/plain",
  "\t v \t",
  "\u00e9\u00ff\u0080",
  "a".repeat(3000),
  "bad\r\nx",
  "nul\0",
];

/**
 * Headers: valid and invalid names and values (CR, LF, NUL, spaces in names). Invalid ones
 * make `prepareMessage` throw, which the model expects.
 */
export const headersSpec: fc.Arbitrary<Record<string, string> | undefined> = fc.option(
  fc.dictionary(fc.constantFrom(...HEADER_NAMES), fc.constantFrom(...HEADER_VALUES), { maxKeys: 3 }),
  { nil: undefined },
);

/** Abbreviates `text` for a counterexample: escapes, and long runs shown by their length. */
export function show(value: unknown): string {
  const json = JSON.stringify(value, (_key, v) => {
    if (typeof v === "string" && v.length > 60)
      return `${v.slice(0, 24)}…(${v.length} units)…${v.slice(-12)}`;
    if (Array.isArray(v) && v.length > 24) return [...v.slice(0, 8), `…(${v.length} items)`];
    return v;
  });
  return json ?? String(value);
}

/** Whether `text` is well-formed UTF-16 (no lone surrogate). */
export function isWellFormed(text: string): boolean {
  return wellFormedText(text) === text;
}

/**
 * Whether `stored` is an acceptable stored form of the text `given`: the same text, its
 * well-formed form (lone surrogates as U+FFFD), or either cut on a code-point boundary to at
 * least 1000 units and ended with `…`. When `given` was well-formed, so must `stored` be.
 */
export function acceptableText(given: string, stored: string): boolean {
  if (!isWellFormed(stored) && isWellFormed(given)) return false;
  const clean = wellFormedText(given);
  if (stored === given || stored === clean) return true;
  if (!stored.endsWith("…") || stored.length < 1000) return false;
  const kept = stored.slice(0, -1);
  return (clean.startsWith(kept) || given.startsWith(kept)) && kept.length < given.length;
}

/**
 * The error text a store is expected to keep for `given`: a store that cannot hold NUL
 * (`refusesNul`) keeps each NUL as U+FFFD, one unit for one, so cuts fall where they would.
 */
export function expectedError(
  given: string | undefined,
  refusesNul: boolean | undefined,
): string | undefined {
  return refusesNul === true && given !== undefined ? given.replaceAll("\0", "\uFFFD") : given;
}
