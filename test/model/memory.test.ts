/** The model-based tests of MemoryStore (in process: nothing native can crash). */
import { runStoreModel } from "./harness.ts";
import { memoryStore } from "./stores.ts";

runStoreModel("MemoryStore", memoryStore, "test/model/memory.test.ts");
