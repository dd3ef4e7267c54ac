/**
 * What the streaming send window holds on to, on a real libSQL file: a long drain keeps only
 * the messages in flight or waiting to be recorded reachable (not every message it sent), also
 * while one send hangs at the head of the shared deadline queue; a tick with the caller's
 * signal and a window of 20 adds one listener to it, not one per send in flight, and leaves
 * none behind.
 *
 * Reachability is counted with WeakRefs after a full GC (`gc` exposed at run time), so the
 * bounds hold however loaded the machine is: nothing here depends on timing.
 */
import { getEventListeners } from "node:events";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { type Message, Outbox, type Sender } from "../mod.ts";
import { tempDir } from "./libsql/helpers.ts";
import { type AnyStore, everyStore, type OpenedStore } from "./support/stores.ts";

setFlagsFromString("--expose-gc");
/** A full, precise garbage collection (V8's own `gc`, exposed by the flag above). */
const gc = runInNewContext("gc") as () => void;

const temp = tempDir();
afterAll(() => temp.cleanup());
const libsql = everyStore(temp.dir).find(([name]) => name === "LibsqlStore")![1];

const opened: OpenedStore[] = [];
afterEach(async () => {
  for (const o of opened.splice(0)) await o.close();
});

async function openLibsql(): Promise<AnyStore> {
  const o = await libsql();
  opened.push(o);
  return o.store;
}

const BATCH = 20;
const WINDOW = 8;
const nextTask = () => new Promise((resolve) => setTimeout(resolve, 0));

/** How many of `refs` still reach their message after a full GC in a later task. */
async function alive(refs: readonly WeakRef<Message>[]): Promise<number> {
  // A later task: promise jobs of the sends and writes before have run, and WeakRef targets
  // are no longer kept for the job that made them.
  await nextTask();
  gc();
  return refs.filter((ref) => ref.deref() !== undefined).length;
}

/**
 * A windowed sender that delivers each message a turn later, keeps a WeakRef to every message
 * it is given, and once the `checkAt`th message comes counts how many of the first `early`
 * are still reachable. With `hangFirst`, the first message hangs until that count is taken.
 */
function countingSender(checkAt: number, early: number, hangFirst = false) {
  const refs: WeakRef<Message>[] = [];
  let released: () => void = () => {};
  const hung = new Promise<void>((resolve) => {
    released = resolve;
  });
  const counted: { early?: number } = {};
  const sender: Sender = {
    window: WINDOW,
    async send(messages) {
      const first = refs.length === 0;
      for (const message of messages) refs.push(new WeakRef(message));
      if (first && hangFirst) await hung;
      else if (refs.length === checkAt) {
        // The hanging first message is not one of those counted: it is still out.
        counted.early = await alive(refs.slice(hangFirst ? 1 : 0, early));
        released();
      } else await new Promise((resolve) => setImmediate(resolve));
      for (const message of messages) message.markAsSent();
      return messages;
    },
  };
  return { sender, refs, counted };
}

async function fill(outbox: Outbox<unknown>, store: AnyStore, n: number): Promise<void> {
  await store.withTransaction(async (tx) => {
    for (let i = 0; i < n; i++) await outbox.addMessage(tx, { key: `k${i}`, value: `value ${i}` });
  });
}

describe("send window resources", () => {
  it("a long drain keeps only what is in flight or unrecorded reachable, not every message sent", async () => {
    const store = await openLibsql();
    const { sender, refs, counted } = countingSender(250, 200);
    const outbox = new Outbox(store, sender, {
      batchSize: BATCH,
      sendTimeout: 10_000,
      leaseDuration: 20_000,
    });
    await fill(outbox, store, 300);
    expect(await outbox.tick()).toMatchObject({ sent: 300, failed: 0 });
    // Every one of the first 200 was recorded at least 50 messages (two claims and more) ago:
    // the claims open then were a window and a batch or two, all after them.
    expect(counted.early).toBeLessThan(BATCH);
    expect(await alive(refs)).toBeLessThan(BATCH);
  });

  it("a send hanging at the head of the deadline queue keeps no finished send's messages", async () => {
    const store = await openLibsql();
    const { sender, counted } = countingSender(250, 200, true);
    // The hanging send is released by the sender itself once the count is taken, far within
    // sendTimeout: no deadline is needed for this test to end.
    const outbox = new Outbox(store, sender, {
      batchSize: BATCH,
      sendTimeout: 30_000,
      leaseDuration: 40_000,
    });
    await fill(outbox, store, 300);
    expect(await outbox.tick()).toMatchObject({ sent: 300, failed: 0 });
    expect(counted.early).toBeLessThan(BATCH);
  });

  it("a tick with the caller's signal and a window of 20 adds one listener to it, none left after", async () => {
    const store = await openLibsql();
    const warnings: Error[] = [];
    const onWarning = (warning: Error) => warnings.push(warning);
    process.on("warning", onWarning);
    try {
      const controller = new AbortController();
      let most = 0;
      let sends = 0;
      const sender: Sender = {
        window: 20,
        async send(messages) {
          sends += 1;
          most = Math.max(most, getEventListeners(controller.signal, "abort").length);
          // The first 20 are held until all 20 are out at once.
          if (sends <= 20) await waitUntil(() => sends >= 20);
          for (const message of messages) message.markAsSent();
          return messages;
        },
      };
      const outbox = new Outbox(store, sender, { batchSize: 20, sendTimeout: 10_000, leaseDuration: 20_000 });
      await fill(outbox, store, 60);
      expect(await outbox.tick({ signal: controller.signal })).toMatchObject({ sent: 60, failed: 0 });
      // Warnings are emitted on a later tick of the process.
      await nextTask();
      expect(warnings.filter((w) => w.name === "MaxListenersExceededWarning")).toEqual([]);
      expect(most).toBe(1);
      expect(getEventListeners(controller.signal, "abort")).toHaveLength(0);
    } finally {
      process.off("warning", onWarning);
    }
  });
});

/** Resolves once `condition()` holds, checked each turn of the event loop (bounded by the test's timeout). */
async function waitUntil(condition: () => boolean): Promise<void> {
  while (!condition()) await new Promise((resolve) => setImmediate(resolve));
}
