// Loads build/scheduler-probe.wasm (the pure scheduler compiled with plain asc) for tests and
// `npm run bench:scheduler`. Rebuilds it first when missing or older than its sources, into a private
// file renamed into place, so concurrent test files never read a half-written module.
import { readFileSync } from "node:fs";
import { ensureProbeBuilt } from "../support/probe-build.ts";

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
  const wasmPath = ensureProbeBuilt("scheduler-probe", [
    "assembly/scheduling",
    "assembly/prefix",
    "assembly/testing",
  ]);
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
