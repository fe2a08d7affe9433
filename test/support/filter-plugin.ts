// The real build/filter.wasm loaded as one plugin in the host, on a virtual clock at the fixtures' CREATED_MS:
// what the filter-in-host tests start from. Each test passes the plugin configuration it is about.
import { readFileSync } from "node:fs";
import { EnvoyProcess, VirtualClock } from "../../host/index.ts";
import type { WasmPlugin } from "../../host/index.ts";
import { CREATED_MS } from "./snapshot-fixture.ts";

let wasm: Buffer | undefined;

/** Loads the filter for pool default/pool-a with `config` over that pool; one worker VM unless told otherwise. */
export async function loadFilterPlugin(
  config: Record<string, unknown>,
  workers = 1,
): Promise<{ plugin: WasmPlugin; clock: VirtualClock; proc: EnvoyProcess }> {
  // EPP_TEST_FILTER_WASM runs the same tests against another build (e.g. the commit before a change).
  wasm ??= readFileSync(
    process.env.EPP_TEST_FILTER_WASM ?? new URL("../../build/filter.wasm", import.meta.url),
  );
  const clock = new VirtualClock(BigInt(CREATED_MS) * 1_000_000n);
  const proc = new EnvoyProcess({ clock });
  const plugin = await proc.loadPlugin(wasm, {
    vmId: "epp",
    workers,
    allowOnHeadersStopIteration: true,
    configuration: JSON.stringify({ pool: { namespace: "default", name: "pool-a" }, ...config }),
  });
  return { plugin, clock, proc };
}
