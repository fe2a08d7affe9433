// Custom metrics as Envoy 1.35 keeps them (envoy source/extensions/common/wasm/context.cc
// Context::defineMetric / incrementMetric / recordMetric / getMetric; ids from proxy-wasm-cpp-host
// include/proxy-wasm/wasm.h nextCounterMetricId & co.):
// - ids are per VM: type + 4k, k counting from 1 per type; the low two bits say the type;
// - every define returns a new id, even for a name already defined: ids of one name share one stat;
// - stats are process-wide, named `wasmcustom.<name>` (the namespace Envoy registers for Wasm stats), one
//   per (type, name): counters, gauges and histograms live in separate maps of the stats scope;
// - counters and gauges are uint64 (gauges wrap below zero like Envoy's in a release build).
import { WasmResult } from "./types.ts";

export const MetricType = { Counter: 0, Gauge: 1, Histogram: 2 } as const;

/** The namespace Envoy puts Wasm-defined stats in (source/extensions/common/wasm/stats_handler.h). */
export const CUSTOM_STAT_NAMESPACE = "wasmcustom";

export interface Stat {
  type: number;
  /** Full name, `wasmcustom.<name>`. */
  name: string;
  /** Counters and gauges. */
  value: bigint;
  /** Histograms: how often each recorded value was seen, the sample count and their sum. */
  counts: Map<number, number>;
  count: number;
  sum: number;
}

const u64 = (v: bigint): bigint => BigInt.asUintN(64, v);

export class MetricStore {
  /** Keyed by `<type>:<full name>`. */
  readonly stats = new Map<string, Stat>();

  stat(type: number, name: string): Stat {
    const full = `${CUSTOM_STAT_NAMESPACE}.${name}`;
    const key = `${type}:${full}`;
    let s = this.stats.get(key);
    if (!s) this.stats.set(key, (s = { type, name: full, value: 0n, counts: new Map(), count: 0, sum: 0 }));
    return s;
  }

  /** A counter's (else a gauge's) value by full or short name. */
  value(name: string): bigint | undefined {
    const full = name.startsWith(`${CUSTOM_STAT_NAMESPACE}.`) ? name : `${CUSTOM_STAT_NAMESPACE}.${name}`;
    return (this.stats.get(`${MetricType.Counter}:${full}`) ?? this.stats.get(`${MetricType.Gauge}:${full}`))
      ?.value;
  }

  /** A histogram by full or short name. */
  histogram(name: string): Stat | undefined {
    const full = name.startsWith(`${CUSTOM_STAT_NAMESPACE}.`) ? name : `${CUSTOM_STAT_NAMESPACE}.${name}`;
    return this.stats.get(`${MetricType.Histogram}:${full}`);
  }
}

/** The per-VM id table. */
export class VmMetrics {
  private readonly byId = new Map<number, Stat>();
  /** cpp-host starts each type's counter at the type and adds 4 per define. */
  private readonly next = [0, 1, 2];

  constructor(private readonly store: MetricStore) {}

  define(type: number, name: string): { result: number; id?: number } {
    if (type > MetricType.Histogram) return { result: WasmResult.BadArgument };
    const id = (this.next[type]! += 4);
    this.byId.set(id, this.store.stat(type, name));
    return { result: WasmResult.Ok, id };
  }

  /** Counters take delta > 0 only; gauges add or subtract; anything else is BadArgument. */
  increment(id: number, delta: bigint): number {
    const type = id & 3;
    if (type !== MetricType.Counter && type !== MetricType.Gauge) return WasmResult.BadArgument;
    const s = this.byId.get(id);
    if (!s) return WasmResult.NotFound;
    if (type === MetricType.Counter && delta <= 0n) return WasmResult.BadArgument;
    s.value = u64(s.value + delta);
    return WasmResult.Ok;
  }

  /** Adds to a counter, sets a gauge, records a histogram sample (the value is unsigned); else NotFound. */
  record(id: number, value: bigint): number {
    const s = this.byId.get(id);
    if (!s || s.type !== (id & 3)) return WasmResult.NotFound;
    const v = u64(value);
    if (s.type === MetricType.Counter) s.value = u64(s.value + v);
    else if (s.type === MetricType.Gauge) s.value = v;
    else {
      const n = Number(v);
      s.counts.set(n, (s.counts.get(n) ?? 0) + 1);
      s.count++;
      s.sum += n;
    }
    return WasmResult.Ok;
  }

  /** Counters and gauges only: a histogram id (or type bits 3) is BadArgument, an unknown one NotFound. */
  get(id: number): { result: number; value?: bigint } {
    const type = id & 3;
    if (type !== MetricType.Counter && type !== MetricType.Gauge) return { result: WasmResult.BadArgument };
    const s = this.byId.get(id);
    if (!s) return { result: WasmResult.NotFound };
    return { result: WasmResult.Ok, value: s.value };
  }
}
