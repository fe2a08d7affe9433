// Seeded fuzzing of the data path through the real build/filter.wasm in the host (2 workers, in-process).
// Two plugin profiles share one snapshot shape: "conformance" (conformance: true, so the
// test-epp-endpoint-selection header is honoured; 4 KiB body limit) and "production" (conformance off,
// 16 KiB body limit). Every stream draws its body from one of two families, independently of the profile:
//  - text: seed requests mutated character by character (JSON punctuation, NUL, é, stray keywords), random
//    bytes, long prompts and deep "[" nesting, sent to any path;
//  - openai: realistic bodies for the four inference APIs, clean or byte-mutated (truncation, byte flips,
//    inserted quotes/backslashes/braces, deep nesting, huge numbers, invalid UTF-8), oversized bodies;
// and its headers from one generator: paths (API, query strings, non-API, malformed), methods, content
// types (or none), content-length (true or lying), spoofed gateway destination headers, objectives,
// model rewrites, conformance subsets and huge junk headers. Bodies arrive in 1..6 random pieces.
// Invariants, checked for every stream: the VM never traps; exactly one outcome — forwarded with exactly
// one destination header naming only candidate endpoints (never the stale one; a spoofed value that is not a
// candidate never survives, and one that names a candidate can only be there as the filter's own pick),
// or a local reply in {400,404,413,429,503} whose body is strict UTF-8 JSON with a string error.message.
// Per profile the corpus must reach forwarding (>10%) and 400/404/413/429, or the generator has degenerated.
// EPP_FUZZ_DATA_ITERATIONS changes the total stream count (default 100,000, split evenly between profiles).
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { EnvoyProcess, VirtualClock } from "../../host/index.ts";
import type { HeaderList, LocalReply, WasmPlugin } from "../../host/index.ts";
import { encodeSnapshot } from "../../sidecar/snapshot/encoder.ts";
import type { Snapshot } from "../../sidecar/snapshot/types.ts";
import { mulberry32 } from "../../sim/rng.ts";

const WASM = readFileSync(new URL("../../build/filter.wasm", import.meta.url));
const ITERATIONS = Number(process.env.EPP_FUZZ_DATA_ITERATIONS ?? 100_000);
const CREATED_MS = 1_795_000_000_000;
const TOKEN = "tok";
// fd00::1 is stale (never a candidate), fd00::7 is not (IPv6 destinations are formatted).
const ADDRESSES = ["10.0.0.1", "10.0.0.2", "10.0.0.3", "fd00::1", "fd00::7"];
const hostPort = (a: string) => (a.includes(":") ? `[${a}]:8000` : `${a}:8000`);
const POOL_HOSTS = new Set(ADDRESSES.map(hostPort));
const STALE = "fd00::1";
/** The endpoints a destination may name: the pool's, less the stale one (other endpoints are fresh). */
const CANDIDATES = new Set(ADDRESSES.filter((a) => a !== STALE).map(hostPort));
const LOCAL_STATUSES = new Set([400, 404, 413, 429, 503]);
const DEST = "x-gateway-destination-endpoint";

type Rand = () => number;
const int = (r: Rand, n: number) => Math.floor(r() * n);
const pick = <T>(r: Rand, xs: readonly T[]): T => xs[int(r, xs.length)]!;

interface Profile {
  name: string;
  pool: { namespace: string; name: string };
  maxBody: number;
  config: Record<string, unknown>;
  scheduler: Snapshot["scheduler"];
}

const PROFILES: Profile[] = [
  {
    name: "conformance",
    pool: { namespace: "default", name: "pool-a" },
    maxBody: 4096,
    config: { randomSeed: 3, conformance: true },
    scheduler: {
      profile: "default",
      queueThreshold: 2,
      kvThreshold: 0.3,
      metricsStalenessMs: 200,
      params: {},
    },
  },
  {
    name: "production",
    pool: { namespace: "ns", name: "pool" },
    maxBody: 16_384,
    config: { randomSeed: 11, failureMode: "FailClose" },
    scheduler: {
      profile: "default",
      queueThreshold: 1,
      kvThreshold: 0.6,
      metricsStalenessMs: 1000,
      params: {},
    },
  },
];

