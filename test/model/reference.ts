/**
 * The reference model of the store contract (src/store.ts): what every committed message is
 * (unfinished, sent, dead), which claim token holds it, when its lease ends and when it is
 * ready, and every check a store's answer must pass against it.
 *
 * Time: a store decides leases and readiness on its own clock (the process's, or the
 * database's on the same machine). The model only knows the wall-clock interval around each
 * call, so a lease end or a ready time is an interval too: a message is certainly claimable
 * when its interval ended before the claim began, possibly claimable when it began before the
 * claim ended. Claims are checked against both bounds.
 */
import {
  type Claim,
  type ClaimOptions,
  type Message,
  type OutboxStats,
  SendStatus,
  wellFormedText,
} from "../../mod.ts";
import { acceptableText, show } from "./text.ts";

/** Tolerance (ms) between the wall clock and a store's clock (sub-ms database time, rounding). */
export const CLOCK_SLACK = 5;
/** The header that tells the model which message a store handed back. */
export const SEQ_HEADER = "x-model-seq";

/** A broken guarantee, with what the model expected. */
export class ModelViolation extends Error {
  override name = "ModelViolation";
}

/** Throws a {@link ModelViolation} naming the broken guarantee. */
export function violated(guarantee: string, details: string): never {
  throw new ModelViolation(`${guarantee}: ${details}`);
}

/** What `lastError` may be: a given text (in a stored form), none, or anything a store chose. */
export type ErrorExpectation =
  | { kind: "text"; text: string | undefined }
  | { kind: "any" }
  | { kind: "either"; options: ErrorExpectation[] };

function errorMatches(expected: ErrorExpectation, actual: string | undefined): boolean {
  switch (expected.kind) {
    case "any":
      return actual === undefined || typeof actual === "string";
    case "either":
      return expected.options.some((option) => errorMatches(option, actual));
    case "text":
      if (expected.text === undefined) return actual === undefined;
      return typeof actual === "string" && acceptableText(expected.text, actual);
  }
}

/** One committed message as the model knows it. */
export interface ModelMessage {
  /** Commit order; also the store's id order. */
  seq: number;
  key: string;
  value: Uint8Array;
  headers: Record<string, string>;
  timestamp: number;
  /** The store's id, learned when the message is first handed back. */
  id?: string;
  state: "unfinished" | "sent" | "dead" | "purged";
  retries: number;
  lastError: ErrorExpectation;
  /** The claim token the row holds (kept after its lease ends, until a mark or a new claim). */
  token?: string | undefined;
  leaseEnd: [number, number];
  ready: [number, number];
  sentAt?: [number, number];
}

/** Wall-clock bounds of one store call. */
export interface Span {
  start: number;
  end: number;
}

/** The model: every message committed so far, and the claims handed out. */
export class StoreModel {
  readonly messages: ModelMessage[] = [];
  readonly byId = new Map<string, ModelMessage>();
  readonly claims: { token: string; seqs: number[] }[] = [];
  lastTimestamp = 0;
  /** Seqs of messages added in transactions that rolled back: they must never appear. */
  readonly rolledBack = new Set<number>();
  nextSeq = 1;

  /**
   * @param keepSent the store keeps sent rows until purged
   * @param recordAndFetch the store has `recordAndFetch`
   * @param release the store has `release`
   * @param aliasing the caller writes into its value buffer right after `addMessage`, and into
   *   the messages a claim hands out
   */
  constructor(
    readonly keepSent: boolean,
    readonly recordAndFetch: boolean,
    readonly release: boolean,
    readonly aliasing = false,
  ) {}

  get unfinished(): ModelMessage[] {
    return this.messages.filter((m) => m.state === "unfinished");
  }

  get dead(): ModelMessage[] {
    return this.messages.filter((m) => m.state === "dead");
  }

  /** The model message a store's message stands for (by its sequence header), checked for identity. */
  identify(message: Message, where: string): ModelMessage {
    const seq = Number(message.headers?.[SEQ_HEADER]);
    if (this.rolledBack.has(seq)) {
      violated("a rolled-back message never appears", `${where} returned message #${seq} (id ${message.id})`);
    }
    const model = this.messages.find((m) => m.seq === seq);
    if (model === undefined) {
      violated(
        "only committed messages appear",
        `${where} returned ${show(message.id)} with headers ${show(message.headers)}`,
      );
    }
    if (typeof message.id !== "string" || message.id === "") {
      violated("ids are non-empty strings", `${where}: message #${seq} has id ${show(message.id)}`);
    }
    if (model.id === undefined) {
      const other = this.byId.get(message.id);
      if (other !== undefined) {
        violated(
          "ids are unique",
          `${where}: id ${message.id} of message #${other.seq} given to #${seq} too`,
        );
      }
      model.id = message.id;
      this.byId.set(message.id, model);
    } else if (model.id !== message.id) {
      violated("ids are stable", `${where}: message #${seq} was ${model.id}, now ${message.id}`);
    }
    return model;
  }

