// The data behind the status page: per pool, the endpoints of the latest snapshot and the push state of
// every Envoy target, plus the bounded history the charts draw. Served as /status.json; fields are only ever
// added, so older readers keep working.
import type { SidecarState } from "../state.ts";
import type { ConfigStatus } from "../scheduling-config/registry.ts";
import type { HistoryView } from "./history.ts";

/** Why the page shows load per pod and not per-request routing: the sidecar never sees a request. */
export const NO_REQUEST_DATA =
  "The sidecar sees no requests: the filter decides inside Envoy and its decision counters stay in Envoy's " +
  "stats (/stats/prometheus on the Envoy admin port). Shown here instead: each pod's load over time, " +
  "which follows where requests were sent.";

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
      /** The target's id (the label of epp_sidecar_push_total and the key of history.pushes). */
      id: string;
      outcome: string;
      status: number | null;
      lastSuccessAgoMs: number | null;
      ackedGeneration: string | null;
      consecutiveFailures: number;
      error: string | null;
    }>;
  }>;
  /** Per-pod, per-pool and per-target history (absent when the server keeps none). */
  history?: HistoryView;
  /** Whether per-request routing data (requests per pod, 429/503) is visible to the sidecar. */
  requests: { visible: boolean; note: string };
}

export function statusView(
  state: SidecarState,
  now = Date.now(),
  history?: { view(sinceMs?: number): HistoryView },
  historySinceMs?: number,
): StatusView {
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
            id: p.target,
            outcome: p.lastOutcome ?? "pending",
            status: p.lastStatus ?? null,
            lastSuccessAgoMs: p.lastSuccessAt === undefined ? null : now - p.lastSuccessAt,
            ackedGeneration: p.ackedGeneration ?? null,
            consecutiveFailures: p.consecutiveFailures,
            error: p.lastError ?? null,
          })),
      };
    }),
    requests: { visible: false, note: NO_REQUEST_DATA },
    ...(history === undefined ? {} : { history: history.view(historySinceMs) }),
  };
}
