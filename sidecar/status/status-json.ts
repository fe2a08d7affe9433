// The data behind the status page: per pool, the endpoints of the latest snapshot and the push state of
// every Envoy target, plus the bounded history the charts draw. Served as /status.json; fields are only ever
// added, so older readers keep working.
import type { SidecarState } from "../state.ts";
import type { ConfigStatus } from "../scheduling-config/registry.ts";
import type { HistoryView } from "./history.ts";
import type { BandReading, EnvoyReading } from "./envoy-stats.ts";
import type { Snapshot } from "../snapshot/types.ts";

/** Why the page may show load per pod and not per-request routing: the sidecar never sees a request. */
export const NO_REQUEST_DATA =
  "The sidecar cannot see what the picker decided: the filter decides inside Envoy and its decision " +
  "counters stay in Envoy's stats, and no Envoy admin address is configured (--envoy-admin URL, or " +
  "--envoy-admin-port with --envoy-selector). Shown here instead: each pod's load over time, which follows " +
  "where requests were sent.";
/** When every configured Envoy admin fails to answer. */
export const NO_ENVOY_ANSWERS =
  "The sidecar cannot see what the picker decided: no Envoy admin it reads answered (see the errors below).";

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
    /** Each model's configured traffic split (InferenceModel targets, or rewrites naming it). */
    splits: Array<{ model: string; targets: Array<{ name: string; weight: number }> }>;
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
  /**
   * Whether the filter's decisions (requests by outcome, picks per endpoint) are visible: some Envoy admin
   * answered. `envoys`: each admin read, with its last error.
   */
  requests: { visible: boolean; note: string; envoys: EnvoyReading[]; flowControl: BandReading[] };
}

export function statusView(
  state: SidecarState,
  now = Date.now(),
  history?: { view(sinceMs?: number): HistoryView },
  historySinceMs?: number,
  envoys: EnvoyReading[] = [],
  flowControl: BandReading[] = [],
): StatusView {
  const visible = envoys.some((e) => e.ok);
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
        splits: splitsOf(snapshot),
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
    requests: {
      visible,
      note: visible ? "" : envoys.length === 0 ? NO_REQUEST_DATA : NO_ENVOY_ANSWERS,
      envoys,
      flowControl,
    },
    ...(history === undefined ? {} : { history: history.view(historySinceMs) }),
  };
}

/**
 * Configured splits by the model name a request carries: an InferenceModel's targets, and each rewrite's
 * targets under every model it matches (a rewrite matching every model is listed under "*").
 */
export function splitsOf(s: Snapshot): StatusView["pools"][number]["splits"] {
  const out: StatusView["pools"][number]["splits"] = [];
  for (const m of s.models)
    if (m.targets.length > 0)
      out.push({ model: m.name, targets: m.targets.map((t) => ({ name: t.name, weight: t.weight })) });
  for (const r of s.rewrites) {
    const targets = r.targets.map((t) => ({ name: t.model, weight: t.weight }));
    for (const model of r.matches.length > 0 ? r.matches : ["*"]) out.push({ model, targets });
  }
  return out;
}
