// The data behind the status page: per pool, the endpoints of the latest snapshot and the push state of
// every Envoy target. Served as /status.json.
import type { SidecarState } from "../state.ts";
import type { ConfigStatus } from "../scheduling-config/registry.ts";

export interface StatusView {
  generatedAtMs: number;
  ready: boolean;
  reasons: string[];
  /** Scheduling configs in force and refused. */
  config: ConfigStatus[];
  pools: Array<{
    pool: string;
    generation: string;
    snapshotAgeMs: number;
    bytes: number;
    profile: string;
    endpoints: Array<{
      pod: string;
      endpoint: string;
      ready: boolean;
      stale: boolean;
      waiting: number;
      running: number;
      kvUsage: number;
      runningAdapters: string[];
      waitingAdapters: string[];
      metricsAgeMs: number | null;
    }>;
    pushes: Array<{
      target: string;
      outcome: string;
      status: number | null;
      lastSuccessAgoMs: number | null;
      ackedGeneration: string | null;
      consecutiveFailures: number;
      error: string | null;
    }>;
  }>;
}

export function statusView(state: SidecarState, now = Date.now()): StatusView {
  const r = state.readiness();
  const pushes = state.pushStatus();
  return {
    generatedAtMs: now,
    ready: r.ready,
    reasons: r.reasons,
    config: state.configStatus(),
    pools: state.poolKeys().map((key) => {
      const { snapshot, bytes } = state.latest(key)!;
      return {
        pool: key,
        generation: snapshot.generation.toString(),
        snapshotAgeMs: now - snapshot.createdAtMs,
        bytes: bytes.length,
        profile: snapshot.scheduler.profile,
        endpoints: snapshot.endpoints.map((e) => ({
          pod: e.podName,
          endpoint: e.address.includes(":") ? `[${e.address}]:${e.port}` : `${e.address}:${e.port}`,
          ready: e.ready,
          stale: e.stale,
          waiting: e.waiting,
          running: e.running,
          kvUsage: e.kvUsage,
          runningAdapters: e.runningAdapters,
          waitingAdapters: e.waitingAdapters,
          metricsAgeMs: e.metricsAgeMs,
        })),
        pushes: pushes
          .filter((p) => p.pool === key)
          .map((p) => ({
            target: p.url,
            outcome: p.lastOutcome ?? "pending",
            status: p.lastStatus ?? null,
            lastSuccessAgoMs: p.lastSuccessAt === undefined ? null : now - p.lastSuccessAt,
            ackedGeneration: p.ackedGeneration ?? null,
            consecutiveFailures: p.consecutiveFailures,
            error: p.lastError ?? null,
          })),
      };
    }),
  };
}
