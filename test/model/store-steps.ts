/**
 * The commands of the store model: each runs one store call, checks the answer against the
 * {@link StoreModel} and moves the model on (see `Step`: after every command, the store's stats
 * and dead list are compared with the model).
 */
import {
  type ClaimOptions,
  type DeadUpdate,
  type PassOutcome,
  prepareMessage,
  type RetryUpdate,
  ValidationError,
} from "../../mod.ts";
import { type ModelMessage, SEQ_HEADER, type Span, type StoreModel, violated } from "./reference.ts";
import { BOGUS_TOKEN, type Model, type Real, Step, sleep, timed, withSkew } from "./store-run.ts";
import { expectedError, inputValue, isWellFormed, show, type ValueSpec } from "./text.ts";

/** One message of an `Add`. */
export interface AddSpec {
  key: number;
  value: ValueSpec;
  headers: Record<string, string> | undefined;
  /** Same timestamp as the message before (ties are broken by commit order). */
  tie: boolean;
}

const HEADER_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const HEADER_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;

/** Whether `addMessage` must refuse (true), must accept (false) or may do either (undefined). */
function mustRefuse(key: string, headers: Record<string, string> | undefined): boolean | undefined {
  const badHeader = Object.entries(headers ?? {}).some(
    ([n, v]) => !HEADER_NAME.test(n) || !HEADER_VALUE.test(v),
  );
  if (key.length === 0 || key.length > 1024 || badHeader) return true;
  // A key with a lone surrogate may be refused or stored well-formed; both keep the guarantee.
  return isWellFormed(key) ? false : undefined;
}

/** Whether a key or header holds NUL (U+0000). */
function holdsNul(key: string, headers: Record<string, string>): boolean {
  return key.includes("\0") || Object.entries(headers).some(([n, v]) => n.includes("\0") || v.includes("\0"));
}

class RollBack extends Error {}

/** addMessage of 1-4 messages in one transaction that commits or rolls back. */
export class Add extends Step {
  constructor(
    readonly specs: AddSpec[],
    readonly commit: boolean,
  ) {
    super();
  }
  describe(): string {
    return `add(${this.commit ? "commit" : "rollback"}, ${show(this.specs)})`;
  }
  async apply({ m, keys }: Model, real: Real): Promise<void> {
    const start = Date.now();
    const added: ModelMessage[] = [];
    const rollback = new RollBack("rolled back by the model");
    const run = real.s.store.withTransaction(async (tx) => {
      for (const spec of this.specs) {
        const key = keys[spec.key % keys.length]!;
        const seq = m.nextSeq++;
        const value = inputValue(spec.value);
        const expectedBytes =
          typeof value === "string" ? new TextEncoder().encode(value) : Uint8Array.from(value);
        const timestamp =
          spec.tie && m.lastTimestamp > 0 ? m.lastTimestamp : Math.max(Date.now(), m.lastTimestamp + 1);
        const headers = { ...spec.headers, [SEQ_HEADER]: String(seq) };
        const refuse = mustRefuse(key, spec.headers);
        let prepared: ReturnType<typeof prepareMessage>;
        try {
          prepared = prepareMessage(
            { key, value, headers },
            { maxMessageBytes: 1 << 20, now: new Date(timestamp) },
          );
        } catch (error) {
          if (!(error instanceof ValidationError)) throw error;
          if (refuse === false)
            violated("valid messages are accepted", `${show({ key, headers })}: ${error.message}`);
          continue;
        }
        if (refuse === true) violated("invalid messages are refused", `accepted ${show({ key, headers })}`);
        if (real.s.refusesNul === true && holdsNul(key, prepared.headers)) {
          // Refused before anything is written: the transaction goes on with the next message.
          const error = await real.s.store.addMessage(tx, prepared).then(
            () => undefined,
            (e: unknown) => e,
          );
          if (!(error instanceof ValidationError && error.code === "INVALID_MESSAGE"))
            violated(
              "a store that cannot hold NUL refuses it in keys and headers with a ValidationError",
              `${show({ key, headers })}: ${error === undefined ? "accepted" : show(String(error))}`,
            );
          continue;
        }
        await real.s.store.addMessage(tx, prepared);
        // What was accepted is what is delivered: later changes to the caller's buffer do not count.
        if (m.aliasing && typeof value !== "string") value.fill(0xee);
        m.lastTimestamp = timestamp;
        added.push({
          seq,
          key,
          value: expectedBytes,
          headers: Object.fromEntries(Object.entries(prepared.headers)),
          timestamp,
          state: "unfinished",
          retries: 0,
          lastError: { kind: "text", text: undefined },
          leaseEnd: [0, 0],
          ready: [0, 0],
        });
      }
      if (!this.commit) throw rollback;
    });
    // Expected headers are what validation produced: copy them before the store could alias them.
    if (this.commit) {
      await run;
      const end = Date.now();
      for (const message of added) {
        message.ready = [Math.min(message.timestamp, start), Math.max(message.timestamp, end)];
        m.messages.push(message);
      }
    } else {
      const error = await run.then(
        () => undefined,
        (e: unknown) => e,
      );
      if (error !== rollback)
        violated("a rolled-back transaction rethrows the caller's error", show(String(error)));
      for (const message of added) m.rolledBack.add(message.seq);
    }
  }
}