  /** Checks that `message` carries exactly what was added, and its current retries and error. */
  checkContent(message: Message, model: ModelMessage, status: number, where: string): void {
    const what = `${where}: message #${model.seq} (${model.id})`;
    if (message.key !== model.key && message.key !== wellFormedText(model.key)) {
      violated("keys are kept", `${what} key ${show(message.key)}, added ${show(model.key)}`);
    }
    if (!(message.value instanceof Uint8Array) || !sameBytes(message.value, model.value)) {
      violated(
        "bytes delivered equal bytes added",
        `${what} value of ${message.value?.length} bytes ${show(Array.from(message.value ?? []))}, added ${model.value.length} bytes ${show(Array.from(model.value))}`,
      );
    }
    if (!sameHeaders(message.headers, model.headers)) {
      violated("headers are kept", `${what} headers ${show(message.headers)}, added ${show(model.headers)}`);
    }
    if (!(message.timestamp instanceof Date) || message.timestamp.getTime() !== model.timestamp) {
      violated(
        "timestamps are kept",
        `${what} timestamp ${String(message.timestamp)}, added ${model.timestamp}`,
      );
    }
    if (message.retries !== model.retries) {
      violated(
        "retries count every failed or lost attempt",
        `${what} retries ${message.retries}, expected ${model.retries}`,
      );
    }
    if (!errorMatches(model.lastError, message.lastError)) {
      violated(
        "error texts are kept (well-formed)",
        `${what} lastError ${show(message.lastError)}, expected ${show(model.lastError)}`,
      );
    }
    if (message.status !== status) violated("status", `${what} status ${message.status}, expected ${status}`);
  }

  /** Messages whose key has an older unfinished message (never claimable with ordering "key"). */
  keyBlocked(model: ModelMessage): ModelMessage | undefined {
    return this.messages.find((m) => m.state === "unfinished" && m.key === model.key && m.seq < model.seq);
  }

  /**
   * Checks a claim made within `span` with `options`, then records it: every message possibly
   * claimable, never one another claim certainly holds, oldest first, none certainly claimable
   * left behind an older one or in a batch not full; contents exact; a lost lease counted.
   */
  recordClaim(claim: Claim, options: ClaimOptions, span: Span, where: string): void {
    if (typeof claim.token !== "string" || claim.token === "") {
      violated("claims carry a token", `${where} token ${show(claim.token)}`);
    }
    if (
      this.claims.some((c) => c.token === claim.token) ||
      this.messages.some((m) => m.token === claim.token)
    ) {
      violated("claim tokens are fresh", `${where} reused token ${claim.token}`);
    }
    if (claim.messages.length > options.batchSize) {
      violated("a claim holds at most batchSize", `${where} ${claim.messages.length} > ${options.batchSize}`);
    }
    const taken: ModelMessage[] = [];
    for (const message of claim.messages) {
      const model = this.identify(message, where);
      if (taken.includes(model)) violated("a claim holds each message once", `${where} #${model.seq} twice`);
      if (model.state !== "unfinished") {
        violated(
          "sent and dead messages are never claimed",
          `${where} claimed #${model.seq} which is ${model.state}`,
        );
      }
      if (model.token !== undefined && model.leaseEnd[0] - CLOCK_SLACK > span.end) {
        violated(
          "no message has two live holders",
          `${where} claimed #${model.seq} whose lease under ${model.token} ends at ${model.leaseEnd[0]}, after this claim (${span.start}..${span.end})`,
        );
      }
      if (model.ready[0] - CLOCK_SLACK > span.end) {
        violated(
          "a message waits for its ready time",
          `${where} claimed #${model.seq} ready at ${model.ready[0]}, claim ${span.end}`,
        );
      }
      if (options.ordering === "key") {
        const older = this.keyBlocked(model);
        if (older !== undefined) {
          violated(
            'per-key order holds with ordering "key"',
            `${where} claimed #${model.seq} (key ${show(model.key)}) while older #${older.seq} is unfinished`,
          );
        }
      }
      const expected = { ...model, retries: model.retries + (model.token === undefined ? 0 : 1) };
      if (model.token !== undefined) expected.lastError = { kind: "any" };
      this.checkContent(message, expected, SendStatus.None, where);
      taken.push(model);
    }
    for (let i = 1; i < taken.length; i++) {
      if (olderFirst(taken[i]!, taken[i - 1]!) < 0) {
        violated("a claim is oldest first", `${where} #${taken[i - 1]!.seq} before #${taken[i]!.seq}`);
      }
    }
    const newest = taken.reduce<ModelMessage | undefined>(
      (a, b) => (a === undefined || olderFirst(a, b) < 0 ? b : a),
      undefined,
    );
    for (const model of this.unfinished) {
      if (taken.includes(model) || !this.certainlyClaimable(model, options, span)) continue;
      if (taken.length < options.batchSize || (newest !== undefined && olderFirst(model, newest) < 0)) {
        violated(
          "a claim takes the oldest ready messages",
          `${where} left #${model.seq} (ready, no lease) behind, took ${show(taken.map((m) => m.seq))} of batchSize ${options.batchSize}`,
        );
      }
    }
    for (const model of taken) {
      if (model.token !== undefined) {
        model.retries += 1;
        model.lastError = { kind: "any" };
      }
      model.token = claim.token;
      model.leaseEnd = [span.start + options.leaseDuration, span.end + options.leaseDuration];
    }
    this.claims.push({ token: claim.token, seqs: taken.map((m) => m.seq) });
  }

