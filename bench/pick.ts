// `npm run bench:pick`: the filter's per-request decision time inside the proxy-wasm host (V8), for pools
// of 10, 100 and 1000 endpoints. Each sample is one whole data-path stream — context creation, request
// headers (+ body when a prompt is sent), the pick, response headers, log/done/delete — so it is what
// Envoy would spend in the filter per request.
// With --chunk-bytes N the body arrives in N-byte pieces, as Envoy hands a body to filters as it reads it;
// "decision" is then the time until the filter let the headers go upstream with their destination, the
// rest is the pass-through of the remaining pieces.
// Usage: npm run bench:pick -- [--requests 20000] [--sizes 10,100,1000] [--prompt-bytes 4096]
//        [--chunk-bytes 0 (whole body at once)] [--profiles legacy,gie-default,default]  (default: "default")
//        [--workers 1 (worker VMs sharing one vm_id; requests go to them in turn)]
// A profile may carry scheduler params as bench:routing's policies do: default:sharedInflight=1.
import { readFile } from "node:fs/promises";
import { parseArgs } from "node:util";
import {
  EnvoyProcess,
  type HeaderList,
  type HttpStream,
  type StreamCallbacks,
  type WasmPlugin,
} from "../host/index.ts";
import { encodeSnapshot } from "../sidecar/snapshot/encoder.ts";
import type { Snapshot, SnapshotEndpoint } from "../sidecar/snapshot/types.ts";
import { parsePolicyName } from "./routing/policies.ts";

const { values } = parseArgs({
  options: {
    requests: { type: "string", default: "20000" },
    sizes: { type: "string", default: "10,100,1000" },
    "prompt-bytes": { type: "string", default: "4096" },
    "chunk-bytes": { type: "string", default: "0" },
    wasm: { type: "string", default: "build/filter.wasm" },
    profiles: { type: "string", default: "default" },
    workers: { type: "string", default: "1" },
  },
});
const REQUESTS = Number(values.requests);
const SIZES = values.sizes!.split(",").map(Number);
const PROMPT_BYTES = Number(values["prompt-bytes"]);
const CHUNK_BYTES = Number(values["chunk-bytes"]);
const PROFILES = values.profiles!.split(",").filter(Boolean);
const WORKERS = Math.max(1, Number(values.workers));
const TOKEN = "bench-token";
const POOL = { namespace: "bench", name: "pool" };

