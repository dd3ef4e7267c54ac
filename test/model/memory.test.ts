/** The model-based tests of MemoryStore (in process: nothing native can crash). */
import { runStoreModel } from "./harness.ts";
import { memoryStore } from "./stores.ts";

runStoreModel("MemoryStore", memoryStore, "test/model/memory.test.ts", {
  // Known faults of main (issue 11), fixed on branch core: unskip once it is merged.
  "store contract, callers write into buffers they passed or got": {
    fault: "aliasing (#11.6): a Buffer value stays a view of the caller's buffer (Buffer#slice)",
    mode: "skip",
  },
  "relay end to end, caller and sender write into the buffers they passed or got": {
    fault: "aliasing (#11.6): a Buffer value stays a view of the caller's buffer (Buffer#slice)",
    mode: "skip",
  },
  "relay end to end, onError that throws": {
    fault: "callbacks (#11.3): a throwing onError rejects tick() and drops the batch's outcome",
    mode: "skip",
  },
  "relay end to end, ticks aborted between claim and send": {
    fault: "never-happened attempts (#11.4): an abort after the claim spends an attempt",
    mode: "skip",
  },
});