function snapshot(p: Profile): Uint8Array {
  const s: Snapshot = {
    generation: 7n,
    createdAtMs: CREATED_MS,
    pool: { ...p.pool, failureMode: "FailClose", strictModels: true, targetPorts: [8000] },
    endpoints: ADDRESSES.map((address, i) => ({
      podName: `vllm-${i}`,
      address,
      port: 8000,
      ready: true,
      stale: address === STALE,
      hasMetrics: true,
      engine: "vllm",
      metricsAgeMs: 10,
      waiting: 3 + i, // above queueThreshold everywhere: saturated, so sheddable requests are shed (429)
      running: 2 * i,
      kvUsage: 0.2 * i,
      maxLoras: 2,
      kvBlockSize: 16,
      kvBlockCount: 2048,
      runningAdapters: i === 1 ? ["sql-lora"] : [],
      waitingAdapters: [],
    })),
    models: [
      { name: "m", criticality: "Critical", targets: [] },
      { name: "llama", criticality: "Critical", targets: [] },
      { name: "shed", criticality: "Sheddable", targets: [{ name: "m", weight: 1 }] },
      { name: "batch", criticality: "Sheddable", targets: [{ name: "llama", weight: 1 }] },
      { name: "sql-lora", criticality: "Standard", targets: [] },
      {
        name: "split",
        criticality: "Standard",
        targets: [
          { name: "m", weight: 3 },
          { name: "sql-lora", weight: 1 },
        ],
      },
    ],
    objectives: [
      { name: "low", priority: -3 },
      { name: "high", priority: 9 },
      { name: "gold", priority: 10 },
      { name: "bulk", priority: -5 },
    ],
    rewrites: [
      { matches: ["old"], targets: [{ model: "m", weight: 1 }] },
      { matches: ["legacy"], targets: [{ model: "llama", weight: 1 }] },
    ],
    scheduler: p.scheduler,
  };
  return encodeSnapshot(s);
}

const enc = new TextEncoder();
const strictUtf8 = new TextDecoder("utf-8", { fatal: true });

// ---- "text" body family: character-level mutations of seed requests ----

const TEXT_SEEDS = [
  '{"model":"m","prompt":"hello world"}',
  '{"model":"split","messages":[{"role":"system","content":"x"},{"role":"user","content":[{"type":"text","text":"y"}]}],"stream":true}',
  '{"model":"old","input":["a","b"],"instructions":"be brief"}',
  '{"model":"shed","prompt":[1,2,3],"max_tokens":4}',
  '{"model":"unknown","prompt":"z"}',
  '{"model":"m\\u00e9\\ud83d\\ude00","prompt":"\\"quoted\\""}',
];
const TEXT_ALPHABET = [...'{}[]":,\\ 0123456789-.eEtruefalsnl\u00e9\u0000\n\tmodelpromptmessagesstreaminput'];

function mutateText(r: Rand, s: string): string {
  const chars = [...s];
  const edits = int(r, 5);
  for (let e = 0; e < edits; e++) {
    const at = int(r, chars.length + 1);
    const c = pick(r, TEXT_ALPHABET);
    const op = r();
    if (op < 0.4) chars.splice(at, 1, c);
    else if (op < 0.7) chars.splice(at, 0, c);
    else chars.splice(at, 1);
  }
  return chars.join("");
}

function textBody(r: Rand): Uint8Array | undefined {
  const k = r();
  if (k < 0.1) return undefined; // headers only
  if (k < 0.19) return Uint8Array.from({ length: int(r, 200) }, () => int(r, 256));
  if (k < 0.235) return enc.encode(JSON.stringify({ model: "m", prompt: "p".repeat(int(r, 6000)) }));
  if (k < 0.28) return enc.encode("[".repeat(int(r, 300)) + '{"model":"m"}');
  return enc.encode(mutateText(r, pick(r, TEXT_SEEDS)));
}

// ---- "openai" body family: realistic requests, byte-level mutations ----

const MODELS = ["llama", "batch", "sql-lora", "legacy", "unknown-model", "", "Llama", "llama\u00e9", "split"];
const API_PATHS = ["/v1/completions", "/v1/chat/completions", "/v1/embeddings", "/v1/responses"];

