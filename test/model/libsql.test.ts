/**
 * The model-based tests of LibsqlStore on database files, in a child process: a native driver
 * can abort the process on some inputs, and such a crash must fail the test with its seed and
 * steps rather than take the test runner down.
 */
import { runStoreModel } from "./harness.ts";

runStoreModel(
  "LibsqlStore",
  { module: "test/model/stores.ts", factory: "libsqlStore" },
  "test/model/libsql.test.ts",
  {},
  { ownClock: true, keepsNewestRow: true },
);
