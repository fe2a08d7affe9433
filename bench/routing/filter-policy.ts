// Filter policies: every request runs through the real build/filter.wasm in the Envoy-faithful
// host, on the benchmark's virtual clock. Snapshots follow the real control path: the sidecar's
// collector parses each pod's /metrics text, the sidecar's encoder builds the snapshot, and it is
// POSTed to /epp/v1/snapshot after a delay. `oracle` instead pushes a snapshot built from the
// engines' live state right before every request: fresh metrics that include every request of every
// worker and replica (the engines hold them all). It is the default profile with perfect load
// information, not an optimal scheduler: its prefix index is still the filter's own approximation.
import { readFileSync } from "node:fs";
import { basename, extname } from "node:path";
import {
  EnvoyProcess,
  type Clock as HostClock,
  type HeaderList,
  type LocalReply,
  type WasmPlugin,
} from "../../host/index.ts";
import type { Engine, VirtualClock } from "../../sim/index.ts";
import { ENGINE_MAPPINGS, extractMetrics, type EndpointMetrics } from "../../sidecar/collector/engines.ts";
import { encodeSnapshot } from "../../sidecar/snapshot/encoder.ts";
import {
  DEFAULT_SCHEDULER,
  type FlowControlSection,
  type SchedulingSection,
  type Snapshot,
  type SnapshotEndpoint,
} from "../../sidecar/snapshot/types.ts";
import { loadConfig, type Thresholds } from "../../sidecar/scheduling-config/load.ts";
import { shippedConfigPath } from "../../sidecar/scheduling-config/shipped.ts";
import { parsePolicyName, type Policy, type RouteResult } from "./policies.ts";
import type { WorkItem } from "./workloads.ts";

export const FILTER_WASM_PATH = new URL("../../build/filter.wasm", import.meta.url);
const TOKEN = "bench-control-token";
const POOL = { namespace: "bench", name: "sim-pool" };
const DEST = "x-gateway-destination-endpoint";
const FAIRNESS_HEADER = "x-gateway-inference-fairness-id";
const PORT = 8000;

/** A policy named `config=FILE` runs the filter with that EndpointPickerConfig file. */
export const CONFIG_POLICY_PREFIX = "config=";
/** `default` with flow control: the shipped config/scheduling/flow-control.yaml, loaded as the sidecar does.
 *  `default+flow-control:ttlMs@-10=1000` changes one band's TTL (priority -10 here) for experiments. */
export const FLOW_CONTROL_POLICY = "default+flow-control";

export function isFlowControlPolicy(name: string): boolean {
  return name === FLOW_CONTROL_POLICY || name.startsWith(`${FLOW_CONTROL_POLICY}:`);
}

/** Applies `ttlMs@PRIORITY=MS` overrides to the loaded section; anything else is refused. */
function withBandOverrides(fc: FlowControlSection, name: string): FlowControlSection {
  const overrides = name.split(":").slice(1);
  if (overrides.length === 0) return fc;
  const bands = fc.bands.map((b) => ({ ...b }));
  for (const kv of overrides) {
    const m = /^ttlMs@(-?\d+)=(\d+)$/.exec(kv);
    const band = m ? bands.find((b) => b.priority === Number(m[1])) : undefined;
    if (!m || !band) throw new Error(`bad flow-control override "${kv}" in "${name}" (ttlMs@PRIORITY=MS)`);
    band.ttlMs = Number(m[2]);
  }
  return { ...fc, bands };
}

/** What a `config=FILE` policy sends: the file's PLUGINS section, name and detector limits, as the sidecar. */
function configPolicy(name: string): {
  profile: string;
  scheduling: SchedulingSection;
  thresholds: Thresholds;
  flowControl?: FlowControlSection;
} {
  const fcPolicy = isFlowControlPolicy(name);
  const path = fcPolicy ? shippedConfigPath("flow-control") : name.slice(CONFIG_POLICY_PREFIX.length);
  const c = loadConfig(readFileSync(path, "utf8"), {
    source: path,
    displayName: basename(path, extname(path)),
  });
  return {
    profile: c.displayName,
    scheduling: c.section,
    thresholds: c.thresholds,
    ...(c.flowControl === undefined
      ? {}
      : { flowControl: fcPolicy ? withBandOverrides(c.flowControl, name) : c.flowControl }),
  };
}

export interface FilterPolicyOptions {
  /** "legacy" | "gie-default" | "default" | "oracle" (oracle runs the default profile), optionally
   *  with scheduler params: "default:prefixWeight=8" (see parsePolicyName); or `config=FILE`, an
   *  EndpointPickerConfig loaded and validated as the sidecar does (its PLUGINS section is sent). */
  name: string;
  clock: VirtualClock;
  engines: readonly Engine[];
  seed: number;
  /** The workload's objectives, sent in every snapshot (their priorities: shedding or flow-control bands). */
  objectives?: readonly { name: string; priority: number }[];
  scrapeIntervalMs: number;
  pushDelayMs: number;
  /** Worker VMs (each with its own scheduler state; snapshots are shared). Default 1. */
  workers?: number;
  /** Envoy processes (each with its own shared data: no directory in common) behind an L4 balancer
   *  that hands them requests in turn; every snapshot goes to each. Default 1. */
  replicas?: number;
  wasm?: Uint8Array;
}