function text(r: Rand): string {
  const words = ["hello", "SELECT * FROM t;", '"quoted"', "back\\slash", "日本語", "🚀", "\n", "{", "]"];
  return Array.from({ length: int(r, 30) }, () => pick(r, words)).join(" ");
}

/** A well-formed request for the API behind `path`, in the shape real OpenAI clients send. */
function realisticBody(r: Rand, path: string): unknown {
  const model = pick(r, MODELS);
  switch (path) {
    case "/v1/completions":
      return {
        model,
        prompt: r() < 0.8 ? text(r) : [text(r), text(r)],
        max_tokens: int(r, 512),
        stream: r() < 0.3,
      };
    case "/v1/chat/completions":
      return {
        model,
        messages: [
          { role: "system", content: text(r) },
          { role: "user", content: r() < 0.7 ? text(r) : [{ type: "text", text: text(r) }] },
        ],
        temperature: r(),
        stream: r() < 0.5,
        ...(r() < 0.3 ? { stream_options: { include_usage: true } } : {}),
      };
    case "/v1/embeddings":
      return { model, input: r() < 0.5 ? text(r) : [text(r), text(r)], encoding_format: "float" };
    default:
      return {
        model,
        input: r() < 0.5 ? text(r) : [{ role: "user", content: text(r) }],
        instructions: text(r),
      };
  }
}

// Lone continuation, overlong, encoded surrogate, truncated 4-byte sequence, never-valid byte.
const INVALID_UTF8 = [[0x80], [0xc0, 0xaf], [0xed, 0xa0, 0x80], [0xf0, 0x9f], [0xff]];

function splice(b: Uint8Array, at: number, insert: Uint8Array, remove = 0): Uint8Array {
  const out = new Uint8Array(b.length - remove + insert.length);
  out.set(b.subarray(0, at));
  out.set(insert, at);
  out.set(b.subarray(at + remove), at + insert.length);
  return out;
}

function mutateBytes(r: Rand, b: Uint8Array): Uint8Array {
  const edits = int(r, 4);
  for (let e = 0; e < edits; e++) {
    const at = int(r, b.length + 1);
    switch (int(r, 7)) {
      case 0:
        b = b.subarray(0, at); // truncation
        break;
      case 1:
        if (b.length > 0) b = splice(b, Math.min(at, b.length - 1), Uint8Array.of(int(r, 256)), 1); // byte flip
        break;
      case 2:
        b = splice(
          b,
          at,
          enc.encode(pick(r, ['"', "\\", "{", "}", "[", "]", ",", ":", '\\"', "\\u", "\\ud800"])),
        );
        break;
      case 3: {
        const depth = int(r, 2000);
        const open = pick(r, ["[", '{"a":']);
        b = splice(b, at, enc.encode(open.repeat(depth) + "1" + (open === "[" ? "]" : "}").repeat(depth)));
        break;
      }
      case 4:
        b = splice(
          b,
          at,
          enc.encode(pick(r, ["1e999999", "-0", "9".repeat(400), "1.5e-400", "NaN", "0x10"])),
        );
        break;
      case 5:
        b = splice(b, at, Uint8Array.from(pick(r, INVALID_UTF8)));
        break;
      default:
        b = splice(b, at, new Uint8Array(0), Math.min(int(r, 8), b.length - Math.min(at, b.length)));
    }
  }
  return b;
}

function openaiBody(r: Rand, p: Profile, path: string): Uint8Array | undefined {
  const k = r();
  if (k < 0.05) return undefined; // headers only
  if (k < 0.08) return Uint8Array.from({ length: int(r, 300) }, () => int(r, 256));
  if (k < 0.1)
    return enc.encode(JSON.stringify({ model: "llama", prompt: "p".repeat(p.maxBody + int(r, 2000)) }));
  const clean = enc.encode(JSON.stringify(realisticBody(r, path)));
  return r() < 0.35 ? clean : mutateBytes(r, clean);
}

// ---- headers ----

const OTHER_PATHS = ["/v1/models", "/", "/v2/chat/completions", "%zz", "/x?y=1"];
const CONTENT_TYPES = [
  "application/json",
  "application/json; charset=utf-8",
  "text/plain",
  "application/vnd+json",
];
const SPOOFS = [...POOL_HOSTS, "6.6.6.6:1", "10.0.0.1:9999", "", "a,b", "10.0.0.1:8000,6.6.6.6:1"];
const OBJECTIVES = ["low", "high", "gold", "bulk", "nope", "", "g\u00f6ld"];
const SUBSETS = ["6.6.6.6", "10.0.0.2", "10.0.0.9", "fd00::1", "fd00::7", ",", ",,", ""];