function endpoints(n: number): SnapshotEndpoint[] {
  // Deterministic, varied load so the picker has real work to do.
  return Array.from({ length: n }, (_, i) => ({
    podName: `vllm-${i}`,
    address: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`,
    port: 8000,
    ready: true,
    stale: false,
    hasMetrics: true,
    engine: "vllm" as const,
    metricsAgeMs: 20,
    waiting: (i * 7) % 13,
    running: (i * 11) % 50,
    kvUsage: ((i * 37) % 100) / 100,
    maxLoras: 4,
    kvBlockSize: 16,
    kvBlockCount: 29000,
    runningAdapters: i % 3 === 0 ? ["sql-lora"] : [],
    waitingAdapters: [],
  }));
}

function snapshot(n: number, name: string): Snapshot {
  const { base: profile, params } = parsePolicyName(name);
  return {
    generation: BigInt(Date.now()),
    createdAtMs: Date.now(),
    pool: { ...POOL, failureMode: "FailClose", strictModels: false, targetPorts: [8000] },
    endpoints: endpoints(n),
    models: [],
    objectives: [],
    rewrites: [],
    scheduler: { profile, queueThreshold: 5, kvThreshold: 0.8, metricsStalenessMs: 200, params },
  };
}

function promptBody(bytes: number): Uint8Array {
  const words = "the quick brown fox jumps over the lazy dog while the model thinks about tokens ";
  const content = words.repeat(Math.ceil(bytes / words.length)).slice(0, bytes);
  return new TextEncoder().encode(
    JSON.stringify({ model: "meta-llama/Llama-3.1-8B-Instruct", messages: [{ role: "user", content }] }),
  );
}

interface Outcome {
  status?: number;
  destination?: string;
  /** process.hrtime.bigint() when the headers went upstream. */
  decidedAt?: bigint;
}

function callbacks(out: Outcome): StreamCallbacks {
  return {
    forwardRequestHeaders: (h: HeaderList) => {
      out.destination = h.find(([k]) => k === "x-gateway-destination-endpoint")?.[1];
      out.decidedAt = process.hrtime.bigint();
    },
    forwardRequestData: () => {},
    forwardResponseHeaders: () => {},
    forwardResponseData: () => {},
    localReply: (r) => {
      out.status = r.status;
    },
  };
}

function percentile(sorted: Float64Array, p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

async function main(): Promise<void> {
  const code = await WebAssembly.compile(await readFile(values.wasm!));
  const body = promptBody(PROMPT_BYTES);
  const reqHeaders: HeaderList = [
    [":method", "POST"],
    [":path", "/v1/chat/completions"],
    [":authority", "bench"],
    [":scheme", "http"],
    ["content-type", "application/json"],
    ["content-length", String(body.length)],
  ];
  const respHeaders: HeaderList = [
    [":status", "200"],
    ["content-type", "application/json"],
  ];
  const delivery = CHUNK_BYTES > 0 ? `${CHUNK_BYTES} B pieces` : "one piece";
  console.log(
    `filter: ${values.wasm}; ${REQUESTS} requests per size; prompt ${PROMPT_BYTES} B in ${delivery}; ${WORKERS} worker VM${WORKERS > 1 ? "s" : ""}`,
  );
  console.log(
    "profile      endpoints   p50 µs   p90 µs   p99 µs  mean µs  decision p50 µs  decision p99 µs  distinct picks",
  );
  for (const profile of PROFILES)
    for (const n of SIZES) {
      await benchOne(code, profile, n, body, reqHeaders, respHeaders);
    }
}

/** Pushed to one worker; the others take it from shared data at their first (warm-up) request. */
function pushSnapshot(plugin: WasmPlugin, snapBytes: Uint8Array): void {
  const ctl: Outcome = {};
  const s = plugin.newHttpStream(callbacks(ctl), { worker: 0 });
  s.decodeHeaders(
    [
      [":method", "POST"],
      [":path", "/epp/v1/snapshot"],
      [":authority", "bench"],
      ["authorization", `Bearer ${TOKEN}`],
      ["content-length", String(snapBytes.length)],
    ],
    false,
  );
  s.decodeData(snapBytes, true);
  s.destroy();
  if (ctl.status !== 204) throw new Error(`snapshot push failed with ${ctl.status}`);
}

async function benchOne(
  code: WebAssembly.Module,
  profile: string,
  n: number,
  body: Uint8Array,
  reqHeaders: HeaderList,
  respHeaders: HeaderList,
): Promise<void> {
  {
    const envoy = new EnvoyProcess();
    const plugin = await envoy.loadPlugin(code, {
      vmId: "bench",
      workers: WORKERS,
      // The filter stops at request headers to read the body (see README: Envoy needs this flag).
      allowOnHeadersStopIteration: true,
      configuration: JSON.stringify({ pool: POOL, controlToken: TOKEN, staleAfterMs: 0, randomSeed: 1 }),
    });
    const snapBytes = encodeSnapshot(snapshot(n, profile));
    pushSnapshot(plugin, snapBytes);

    const pieces: Uint8Array[] = [];
    const size = CHUNK_BYTES > 0 ? CHUNK_BYTES : body.length;
    for (let i = 0; i < body.length; i += size) pieces.push(body.subarray(i, i + size));
    const run = (stream: HttpStream) => {
      stream.decodeHeaders(reqHeaders, false);
      pieces.forEach((p, i) => stream.decodeData(p, i === pieces.length - 1));
      stream.encodeHeaders(respHeaders, true);
      stream.destroy();
    };
    const warmup = Math.min(2000, REQUESTS);
    for (let i = 0; i < warmup; i++) run(plugin.newHttpStream(callbacks({})));
    const times = new Float64Array(REQUESTS);
    const decisions = new Float64Array(REQUESTS);
    let routed = 0;
    const picks = new Set<string>();
    for (let i = 0; i < REQUESTS; i++) {
      const out: Outcome = {};
      const stream = plugin.newHttpStream(callbacks(out));
      const t0 = process.hrtime.bigint();
      run(stream);
      times[i] = Number(process.hrtime.bigint() - t0) / 1000;
      decisions[i] = Number((out.decidedAt ?? t0) - t0) / 1000;
      if (out.destination) {
        routed++;
        picks.add(out.destination.split(",")[0]!);
      }
    }
    if (routed !== REQUESTS) throw new Error(`only ${routed}/${REQUESTS} requests were routed`);
    const mean = times.reduce((a, b) => a + b, 0) / times.length;
    times.sort();
    decisions.sort();
    const fmt = (v: number) => v.toFixed(1).padStart(8);
    console.log(
      `${profile.padEnd(12)} ${String(n).padStart(9)} ${fmt(percentile(times, 50))} ${fmt(percentile(times, 90))} ${fmt(percentile(times, 99))} ${fmt(mean)} ${fmt(percentile(decisions, 50)).padStart(16)} ${fmt(percentile(decisions, 99)).padStart(16)} ${String(picks.size).padStart(15)}`,
    );
    await plugin.shutdown();
  }
}

await main();