/** Runs host timers on the simulator's clock (which has no cancel, so timers carry a flag). */
export function hostClockOn(clock: VirtualClock): HostClock {
  return {
    nowNs: () => BigInt(Math.round(clock.epochSeconds(clock.now()) * 1e3)) * 1_000_000n,
    setTimer: (ms, fn) => {
      const h = { cancelled: false };
      clock.schedule(clock.now() + Math.max(0, ms), () => {
        if (!h.cancelled) fn();
      });
      return h;
    },
    clearTimer: (h) => {
      if (h && typeof h === "object") (h as { cancelled: boolean }).cancelled = true;
    },
  };
}

export function podAddress(i: number): string {
  return `10.0.${Math.floor(i / 250)}.${(i % 250) + 1}`;
}

function liveMetrics(e: Engine): EndpointMetrics {
  const l = e.loraSets();
  return {
    waiting: e.numWaiting,
    running: e.numRunning,
    kvUsage: e.kvUsage(),
    maxLoras: e.config.maxLoras,
    kvBlockSize: e.config.blockSize,
    kvBlockCount: e.config.numGpuBlocks,
    runningAdapters: l.running,
    waitingAdapters: l.waiting,
  };
}

function endpoint(i: number, m: EndpointMetrics | undefined, ageMs: number): SnapshotEndpoint {
  return {
    podName: `sim-${i}`,
    address: podAddress(i),
    port: PORT,
    ready: true,
    stale: false,
    hasMetrics: m !== undefined,
    engine: "vllm",
    metricsAgeMs: m ? ageMs : null,
    waiting: m?.waiting ?? 0,
    running: m?.running ?? 0,
    kvUsage: Math.min(1, m?.kvUsage ?? 0),
    maxLoras: m?.maxLoras ?? 0,
    kvBlockSize: m?.kvBlockSize ?? 0,
    kvBlockCount: m?.kvBlockCount ?? 0,
    runningAdapters: m ? [...m.runningAdapters] : [],
    waitingAdapters: m ? [...m.waitingAdapters] : [],
  };
}

function header(h: HeaderList | undefined, name: string): string | undefined {
  return h?.find(([k]) => k === name)?.[1];
}