function headerSet(r: Rand, path: string, body: Uint8Array | undefined): HeaderList {
  const h: HeaderList = [
    [":method", body ? pick(r, ["POST", "POST", "POST", "PUT"]) : pick(r, ["GET", "POST", "DELETE"])],
    [":path", r() < 0.85 ? path : r() < 0.2 ? `${path}?x=1` : pick(r, OTHER_PATHS)],
    [":authority", "gw"],
  ];
  if (r() < 0.5) h.push([":scheme", "http"]);
  if (r() < 0.9) h.push(["content-type", pick(r, CONTENT_TYPES)]);
  if (body && r() < 0.5) h.push(["content-length", String(r() < 0.9 ? body.length : int(r, 1 << 20))]);
  if (r() < 0.3) h.push([DEST, pick(r, SPOOFS)]);
  if (r() < 0.1) h.push([DEST, "6.6.6.6:2"]); // a second spoofed copy
  if (r() < 0.3) h.push(["x-gateway-inference-objective", pick(r, OBJECTIVES)]);
  if (r() < 0.2)
    h.push([
      "x-gateway-model-name-rewrite",
      r() < 0.3 ? mutateText(r, "forced") : pick(r, ["llama", "m", "unknown-model", "", "x".repeat(300)]),
    ]);
  if (r() < 0.2) h.push(["test-epp-endpoint-selection", pick(r, SUBSETS)]);
  if (r() < 0.05) h.push(["x-junk", "v".repeat(int(r, 20_000))]);
  return h;
}

// ---- driver ----

async function loadProfile(module: WebAssembly.Module, p: Profile): Promise<WasmPlugin> {
  const proc = new EnvoyProcess({ clock: new VirtualClock(BigInt(CREATED_MS) * 1_000_000n) });
  const plugin = await proc.loadPlugin(module, {
    vmId: "epp",
    workers: 2,
    allowOnHeadersStopIteration: true,
    configuration: JSON.stringify({
      pool: p.pool,
      controlToken: TOKEN,
      maxBodyBytes: p.maxBody,
      ...p.config,
    }),
  });
  let installed = 0;
  const push = plugin.newHttpStream({
    forwardRequestHeaders: () => assert.fail("control request forwarded"),
    forwardRequestData: () => {},
    forwardResponseHeaders: () => {},
    forwardResponseData: () => {},
    localReply: (rep) => (installed = rep.status),
  });
  push.decodeHeaders(
    [
      [":method", "POST"],
      [":path", "/epp/v1/snapshot"],
      [":authority", "gw"],
      ["authorization", `Bearer ${TOKEN}`],
    ],
    false,
  );
  push.decodeData(snapshot(p), true);
  push.destroy();
  assert.equal(installed, 204, `${p.name}: snapshot not installed`);
  return plugin;
}