/** fetchAndLock by one of several relays. */
export class ClaimStep extends Step {
  /** `skew`: the relay's clock is this many ms off (a store must decide on its own clock). */
  constructor(
    readonly options: ClaimOptions,
    readonly skew = 0,
  ) {
    super();
  }
  describe(): string {
    return `claim(${show(this.options)}${this.skew === 0 ? "" : `, clock ${this.skew > 0 ? "+" : ""}${this.skew} ms`})`;
  }
  async apply({ m }: Model, real: Real): Promise<void> {
    const { result, span } = await timed(() =>
      withSkew(this.skew, () => real.s.store.fetchAndLock(this.options)),
    );
    m.recordClaim(result, this.options, span, this.describe());
    if (m.aliasing) scribble(result.messages);
  }
}

/** A sender that writes into what it was given must not change what the store keeps. */
function scribble(messages: readonly { value: Uint8Array; headers: Record<string, string> }[]): void {
  for (const message of messages) {
    try {
      message.value.fill(0xcc);
      (message.headers as Record<string, string>)[SEQ_HEADER] = "scribbled";
    } catch {
      // Frozen values are fine too.
    }
  }
}

/** Which mark. */
export type MarkKind = "sent" | "retry" | "dead";
const DELAYS = { none: 0, short: 40, long: 3_600_000 } as const;
/** How long a failed message waits. */
export type DelayKind = keyof typeof DELAYS;

/** What a mark or release is about. */
export interface Target {
  claim: number;
  pick: boolean[];
  foreign: number[];
  garbage: string[];
}

/** The token and ids a mark or release is about: some of a claim's ids, others' ids, garbage. */
function resolveTarget(m: StoreModel, target: Target): { token: string; ids: string[] } {
  const claim = m.claims.length === 0 ? undefined : m.claims[target.claim % m.claims.length];
  const ids: string[] = [];
  claim?.seqs.forEach((seq, i) => {
    const id = m.messages.find((x) => x.seq === seq)?.id;
    if (id !== undefined && (target.pick[i] ?? true)) ids.push(id);
  });
  const known = [...m.byId.keys()];
  for (const i of target.foreign) if (known.length > 0) ids.push(known[i % known.length]!);
  ids.push(...target.garbage);
  return { token: claim?.token ?? BOGUS_TOKEN, ids: [...new Set(ids)] };
}

function applyMark(
  m: StoreModel,
  kind: MarkKind,
  changed: ModelMessage[],
  error: string | undefined,
  delay: number,
  span: Span,
): void {
  for (const message of changed) {
    message.token = undefined;
    if (kind === "sent") {
      message.state = m.keepSent ? "sent" : "purged";
      message.sentAt = [span.start, span.end];
    } else {
      message.lastError = { kind: "text", text: error };
      if (kind === "dead") message.state = "dead";
      else {
        message.retries += 1;
        message.ready = [span.start + delay, span.end + delay];
      }
    }
  }
}

