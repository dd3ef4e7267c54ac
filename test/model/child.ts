/**
 * Runs model variants of one store in this process, one after another, so that a native
 * crash of the store's driver (an abort nothing can catch) fails the variant it hit with its
 * seed and last steps instead of taking the test runner down. Usage:
 *   node --import tsx test/model/child.ts <factory module> <export>  < variants.json
 * where stdin holds `[{ name, variant, bounds, capabilities }]`. Progress goes to stderr, one line per step
 * (prefixed `STEP `), written synchronously so that a crash cannot lose it; stdout gets
 * `MODEL_VARIANT <name>` before each variant and `MODEL_OUTCOME {name, outcome}` after it.
 */
import { readFileSync, writeSync } from "node:fs";
import { pathToFileURL } from "node:url";
import { runModel, type Variant } from "./property.ts";
import type { Bounds } from "./settings.ts";
import { type ModelStoreFactory, type StoreCapabilities, withCapabilities } from "./store-run.ts";

const [modulePath, exportName] = process.argv.slice(2);
if (modulePath === undefined || exportName === undefined) {
  throw new Error("usage: child.ts <factory module> <export> < variants.json");
}
const module = (await import(pathToFileURL(modulePath).href)) as Record<string, unknown>;
const factory = module[exportName] as ModelStoreFactory;
if (typeof factory !== "function") throw new Error(`${modulePath} has no factory ${exportName}`);

const log = (line: string) => {
  writeSync(2, `STEP ${line.length > 2000 ? `${line.slice(0, 2000)}…` : line}\n`);
};
const jobs = JSON.parse(readFileSync(0, "utf8")) as {
  name: string;
  variant: Variant;
  bounds: Bounds;
  capabilities: StoreCapabilities;
}[];
for (const job of jobs) {
  writeSync(1, `MODEL_VARIANT ${JSON.stringify(job.name)}\n`);
  const outcome = await runModel(job.variant, withCapabilities(factory, job.capabilities), {
    ...job.bounds,
    log,
  });
  writeSync(1, `MODEL_OUTCOME ${JSON.stringify({ name: job.name, outcome })}\n`);
}