test(`${ITERATIONS} seeded text/OpenAI requests over 2 profiles: no trap, exactly one well-formed outcome`, async () => {
  const module = await WebAssembly.compile(WASM);
  const plugins: WasmPlugin[] = [];
  try {
    for (const p of PROFILES) plugins.push(await loadProfile(module, p));
    const r = mulberry32(424242);
    const outcomes = PROFILES.map(() => new Map<string, number>());
    const started = performance.now();
    for (let i = 0; i < ITERATIONS; i++) {
      const which = i % PROFILES.length;
      const p = PROFILES[which]!;
      const plugin = plugins[which]!;
      const path = pick(r, API_PATHS);
      const family = r() < 0.5 ? "text" : "openai";
      const body = family === "text" ? textBody(r) : openaiBody(r, p, path);
      const headers = headerSet(r, path, body);
      const forwards: HeaderList[] = [];
      const replies: LocalReply[] = [];
      const s = plugin.newHttpStream(
        {
          forwardRequestHeaders: (h) => forwards.push(h),
          forwardRequestData: () => {},
          forwardResponseHeaders: () => {},
          forwardResponseData: () => {},
          localReply: (rep) => replies.push(rep),
        },
        { worker: (i >> 1) & 1 },
      );
      s.decodeHeaders(headers, body === undefined);
      if (body) {
        // 1..6 pieces at random cut points (empty pieces included), stopping once the filter has answered.
        const pieces = 1 + int(r, 6);
        const cuts = Array.from({ length: pieces - 1 }, () => int(r, body.length + 1)).sort((a, b) => a - b);
        let from = 0;
        for (const to of [...cuts, body.length]) {
          if (replies.length > 0) break;
          s.decodeData(body.subarray(from, to), to === body.length);
          from = to;
        }
      }
      if (forwards.length > 0 && replies.length === 0) s.encodeHeaders([[":status", "200"]], true);
      s.destroy();

      const ctx = () =>
        `iteration ${i} (${p.name}, ${family} body): ${JSON.stringify(headers.map(([k, v]) => [k, v.slice(0, 80)]))} ` +
        `${body ? JSON.stringify(Buffer.from(body.subarray(0, 200)).toString()) : "no body"}`;
      if (plugin.failedWorkers.length > 0) assert.fail(`trap at ${ctx()}`);
      if (forwards.length + replies.length !== 1)
        assert.fail(`${ctx()}: ${forwards.length} forwards, ${replies.length} replies`);
      const seen = outcomes[which]!;
      if (replies.length === 1) {
        const rep = replies[0]!;
        if (!LOCAL_STATUSES.has(rep.status)) assert.fail(`${ctx()}: status ${rep.status}`);
        let message: unknown;
        try {
          message = (JSON.parse(strictUtf8.decode(rep.body)) as { error?: { message?: unknown } }).error
            ?.message;
        } catch (e) {
          assert.fail(`${ctx()}: reply body ${Buffer.from(rep.body).toString()}: ${String(e)}`);
        }
        if (typeof message !== "string") assert.fail(`${ctx()}: body ${Buffer.from(rep.body).toString()}`);
        seen.set(String(rep.status), (seen.get(String(rep.status)) ?? 0) + 1);
      } else {
        const dest = forwards[0]!.filter(([k]) => k.toLowerCase() === DEST);
        if (dest.length !== 1) assert.fail(`${ctx()}: ${dest.length} destination headers`);
        const value = dest[0]![1];
        for (const hp of value.split(","))
          if (!CANDIDATES.has(hp)) assert.fail(`${ctx()}: destination ${hp} is not a candidate endpoint`);
        const spoofs = headers.filter(([k]) => k === DEST).map(([, v]) => v);
        if (spoofs.length > 0) {
          // Every spoofed value here is something the filter never writes (not a candidate list), except a
          // single candidate host, which the filter may pick itself.
          for (const v of spoofs)
            if (!CANDIDATES.has(v) && value === v) assert.fail(`${ctx()}: the spoofed ${v} survived`);
          seen.set("forwarded-spoofed", (seen.get("forwarded-spoofed") ?? 0) + 1);
        }
        seen.set("forwarded", (seen.get("forwarded") ?? 0) + 1);
      }
    }
    const ms = performance.now() - started;
    const summary = PROFILES.map((p, k) => `${p.name} ${JSON.stringify([...outcomes[k]!])}`).join("; ");
    console.log(`fuzz-data: ${ITERATIONS} streams in ${ms.toFixed(0)} ms; ${summary}`);
    // Each profile's corpus must reach both outcomes and the main error paths, or it has degenerated.
    for (const [k, p] of PROFILES.entries()) {
      const seen = outcomes[k]!;
      const n = Math.ceil((ITERATIONS - k) / PROFILES.length);
      assert.ok((seen.get("forwarded") ?? 0) > n / 10, `${p.name}: ${JSON.stringify([...seen])}`);
      // The spoofing claim was exercised: many forwarded streams carried a client destination header.
      assert.ok((seen.get("forwarded-spoofed") ?? 0) > n / 100, `${p.name}: ${JSON.stringify([...seen])}`);
      if (ITERATIONS >= 10_000)
        for (const code of ["400", "404", "413", "429"]) assert.ok(seen.has(code), `${p.name}: no ${code}`);
    }
  } finally {
    for (const plugin of plugins) await plugin.shutdown();
  }
});