function retryUpdates(ids: string[], error: string | undefined, delay: number): RetryUpdate[] {
  const now = Date.now();
  return ids.map((id) => ({ id, availableAt: new Date(now + delay), delay, error }));
}

/** One of the three marks, with a claim's token (current or stale) or a bogus one. */
export class Mark extends Step {
  constructor(
    readonly kind: MarkKind,
    readonly target: Target,
    readonly error: string | undefined,
    readonly delay: DelayKind,
  ) {
    super();
  }
  describe(): string {
    return `mark(${this.kind}, ${show({ ...this.target, error: this.error, delay: this.delay })})`;
  }
  async apply({ m }: Model, real: Real): Promise<void> {
    const { token, ids } = resolveTarget(m, this.target);
    const expected = m.holding(token, ids);
    const delay = DELAYS[this.delay];
    const store = real.s.store;
    const { result, span } = await timed(() =>
      this.kind === "sent"
        ? store.markAsSent(token, ids)
        : this.kind === "dead"
          ? store.markAsDead(
              token,
              ids.map((id) => ({ id, error: this.error })),
            )
          : store.updateRetryCount(token, retryUpdates(ids, this.error, delay)),
    );
    if (result !== expected.length) {
      violated(
        "a mark changes exactly the rows still holding its token",
        `${this.describe()} changed ${result}, expected ${expected.length} (${show(expected.map((x) => x.seq))})`,
      );
    }
    applyMark(m, this.kind, expected, expectedError(this.error, real.s.refusesNul), delay, span);
  }
}

/** recordAndFetch: the three marks and the next claim, atomically. */
export class RecordAndFetch extends Step {
  constructor(
    readonly target: Target,
    readonly groups: number[],
    readonly error: string | undefined,
    readonly delay: DelayKind,
    readonly next: ClaimOptions,
  ) {
    super();
  }
  override check({ m }: Readonly<Model>): boolean {
    return m.recordAndFetch;
  }
  describe(): string {
    return `recordAndFetch(${show({ ...this.target, groups: this.groups, error: this.error, delay: this.delay, next: this.next })})`;
  }
  async apply({ m }: Model, real: Real): Promise<void> {
    const { token, ids } = resolveTarget(m, this.target);
    const kinds: MarkKind[] = ["sent", "retry", "dead"];
    const byKind: Record<MarkKind, string[]> = { sent: [], retry: [], dead: [] };
    ids.forEach((id, i) => {
      byKind[kinds[(this.groups[i] ?? 0) % 3]!].push(id);
    });
    const delay = DELAYS[this.delay];
    const outcome: PassOutcome = {
      token,
      sent: byKind.sent,
      retry: retryUpdates(byKind.retry, this.error, delay),
      dead: byKind.dead.map((id): DeadUpdate => ({ id, error: this.error })),
    };
    const expected = {
      sent: m.holding(token, byKind.sent),
      failed: m.holding(token, byKind.retry),
      dead: m.holding(token, byKind.dead),
    };
    const { result, span } = await timed(() => real.s.store.recordAndFetch!(outcome, this.next));
    const counts = { sent: expected.sent.length, failed: expected.failed.length, dead: expected.dead.length };
    if (show(result.recorded) !== show(counts)) {
      violated(
        "recordAndFetch records exactly the rows still holding the token",
        `${this.describe()} recorded ${show(result.recorded)}, expected ${show(counts)}`,
      );
    }
    applyMark(m, "sent", expected.sent, undefined, 0, span);
    const error = expectedError(this.error, real.s.refusesNul);
    applyMark(m, "retry", expected.failed, error, delay, span);
    applyMark(m, "dead", expected.dead, error, 0, span);
    m.recordClaim(result.claim, this.next, span, this.describe());
    if (m.aliasing) scribble(result.claim.messages);
  }
}

