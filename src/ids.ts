/**
 * Message ids that are unique beyond one table: `msg_<namespace>_<row>`, where the namespace is
 * random per outbox (a store creates it once, in `migrate()`, and keeps it with its schema
 * version) and `<row>` is the store's own integer id. Receivers and QStash deduplicate on this
 * id, so two outboxes (two tables, two databases, one database after a reset) must never
 * produce the same one; the namespace costs nothing per row.
 *
 * @module
 */
import { ValidationError } from "./errors.ts";

const NAMESPACE_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz";
/** Characters in a namespace: 16 of 32 symbols, 80 random bits. */
export const NAMESPACE_LENGTH = 16;
const NAMESPACE = new RegExp(`^[${NAMESPACE_ALPHABET}]{${NAMESPACE_LENGTH}}$`);
const MESSAGE_ID = new RegExp(`^msg_([${NAMESPACE_ALPHABET}]{${NAMESPACE_LENGTH}})_([1-9][0-9]{0,18})$`);
const MAX_ROW_ID = 9223372036854775807n;

/**
 * A fresh random namespace (Crockford-style base32, lower case, 80 bits from Web Crypto).
 * For store implementations: create it once per outbox and keep it.
 */
export function newIdNamespace(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(NAMESPACE_LENGTH));
  let namespace = "";
  for (const byte of bytes) namespace += NAMESPACE_ALPHABET[byte & 31];
  return namespace;
}

/** Throws a `ValidationError` unless `namespace` is one {@link newIdNamespace} could return. */
export function checkIdNamespace(namespace: unknown): string {
  if (typeof namespace !== "string" || !NAMESPACE.test(namespace)) {
    throw new ValidationError(
      `an id namespace must be ${NAMESPACE_LENGTH} characters of [${NAMESPACE_ALPHABET}], got ${JSON.stringify(namespace)}`,
    );
  }
  return namespace;
}

/**
 * The public id of row `rowId` (a decimal integer as text) in the outbox of `namespace`.
 *
 * @example
 * formatMessageId("7k2m9x4qa1b3c5d8", "42"); // "msg_7k2m9x4qa1b3c5d8_42"
 */
export function formatMessageId(namespace: string, rowId: string): string {
  return `msg_${namespace}_${rowId}`;
}

/**
 * The row id (decimal text, 1 to 2^63 - 1) that `id` names in the outbox of `namespace`, or
 * undefined when `id` is not one of that outbox's ids (another outbox's, malformed, not a
 * string): such an id names no row, so marks and requeues skip it. A bare decimal row id (the
 * form ids had before namespaces) is accepted too, so ids saved before an upgrade keep working.
 */
export function parseMessageId(namespace: string, id: unknown): string | undefined {
  if (typeof id !== "string") return undefined;
  let row: string | undefined;
  const match = MESSAGE_ID.exec(id);
  if (match) {
    if (match[1] !== namespace) return undefined;
    row = match[2];
  } else if (/^[1-9][0-9]{0,18}$/.test(id)) row = id;
  if (row === undefined) return undefined;
  return row.length < 19 || BigInt(row) <= MAX_ROW_ID ? row : undefined;
}