export async function filterPolicy(o: FilterPolicyOptions): Promise<Policy> {
  const fromFile =
    o.name.startsWith(CONFIG_POLICY_PREFIX) || isFlowControlPolicy(o.name) ? configPolicy(o.name) : undefined;
  const { base, params } = fromFile === undefined ? parsePolicyName(o.name) : { base: o.name, params: {} };
  const oracle = base === "oracle";
  const profile = fromFile?.profile ?? (oracle ? "default" : base);
  const wasm = o.wasm ?? readFileSync(FILTER_WASM_PATH);
  const plugins: WasmPlugin[] = [];
  for (let r = 0; r < Math.max(1, o.replicas ?? 1); r++) {
    const envoy = new EnvoyProcess({ clock: hostClockOn(o.clock) });
    plugins.push(
      await envoy.loadPlugin(wasm, {
        vmId: "epp",
        workers: o.workers ?? 1,
        allowOnHeadersStopIteration: true,
        // Each replica its own tie-break stream, as separate Envoy processes would have.
        configuration: JSON.stringify({
          pool: POOL,
          controlToken: TOKEN,
          staleAfterMs: 0,
          randomSeed: o.seed + r,
        }),
      }),
    );
  }
  let nextReplica = 0;
  const byAddress = new Map<string, number>();
  o.engines.forEach((_, i) => byAddress.set(`${podAddress(i)}:${PORT}`, i));
  let generation = 0n;
  const enc = new TextEncoder();

  // The oracle's snapshot is dated 1 ms ahead (within the filter's maxClockSkewMs), so the filter counts
  // none of its earlier dispatches as in flight on top of the live state that already holds them; dated
  // "now", a dispatch in the same millisecond was counted twice.
  const snapshot = (endpoints: SnapshotEndpoint[]): Uint8Array =>
    encodeSnapshot({
      generation: ++generation,
      createdAtMs: Math.round(o.clock.epochSeconds(o.clock.now()) * 1000) + (oracle ? 1 : 0),
      pool: { ...POOL, failureMode: "FailClose", strictModels: false, targetPorts: [PORT] },
      endpoints,
      models: [],
      objectives: (o.objectives ?? []).map(({ name, priority }) => ({ name, priority })),
      rewrites: [],
      // The sidecar reports how many Envoys it pushes to; a policy param may still override it.
      scheduler: {
        ...DEFAULT_SCHEDULER,
        ...fromFile?.thresholds,
        profile,
        params: { envoyReplicas: plugins.length, ...params },
      },
      ...(fromFile === undefined ? {} : { scheduling: fromFile.scheduling }),
      ...(fromFile?.flowControl === undefined ? {} : { flowControl: fromFile.flowControl }),
    } satisfies Snapshot);

  const pushTo = (plugin: WasmPlugin, bytes: Uint8Array): void => {
    let reply: LocalReply | undefined;
    const s = plugin.newHttpStream({
      forwardRequestHeaders: () => {},
      forwardRequestData: () => {},
      forwardResponseHeaders: () => {},
      forwardResponseData: () => {},
      localReply: (r) => (reply = r),
    });
    s.decodeHeaders(
      [
        [":method", "POST"],
        [":path", "/epp/v1/snapshot"],
        [":authority", "epp"],
        [":scheme", "http"],
        ["authorization", `Bearer ${TOKEN}`],
        ["content-type", "application/octet-stream"],
      ],
      false,
    );
    s.decodeData(bytes, true);
    s.destroy();
    if (!reply || reply.status >= 300)
      throw new Error(`snapshot push refused: ${reply?.status ?? "no reply"}`);
  };
  const push = (bytes: Uint8Array): void => {
    for (const plugin of plugins) pushTo(plugin, bytes);
  };

  // Scrape loop at virtual time (not for the oracle): parse text, encode, push after the delay.
  let stopped = false;
  const lastGood: (EndpointMetrics | undefined)[] = o.engines.map(() => undefined);
  const scrape = (): void => {
    if (stopped) return;
    const eps = o.engines.map((e, i) => {
      const r = extractMetrics(e.metricsText(), ENGINE_MAPPINGS.vllm);
      if (r.ok) lastGood[i] = r.metrics;
      return endpoint(i, lastGood[i], 0);
    });
    const bytes = snapshot(eps);
    o.clock.schedule(o.clock.now() + o.pushDelayMs, () => push(bytes));
    o.clock.schedule(o.clock.now() + o.scrapeIntervalMs, scrape);
  };
  if (oracle) push(snapshot(o.engines.map((e, i) => endpoint(i, liveMetrics(e), 0))));
  else scrape();

  // A request is decided in its decodeData call (routed or answered), or held by flow control: then the
  // root's tick (on the virtual clock, like every host timer) continues it or answers it later.
  const dispatch = (item: WorkItem, _inFlight: readonly number[], send: (r: RouteResult) => void): void => {
    const plugin = plugins[nextReplica++ % plugins.length]!;
    if (oracle) pushTo(plugin, snapshot(o.engines.map((e, i) => endpoint(i, liveMetrics(e), 0))));
    let forwarded: HeaderList | undefined;
    let reply: LocalReply | undefined;
    let held = false;
    // A held request is decided inside the filter's on_tick: hand it on from a clock event at the same
    // instant, so the stream is not ended (on_done, on_delete) while the VM is still in the tick.
    const later = (): void => {
      if (held) o.clock.schedule(o.clock.now(), decide);
    };
    const s = plugin.newHttpStream({
      forwardRequestHeaders: (h) => {
        forwarded = h;
        later();
      },
      forwardRequestData: () => {},
      forwardResponseHeaders: () => {},
      forwardResponseData: () => {},
      localReply: (r) => {
        reply = r;
        later();
      },
    });
    const body = enc.encode(
      JSON.stringify({
        model: item.model,
        messages: item.messages,
        max_tokens: item.maxTokens,
        stream: true,
      }),
    );
    const headers: HeaderList = [
      [":method", "POST"],
      [":path", "/v1/chat/completions"],
      [":authority", "gateway"],
      [":scheme", "http"],
      ["content-type", "application/json"],
    ];
    if (item.objective !== undefined) headers.push(["x-gateway-inference-objective", item.objective]);
    if (item.fairnessId !== undefined) headers.push([FAIRNESS_HEADER, item.fairnessId]);
    s.decodeHeaders(headers, false);
    if (!reply) s.decodeData(body, true);
    const done = (): void => {
      if (!reply) s.encodeHeaders([[":status", "200"]], true);
      s.destroy();
    };
    function decide(): void {
      if (reply) {
        done();
        return send({ status: reply.status });
      }
      // The header may list fallbacks after the primary ("a:p,b:p"); the gateway connects to the first.
      const dest = header(forwarded, DEST);
      const primary = dest?.split(",")[0]?.trim();
      const pod = primary === undefined ? undefined : byAddress.get(primary);
      if (pod === undefined) {
        done();
        throw new Error(`filter forwarded without a known destination (${dest ?? "none"})`);
      }
      send({ pod, done });
    }
    if (reply || forwarded) decide();
    else held = true;
  };

  return {
    name: o.name,
    dispatch,
    close: async () => {
      stopped = true;
      for (const plugin of plugins) await plugin.shutdown();
    },
  };
}
