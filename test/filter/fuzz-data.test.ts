// Seeded fuzzing of the data path through the real build/filter.wasm in the host (2 workers, in-process):
// realistic OpenAI bodies for the four inference APIs, mutated (truncation, byte flips, inserted
// quotes/backslashes/braces, deep nesting, huge numbers, invalid UTF-8), delivered in random pieces, with
// random header sets that spoof the gateway's own headers. Every stream must end in exactly one outcome:
// forwarded with one destination header naming only pool endpoints (a spoofed value never survives unless
// it is the pick), or a local reply in {400,404,413,429,503} with an OpenAI-style JSON error body.
// EPP_FUZZ_DATA_ITERATIONS changes the count (default 100,000).
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { EnvoyProcess, VirtualClock } from "../../host/index.ts";
import type { HeaderList, LocalReply } from "../../host/index.ts";
import { encodeSnapshot } from "../../sidecar/snapshot/encoder.ts";
import type { Snapshot } from "../../sidecar/snapshot/types.ts";
import { seededRandom } from "../sidecar/snapshot-samples.ts";

const WASM = readFileSync(new URL("../../build/filter.wasm", import.meta.url));
const ITERATIONS = Number(process.env.EPP_FUZZ_DATA_ITERATIONS ?? 100_000);
const CREATED_MS = 1_795_000_000_000;
const TOKEN = "tok";
const MAX_BODY = 16_384;
const ADDRESSES = ["10.1.0.1", "10.1.0.2", "10.1.0.3", "fd00::7"];
const POOL_HOSTS = new Set(ADDRESSES.map((a) => (a.includes(":") ? `[${a}]:8000` : `${a}:8000`)));
const LOCAL_STATUSES = new Set([400, 404, 413, 429, 503]);
const DEST = "x-gateway-destination-endpoint";

type Rand = () => number;
const int = (r: Rand, n: number) => Math.floor(r() * n);
const pick = <T>(r: Rand, xs: readonly T[]): T => xs[int(r, xs.length)]!;

function snapshot(): Uint8Array {
  const s: Snapshot = {
    generation: 7n,
    createdAtMs: CREATED_MS,
    pool: {
      namespace: "ns",
      name: "pool",
      failureMode: "FailClose",
      strictModels: true,
      targetPorts: [8000],
    },
    endpoints: ADDRESSES.map((address, i) => ({
      podName: `vllm-${i}`,
      address,
      port: 8000,
      ready: true,
      stale: false,
      hasMetrics: true,
      engine: "vllm",
      metricsAgeMs: 5,
      waiting: 2 + i, // all over queueThreshold: the pool is saturated, so sheddable requests are shed (429)
      running: 2 * i,
      kvUsage: 0.25 * i,
      maxLoras: 2,
      kvBlockSize: 16,
      kvBlockCount: 2048,
      runningAdapters: i === 2 ? ["sql-lora"] : [],
      waitingAdapters: [],
    })),
    models: [
      { name: "llama", criticality: "Critical", targets: [] },
      { name: "batch", criticality: "Sheddable", targets: [{ name: "llama", weight: 1 }] },
      { name: "sql-lora", criticality: "Standard", targets: [] },
    ],
    objectives: [
      { name: "gold", priority: 10 },
      { name: "bulk", priority: -5 },
    ],
    rewrites: [{ matches: ["legacy"], targets: [{ model: "llama", weight: 1 }] }],
    scheduler: {
      profile: "default",
      queueThreshold: 1,
      kvThreshold: 0.6,
      metricsStalenessMs: 1000,
      params: {},
    },
  };
  return encodeSnapshot(s);
}

const MODELS = ["llama", "batch", "sql-lora", "legacy", "unknown-model", "", "Llama", "llama\u00e9"];
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

const enc = new TextEncoder();
// Lone continuation, overlong, encoded surrogate, truncated 4-byte sequence, never-valid byte.
const INVALID_UTF8 = [[0x80], [0xc0, 0xaf], [0xed, 0xa0, 0x80], [0xf0, 0x9f], [0xff]];

function splice(b: Uint8Array, at: number, insert: Uint8Array, remove = 0): Uint8Array {
  const out = new Uint8Array(b.length - remove + insert.length);
  out.set(b.subarray(0, at));
  out.set(insert, at);
  out.set(b.subarray(at + remove), at + insert.length);
  return out;
}

function mutateBody(r: Rand, b: Uint8Array): Uint8Array {
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
      case 5: // invalid UTF-8: lone continuation, overlong, surrogate, truncated sequence
        b = splice(b, at, Uint8Array.from(pick(r, INVALID_UTF8)));
        break;
      default:
        b = splice(b, at, new Uint8Array(0), Math.min(int(r, 8), b.length - Math.min(at, b.length)));
    }
  }
  return b;
}

function requestBody(r: Rand, path: string): Uint8Array | undefined {
  const k = r();
  if (k < 0.05) return undefined; // headers only
  if (k < 0.08) return Uint8Array.from({ length: int(r, 300) }, () => int(r, 256));
  if (k < 0.1)
    return enc.encode(JSON.stringify({ model: "llama", prompt: "p".repeat(MAX_BODY + int(r, 2000)) }));
  const clean = enc.encode(JSON.stringify(realisticBody(r, path)));
  return r() < 0.35 ? clean : mutateBody(r, clean);
}

