// The shipped scheduling configs (config/scheduling/*.yaml) against the filter: each file equals the
// built-in config of the same name (assembly/scheduling/builtin.ts, printed by the scheduler probe),
// names only catalogued plugin types and parameters, and a warm scheduling cycle of each allocates
// nothing (the probe rebuilt with AssemblyScript's allocation tracing).
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { execFileSync } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parse } from "yaml";
import { CATALOGUE } from "../../sidecar/scheduling-config/catalogue.ts";
import type { ParamSpec } from "../../sidecar/scheduling-config/catalogue-types.ts";
import { ensureProbeBuilt } from "../support/probe-build.ts";

const repoRoot = new URL("../..", import.meta.url).pathname;
const NAMES = ["default", "gie-default", "legacy"] as const;
const SOURCES = ["assembly/scheduling", "assembly/prefix", "assembly/testing", "assembly/snapshot"];

interface ConfigFile {
  plugins: { type: string; name?: string; parameters?: Record<string, unknown> }[];
  schedulingProfiles: { name: string; plugins: { pluginRef: string; weight?: number }[] }[];
  saturationDetector?: { pluginRef: string };
}

function readConfig(name: string): ConfigFile {
  return parse(readFileSync(join(repoRoot, `config/scheduling/${name}.yaml`), "utf8")) as ConfigFile;
}

/** "200ms" / "1.5s" → milliseconds, as the sidecar sends durations. */
function durationMs(v: unknown): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s)$/.exec(String(v));
  assert.ok(m, `duration ${String(v)}`);
  return Number(m[1]) * (m[2] === "s" ? 1000 : 1);
}

/** The canonical form the probe prints (assembly/scheduling/describe.ts), from a config file. */
function canonical(cfg: ConfigFile): string {
  const names = cfg.plugins.map((p) => p.name ?? p.type);
  const index = (ref: string): number => names.indexOf(ref);
  const plugins = cfg.plugins.map((p) => {
    const spec = CATALOGUE.find((c) => c.type === p.type);
    const params: Record<string, unknown> = {};
    for (const key of Object.keys(p.parameters ?? {}).sort()) {
      const v = p.parameters![key];
      params[key] = spec?.params[key]?.type.kind === "duration" ? durationMs(v) : v;
    }
    return { type: p.type, name: p.name ?? p.type, params };
  });
  const profiles = cfg.schedulingProfiles.map((pr) => ({
    name: pr.name,
    plugins: pr.plugins.map((e) => ({ plugin: index(e.pluginRef), weight: e.weight ?? 1 })),
  }));
  const handler = cfg.plugins.findIndex(
    (p) => CATALOGUE.find((c) => c.type === p.type)?.kind === "profile-handler",
  );
  const saturation = cfg.saturationDetector ? index(cfg.saturationDetector.pluginRef) : -1;
  return JSON.stringify({ plugins, profiles, handler, saturation });
}

interface ProbeExports {
  memory: WebAssembly.Memory;
  inputBuffer(len: number): number;
  outputBuffer(): number;
  describeBuiltin(profile: number): number;
  registryTypes(): number;
  setup(n: number, profile: number, seed: bigint): number;
  decide(promptLen: number, priority: number): number;
  /** Only in the stub-runtime build: the bump allocator's next block. */
  __new(size: number, id: number): number;
}

function instantiate(path: string): ProbeExports {
  const module = new WebAssembly.Module(readFileSync(path));
  const instance = new WebAssembly.Instance(module, {
    env: {
      abort(_m: number, _f: number, line: number, col: number): never {
        throw new Error(`scheduler-probe aborted at ${line}:${col}`);
      },
    },
  });
  return instance.exports as unknown as ProbeExports;
}

test("each shipped config equals the built-in config of the same name", () => {
  const x = instantiate(ensureProbeBuilt("scheduler-probe", SOURCES));
  NAMES.forEach((name, i) => {
    const len = x.describeBuiltin(i);
    const builtin = new TextDecoder().decode(new Uint8Array(x.memory.buffer, x.outputBuffer(), len));
    assert.equal(canonical(readConfig(name)), builtin, `config/scheduling/${name}.yaml`);
  });
});

test("the catalogue lists exactly the plugin types the filter's registry builds", () => {
  const x = instantiate(ensureProbeBuilt("scheduler-probe", SOURCES));
  const len = x.registryTypes();
  const types = new TextDecoder().decode(new Uint8Array(x.memory.buffer, x.outputBuffer(), len)).split(",");
  assert.deepEqual([...types].sort(), CATALOGUE.map((c) => c.type).sort());
});

test("shipped configs name catalogued plugin types and parameters, with the catalogue's defaults", () => {
  for (const name of NAMES) {
    for (const p of readConfig(name).plugins) {
      const spec = CATALOGUE.find((c) => c.type === p.type);
      assert.ok(spec, `${name}: ${p.type} is in the catalogue`);
      for (const [key, v] of Object.entries(p.parameters ?? {})) {
        const param: ParamSpec | undefined = spec.params[key];
        assert.ok(param, `${name}: ${p.type}.${key} is catalogued`);
        // The shipped files write out today's defaults, so they double as the defaults' reference.
        assert.deepEqual(v, param.default, `${name}: ${p.type}.${key} is the default`);
      }
    }
  }
});

test("a warm scheduling cycle allocates nothing (default, gie-default, legacy)", () => {
  // The probe with AssemblyScript's stub runtime: a bump allocator that never frees, so the distance
  // between two blocks taken from it before and after a run is exactly what the run allocated.
  const wasm = join(mkdtempSync(join(tmpdir(), "sched-alloc-")), "probe.wasm");
  const asc = join(repoRoot, "node_modules/assemblyscript/bin/asc.js");
  const args = [
    "assembly/testing/scheduler-probe.ts",
    "--config",
    "assembly/testing/asconfig.scheduler-probe.json",
  ];
  const flags = ["--target", "release", "--runtime", "stub", "--exportRuntime", "--outFile", wasm];
  execFileSync(process.execPath, [asc, ...args, ...flags], { cwd: repoRoot });
  const enc = new TextEncoder();
  // Eight prompt groups of ~3 KB (past the rendezvous minimum): once each has been routed a few times the
  // prefix index, the scratch arrays and the pickers' buffers have their final size.
  const prompts = Array.from({ length: 8 }, (_, g) =>
    enc.encode(`group ${g} system prompt `.padEnd(3000, `rule ${g} `)),
  );
  NAMES.forEach((name, profile) => {
    const x = instantiate(wasm);
    x.setup(100, profile, 1n);
    const run = (): void => {
      for (let r = 0; r < 400; r++) {
        const p = prompts[r % prompts.length];
        new Uint8Array(x.memory.buffer, x.inputBuffer(p.length), p.length).set(p);
        x.decide(p.length, r % 3 === 0 ? -1 : 0); // every third request sheddable: admission runs too
      }
    };
    run();
    const a = x.__new(0, 1);
    const b = x.__new(0, 1);
    run();
    const c = x.__new(0, 1);
    assert.equal(c - b, b - a, `${name}: bytes allocated by 400 warm decisions beyond one empty block`);
  });
});
