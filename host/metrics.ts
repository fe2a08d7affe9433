// Custom metrics (envoy-proxy-wasm.md §2 "Metric types"): ids are type + 4k per VM, stats are
// process-wide by name `wasmcustom.<name>`, so every worker VM updates the same stat.
import { WasmResult } from "./types.ts";

export const MetricType = { Counter: 0, Gauge: 1, Histogram: 2 } as const;

export interface Stat {
  type: number;
  value: bigint;
  /** Histogram samples (bounded: last 1024). */
  samples: bigint[];
}

export class MetricStore {
  readonly stats = new Map<string, Stat>();

  stat(type: number, name: string): Stat {
    const full = "wasmcustom." + name;
    let s = this.stats.get(full);
    if (!s) this.stats.set(full, (s = { type, value: 0n, samples: [] }));
    return s;
  }

  /** Value by full or short name (counters and gauges). */
  value(name: string): bigint | undefined {
    return (this.stats.get(name) ?? this.stats.get("wasmcustom." + name))?.value;
  }
}

/** The per-VM id table. */
export class VmMetrics {
  private readonly byId = new Map<number, Stat>();
  private readonly next = [1, 1, 1];

  constructor(private readonly store: MetricStore) {}

  define(type: number, name: string): { result: number; id?: number } {
    if (type < 0 || type > 2) return { result: WasmResult.BadArgument };
    const id = type + 4 * this.next[type]!++;
    this.byId.set(id, this.store.stat(type, name));
    return { result: WasmResult.Ok, id };
  }

  increment(id: number, delta: bigint): number {
    const s = this.byId.get(id);
    if (!s) return WasmResult.NotFound;
    if (s.type === MetricType.Counter) {
      if (delta <= 0n) return WasmResult.BadArgument;
      s.value += delta;
    } else if (s.type === MetricType.Gauge) {
      s.value += delta;
    } else return WasmResult.BadArgument;
    return WasmResult.Ok;
  }

  record(id: number, value: bigint): number {
    const s = this.byId.get(id);
    if (!s) return WasmResult.NotFound;
    if (s.type === MetricType.Counter) s.value += value;
    else if (s.type === MetricType.Gauge) s.value = value;
    else {
      s.samples.push(value);
      if (s.samples.length > 1024) s.samples.shift();
    }
    return WasmResult.Ok;
  }

  get(id: number): { result: number; value?: bigint } {
    const s = this.byId.get(id);
    if (!s) return { result: WasmResult.NotFound };
    if (s.type === MetricType.Histogram) return { result: WasmResult.BadArgument };
    return { result: WasmResult.Ok, value: s.value };
  }
}
