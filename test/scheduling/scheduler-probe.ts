// Loads build/scheduler-probe.wasm (the pure scheduler compiled with plain asc) for tests and
// `npm run bench:scheduler`. Rebuilds it first when missing or older than its sources, into a private
// file renamed into place, so concurrent test files never read a half-written module.
import { mkdirSync, readFileSync, readdirSync, renameSync, statSync } from "node:fs";
import { join } from "node:path";
import { execFileSync } from "node:child_process";

const root = new URL("../..", import.meta.url).pathname;
const wasmPath = join(root, "build/scheduler-probe.wasm");
const sourceDirs = ["assembly/scheduling", "assembly/prefix", "assembly/testing"];

export const PROFILE = { default: 0, gieDefault: 1, legacy: 2 } as const;
export const FIELD = { waiting: 0, running: 1, kvPermyriad: 2, ready: 3, stale: 4 } as const;

interface Exports {
  memory: WebAssembly.Memory;
  inputBuffer(len: number): number;
  setup(n: number, profile: number, seed: bigint): number;
  setEndpoint(i: number, field: number, value: number): void;
  configure(len: number): void;
  setRequestsPerSnapshot(n: number): void;
  beginSnapshot(): void;
  loadPrompt(promptLen: number, priority: number): number;
  scheduleLoaded(): number;
  decide(promptLen: number, priority: number): number;
  resultCount(): number;
}

function newestSource(dir: string): number {
  let newest = 0;
  for (const name of readdirSync(dir)) {
    const full = join(dir, name);
    const st = statSync(full);
    newest = Math.max(newest, st.isDirectory() ? newestSource(full) : st.mtimeMs);
  }
  return newest;
}

function ensureBuilt(): void {
  let built = 0;
  try {
    built = statSync(wasmPath).mtimeMs;
  } catch {
    built = 0;
  }
  const newest = Math.max(...sourceDirs.map((d) => newestSource(join(root, d))));
  if (built >= newest) return;
  mkdirSync(join(root, "build"), { recursive: true });
  const tmp = `${wasmPath}.${process.pid}.tmp`;
  const asc = join(root, "node_modules/assemblyscript/bin/asc.js");
  const args = [
    "assembly/testing/scheduler-probe.ts",
    "--config",
    "assembly/testing/asconfig.scheduler-probe.json",
  ];
  execFileSync(process.execPath, [asc, ...args, "--target", "release", "--outFile", tmp], {
    cwd: root,
    stdio: "inherit",
  });
  renameSync(tmp, wasmPath);
}

export class SchedulerProbe {
  constructor(readonly x: Exports) {}

  setup(endpoints: number, profile: number, seed = 1): void {
    this.x.setup(endpoints, profile, BigInt(seed));
  }

  /** Scheduler params, e.g. { queueWeight: 0 } (applied to the profile chosen by setup). */
  configure(params: Record<string, number>): void {
    const text = Object.entries(params)
      .map(([k, v]) => `${k}=${v}`)
      .join(",");
    this.x.configure(this.loadPrompt(new TextEncoder().encode(text)));
  }

  /** Copies prompt bytes into wasm memory; returns their length. */
  loadPrompt(prompt: Uint8Array): number {
    const ptr = this.x.inputBuffer(prompt.length);
    new Uint8Array(this.x.memory.buffer, ptr, prompt.length).set(prompt);
    return prompt.length;
  }

  /** Whole decision for a prompt: the picked endpoint slot, or −status (429 / 503). */
  decide(prompt: Uint8Array, priority = 0): number {
    return this.x.decide(this.loadPrompt(prompt), priority);
  }
}

export function loadSchedulerProbe(): SchedulerProbe {
  ensureBuilt();
  const module = new WebAssembly.Module(readFileSync(wasmPath));
  const instance = new WebAssembly.Instance(module, {
    env: {
      abort(_msg: number, _file: number, line: number, col: number): never {
        throw new Error(`scheduler-probe aborted at ${line}:${col}`);
      },
    },
  });
  return new SchedulerProbe(instance.exports as unknown as Exports);
}