/** release: claimed messages given back unsent, claimable at once, attempts untouched. */
export class Release extends Step {
  constructor(readonly target: Target) {
    super();
  }
  override check({ m }: Readonly<Model>): boolean {
    return m.release;
  }
  describe(): string {
    return `release(${show(this.target)})`;
  }
  async apply({ m }: Model, real: Real): Promise<void> {
    const { token, ids } = resolveTarget(m, this.target);
    const expected = m.holding(token, ids);
    const changed = await real.s.store.release!(token, ids);
    if (changed !== expected.length) {
      violated(
        "release changes exactly the rows still holding its token",
        `${this.describe()} changed ${changed}, expected ${expected.length}`,
      );
    }
    for (const message of expected) message.token = undefined;
  }
}

/** Real time passes: short leases and short delays run out. */
export class Wait extends Step {
  constructor(readonly ms: number) {
    super();
  }
  describe(): string {
    return `wait(${this.ms})`;
  }
  async apply(): Promise<void> {
    await sleep(this.ms);
  }
}

/** requeueDead of everything, or of some ids (dead, not dead, garbage). */
export class Requeue extends Step {
  constructor(
    readonly all: boolean,
    readonly pick: number[],
    readonly garbage: string[],
  ) {
    super();
  }
  describe(): string {
    return `requeueDead(${this.all ? "all" : show({ pick: this.pick, garbage: this.garbage })})`;
  }
  async apply({ m }: Model, real: Real): Promise<void> {
    const known = [...m.byId.values()];
    const ids = this.all
      ? undefined
      : [
          ...new Set([
            ...this.pick.flatMap((i) => (known.length > 0 ? [known[i % known.length]!.id!] : [])),
            ...this.garbage,
          ]),
        ];
    const expected = ids === undefined ? m.dead : m.dead.filter((x) => ids.includes(x.id!));
    const { result, span } = await timed(() => real.s.store.requeueDead(ids));
    if (result !== expected.length) {
      violated(
        "requeueDead moves exactly the dead messages named",
        `${this.describe()} moved ${result}, expected ${expected.length}`,
      );
    }
    for (const message of expected) {
      message.state = "unfinished";
      message.retries = 0;
      message.token = undefined;
      message.ready = [span.start, span.end];
      message.lastError = { kind: "either", options: [message.lastError, { kind: "text", text: undefined }] };
    }
  }
}

/** Retention: purge kept sent rows sent before a cutoff (never unsent or dead ones). */
export class Purge extends Step {
  constructor(readonly now: boolean) {
    super();
  }
  override check({ m }: Readonly<Model>): boolean {
    return m.keepSent;
  }
  describe(): string {
    return `purgeSent(${this.now ? "now" : "epoch"})`;
  }
  async apply({ m }: Model, real: Real): Promise<void> {
    const cutoff = this.now ? Date.now() + 1 : 0;
    // Messages are in commit order, which is also id order: the last one is the newest row.
    const newest = real.s.keepsNewestRow === true ? m.messages.at(-1) : undefined;
    const expected = m.messages.filter((x) => x !== newest && x.state === "sent" && x.sentAt![1] < cutoff);
    const purged = await real.s.purgeSent!(new Date(cutoff));
    if (purged !== expected.length) {
      violated(
        "purgeSent deletes exactly the sent rows before the cutoff",
        `${this.describe()} deleted ${purged}, expected ${expected.length}`,
      );
    }
    for (const message of expected) message.state = "purged";
  }
}

/** listDead with a small limit (the full list is checked after every step anyway). */
export class ListDead extends Step {
  constructor(readonly limit: number) {
    super();
  }
  describe(): string {
    return `listDead(${this.limit})`;
  }
  async apply({ m }: Model, real: Real): Promise<void> {
    m.checkDead(await real.s.store.listDead({ limit: this.limit }), this.limit, this.describe());
  }
}