function headerSet(r: Rand, path: string, body: Uint8Array | undefined): HeaderList {
  const h: HeaderList = [
    [":method", body ? pick(r, ["POST", "POST", "POST", "PUT"]) : pick(r, ["GET", "POST", "DELETE"])],
    [":path", r() < 0.9 ? path : pick(r, [`${path}?x=1`, "/v1/models", "/", "/v2/chat/completions", "%zz"])],
    [":authority", "gw"],
    [":scheme", "http"],
  ];
  if (r() < 0.9)
    h.push(["content-type", pick(r, ["application/json", "application/json; charset=utf-8", "text/plain"])]);
  if (body && r() < 0.5) h.push(["content-length", String(r() < 0.9 ? body.length : int(r, 1 << 20))]);
  const spoofHost = pick(r, [
    ...POOL_HOSTS,
    "6.6.6.6:1",
    "10.1.0.1:9999",
    "",
    "a,b",
    "10.1.0.1:8000,6.6.6.6:1",
  ]);
  if (r() < 0.3) h.push([DEST, spoofHost]);
  if (r() < 0.1) h.push([DEST, "6.6.6.6:2"]); // a second spoofed copy
  if (r() < 0.3)
    h.push(["x-gateway-inference-objective", pick(r, ["gold", "bulk", "nope", "", "g\u00f6ld"])]);
  if (r() < 0.2)
    h.push(["x-gateway-model-name-rewrite", pick(r, ["llama", "unknown-model", "", "x".repeat(300)])]);
  if (r() < 0.2)
    h.push(["test-epp-endpoint-selection", pick(r, ["6.6.6.6", "10.1.0.2", "fd00::7", ",,", ""])]);
  if (r() < 0.05) h.push(["x-junk", "v".repeat(int(r, 20_000))]);
  return h;
}

test(`${ITERATIONS} seeded OpenAI-ish requests: no trap, exactly one well-formed outcome`, async () => {
  const proc = new EnvoyProcess({ clock: new VirtualClock(BigInt(CREATED_MS) * 1_000_000n) });
  const plugin = await proc.loadPlugin(WASM, {
    vmId: "epp",
    workers: 2,
    allowOnHeadersStopIteration: true,
    configuration: JSON.stringify({
      pool: { namespace: "ns", name: "pool" },
      controlToken: TOKEN,
      failureMode: "FailClose",
      randomSeed: 11,
      maxBodyBytes: MAX_BODY,
    }),
  });
  try {
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
    push.decodeData(snapshot(), true);
    push.destroy();
    assert.equal(installed, 204);

    const r = seededRandom(424242);
    const outcomes = new Map<string, number>();
    const count = (k: string) => outcomes.set(k, (outcomes.get(k) ?? 0) + 1);
    const started = performance.now();
    for (let i = 0; i < ITERATIONS; i++) {
      const path = pick(r, API_PATHS);
      const body = requestBody(r, path);
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
        { worker: i & 1 },
      );
      s.decodeHeaders(headers, body === undefined || body.length === 0);
      if (body && body.length > 0) {
        // 1..6 pieces at random cut points, stopping once the filter has answered.
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

      const ctx = `iteration ${i}`;
      if (plugin.failedWorkers.length > 0) assert.fail(`trap at ${ctx}`);
      assert.equal(
        forwards.length + replies.length,
        1,
        `${ctx}: ${forwards.length} forwards, ${replies.length} replies`,
      );
      if (replies.length === 1) {
        const rep = replies[0]!;
        assert.ok(LOCAL_STATUSES.has(rep.status), `${ctx}: status ${rep.status}`);
        const j = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(rep.body)) as {
          error?: { message?: unknown };
        };
        assert.equal(typeof j.error?.message, "string", `${ctx}: body ${Buffer.from(rep.body).toString()}`);
        count(String(rep.status));
      } else {
        const dest = forwards[0]!.filter(([k]) => k.toLowerCase() === DEST);
        assert.equal(dest.length, 1, `${ctx}: ${dest.length} destination headers`);
        const hosts = dest[0]![1].split(",");
        for (const hp of hosts)
          assert.ok(POOL_HOSTS.has(hp), `${ctx}: destination ${hp} is not a pool endpoint`);
        count("forwarded");
      }
    }
    const ms = performance.now() - started;
    console.log(`fuzz-data: ${ITERATIONS} streams in ${ms.toFixed(0)} ms; ${JSON.stringify([...outcomes])}`);
    // The generator must reach both outcomes and the main error paths, or it has degenerated.
    assert.ok((outcomes.get("forwarded") ?? 0) > ITERATIONS / 10, JSON.stringify([...outcomes]));
    if (ITERATIONS >= 10_000)
      for (const code of ["400", "404", "413", "429"]) assert.ok(outcomes.has(code), code);
  } finally {
    await plugin.shutdown();
  }
});