  certainlyClaimable(model: ModelMessage, options: ClaimOptions, span: Span): boolean {
    if (model.state !== "unfinished") return false;
    if (options.ordering === "key" && this.keyBlocked(model) !== undefined) return false;
    if (model.ready[1] + CLOCK_SLACK > span.start) return false;
    return model.token === undefined || model.leaseEnd[1] + CLOCK_SLACK <= span.start;
  }

  /** The messages a mark with `token` changes: distinct known ids still holding it. */
  holding(token: string, ids: readonly string[]): ModelMessage[] {
    const found: ModelMessage[] = [];
    for (const id of new Set(ids)) {
      const model = this.byId.get(id);
      if (model?.state === "unfinished" && model.token === token) found.push(model);
    }
    return found;
  }

  /** Checks stats taken within `span` against the model. */
  checkStats(stats: OutboxStats, span: Span, where: string): void {
    const unfinished = this.unfinished;
    const live = (m: ModelMessage, at: number) => m.token !== undefined && m.leaseEnd[0] - CLOCK_SLACK > at;
    const maybeLive = (m: ModelMessage, at: number) =>
      m.token !== undefined && m.leaseEnd[1] + CLOCK_SLACK > at;
    const minInFlight = unfinished.filter((m) => live(m, span.end)).length;
    const maxInFlight = unfinished.filter((m) => maybeLive(m, span.start)).length;
    const oldest = unfinished.reduce<number | null>(
      (a, m) => (a === null || m.timestamp < a ? m.timestamp : a),
      null,
    );
    const ok =
      stats.pending + stats.inFlight === unfinished.length &&
      stats.inFlight >= minInFlight &&
      stats.inFlight <= maxInFlight &&
      stats.dead === this.dead.length &&
      (stats.oldestPendingAt === null ? oldest === null : stats.oldestPendingAt.getTime() === oldest);
    if (!ok) {
      violated(
        "nothing committed is lost (stats count every unfinished and dead message)",
        `${where}: stats ${show({ ...stats, oldestPendingAt: stats.oldestPendingAt?.getTime() ?? null })}, model: ${unfinished.length} unfinished (${minInFlight}..${maxInFlight} in flight), ${this.dead.length} dead, oldest ${oldest}`,
      );
    }
  }

  /** Checks a `listDead` answer: the oldest `limit` dead messages, exactly. */
  checkDead(list: readonly Message[], limit: number, where: string): void {
    const expected = this.dead.slice(0, limit);
    if (list.length !== expected.length) {
      violated(
        "dead messages stay queryable",
        `${where}: ${list.length} listed, model has ${this.dead.length} dead (${show(this.dead.map((m) => m.seq))}), limit ${limit}`,
      );
    }
    list.forEach((message, i) => {
      const model = this.identify(message, where);
      if (model !== expected[i]) {
        violated(
          "listDead is oldest first",
          `${where}: #${model.seq} at ${i}, expected #${expected[i]!.seq}`,
        );
      }
      this.checkContent(message, model, SendStatus.Dead, where);
    });
  }
}

/** Claim order: timestamp, then commit order. */
export function olderFirst(a: ModelMessage, b: ModelMessage): number {
  return a.timestamp - b.timestamp || a.seq - b.seq;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function sameHeaders(actual: unknown, expected: Record<string, string>): boolean {
  if (typeof actual !== "object" || actual === null) return false;
  const a = actual as Record<string, unknown>;
  const keys = Object.keys(expected);
  return Object.keys(a).length === keys.length && keys.every((k) => a[k] === expected[k]);
}
