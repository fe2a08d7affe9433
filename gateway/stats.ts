// The gateway's counters, in memory. Names without a prefix are Envoy's cluster stats (`cluster.<name>.<stat>`,
// envoy/upstream/upstream.h ALL_CLUSTER_TRAFFIC_STATS); `override_host_*` are ours (Envoy only trace-logs those
// decisions). `epp-gateway --admin-port P` serves them, with each worker VM's Wasm memory, on GET /stats.

export type StatName =
  // Envoy cluster traffic stats.
  | "upstream_rq_total"
  | "upstream_rq_completed"
  | "upstream_rq_retry"
  | "upstream_rq_retry_success"
  | "upstream_rq_retry_limit_exceeded"
  | "upstream_rq_retry_backoff_exponential"
  | "upstream_rq_timeout"
  | "upstream_rq_rx_reset"
  | "upstream_cx_connect_fail"
  | "upstream_cx_connect_timeout"
  | "upstream_cx_none_healthy"
  | "original_dst_host_invalid"
  | "retry_or_shadow_abandoned"
  // Ours: how the override_host policy resolved each attempt.
  | "override_host_selected"
  | "override_host_skipped"
  | "override_host_fallback"
  // Envoy listener and connection-manager stats (listener.<addr>.*, http.<prefix>.*): connection limit, overload
  // rejects, stream idle timeouts, requests shed by the overload manager.
  | "downstream_cx_overflow"
  | "downstream_cx_overload_reject"
  | "downstream_rq_idle_timeout"
  | "downstream_rq_overload_close"
  // Ours: ORIGINAL_DST without the header went to `defaultUpstreams` (a local stand-in, not an Envoy path).
  | "default_upstream_selected";

export class GatewayStats {
  private readonly counters = new Map<StatName, number>();

  inc(name: StatName, by = 1): void {
    this.counters.set(name, (this.counters.get(name) ?? 0) + by);
  }

  get(name: StatName): number {
    return this.counters.get(name) ?? 0;
  }

  /** Every counter that has been charged, sorted by name. */
  snapshot(): Record<string, number> {
    return Object.fromEntries([...this.counters].sort(([a], [b]) => a.localeCompare(b)));
  }
}

/**
 * One worker VM's Wasm linear memory. Envoy reports it as the `vm_memory_size` gauge of the plugin's Wasm stats
 * (source/extensions/common/wasm/stats_handler.h WASM_STATS, set from StatsHandler::onMemorySizeChanged).
 */
export interface WasmVmMemory {
  vmId: string;
  worker: number;
  bytes: number;
}

/** The memory of each live VM; a VM shared by several plugins is listed once. */
export function wasmVmMemory(
  vms: Iterable<{ vmId: string; workerIndex: number; discarded: boolean; memory: { byteLength: number } }>,
): WasmVmMemory[] {
  const out: WasmVmMemory[] = [];
  for (const vm of new Set(vms)) {
    if (!vm.discarded) out.push({ vmId: vm.vmId, worker: vm.workerIndex, bytes: vm.memory.byteLength });
  }
  return out.sort((a, b) => a.worker - b.worker);
}
