// The data path fuzzed over real sockets: the gateway runs as a child process the way `npm start` runs it
// (override_host bootstrap, build/filter.wasm), in front of three recording model servers (raw TCP, strict
// parser) and a snapshot pushed through the real control listener (re-pushed every second so it stays fresh).
// Seeded adversarial requests go over raw TCP: keep-alive, pipelining, bounded concurrency across many
// connections. They cover hostile header names and values (obs-text, duplicates, huge, controls), spoofed
// x-gateway-destination-endpoint, the real control token, bodies with model names of every Unicode class
// (controls, lone surrogates, emoji, RTL, NUL, invalid UTF-8), truncated and garbage JSON, huge bodies,
// methods, paths (the control path on the data listener included) and framing (chunked with bad sizes,
// content-length mismatches, early close, slow writes).
// Invariants: the gateway process stays up; every response is well-formed HTTP (strict parser) or the
// connection closes cleanly after a framing error; every upstream request head is valid HTTP, carries exactly
// one destination header naming only pool endpoints (never a client-supplied one) and reached a host on it;
// the control path on the data listener never answers 204.
// EPP_FUZZ_CASES sets the number of requests (default 100,000); EPP_FUZZ_SEED the seed.
import { test } from "node:test";
import assert from "node:assert/strict";
import net from "node:net";
import { mulberry32 } from "../../sim/rng.ts";
import { snapshotFor, startGatewayProcess, type GatewayProcess } from "../support/gateway-process.ts";
import {
  startRecordingUpstream,
  type RecordingUpstream,
  type UpstreamRequestView,
} from "../support/recording-upstream.ts";
import { header, WireError, WireParser, type WireMessage } from "../support/http-wire.ts";

const CASES = Number(process.env.EPP_FUZZ_CASES ?? 100_000);
const SEED = Number(process.env.EPP_FUZZ_SEED ?? 20);
const CONCURRENCY = 32;
const DEST = "x-gateway-destination-endpoint";
// Client-supplied destinations: none of these may ever reach a model server.
const SPOOFS = ["203.0.113.7:9", "[2001:db8::1]:80", "10.66.66.66:8000", "127.0.0.1:1", "evil.example:80"];

type Rand = () => number;
const int = (r: Rand, n: number) => Math.floor(r() * n);
const pick = <T>(r: Rand, xs: readonly T[]): T => xs[int(r, xs.length)]!;
const chance = (r: Rand, p: number) => r() < p;

/** One request as bytes; `terminal` ones break framing or close, so they end their connection's batch. */
interface Case {
  bytes: Buffer[];
  method: string;
  /** A framing error or an early close: a response is optional and the connection must then close. */
  terminal: boolean;
  /** The request asks to close after its response (Connection: close, HTTP/1.0). */
  closes: boolean;
  controlPathWithToken: boolean;
  slow: boolean;
  /** The model server is told to die mid-response: the gateway then resets the connection (as Envoy does). */
  resets: boolean;
  /**
   * Expect: 100-continue: if the final response goes out without a 100 Continue (the request was pipelined
   * behind another), the server must not assume the body was sent and closes after it (RFC 9110 §10.1.1).
   */
  mayClose: boolean;
}

// Model names from every Unicode class, as JSON string literals (escapes where JSON needs or allows them).
const MODEL_LITERALS = [
  '"m"',
  '"meta-llama/Llama-3.1-8B-Instruct"',
  '"模"',
  '"🚀"',
  '"é"',
  '"\\u0000"',
  '"a\\nb"',
  '"a\\r\\nx-injected: 1"',
  '"\\u007f"',
  '"\\u0085"',
  '"\\t"',
  '"\\ud800"',
  '"\\udfff\\ud800"',
  '"\\ud83d\\ude80"',
  '"שלום"',
  '"\u202egnp.exe"',
  '"مرحبا"',
  '"e\u0301"',
  '"\u200b"',
  '"\ufeffbom"',
  '"\uffff"',
  '""',
  '" "',
  '"' + "x".repeat(5000) + '"',
  "null",
  "42",
  "[]",
  '{"a":1}',
  "true",
];

function modelLiteral(r: Rand): string {
  if (chance(r, 0.15)) {
    // A random mix of code points, escaped or raw.
    let s = "";
    for (let i = 0, n = 1 + int(r, 12); i < n; i++) {
      const cp = pick(r, [
        int(r, 0x20),
        0x7f,
        0x80 + int(r, 0x780),
        0x4e00 + int(r, 0x5000),
        0xd800 + int(r, 0x800),
        0x1f300 + int(r, 0x300),
      ]);
      s +=
        cp < 0x20 || (cp >= 0xd800 && cp < 0xe000)
          ? `\\u${cp.toString(16).padStart(4, "0")}`
          : String.fromCodePoint(cp);
    }
    return `"${s.replace(/"/g, "")}"`;
  }
  return pick(r, MODEL_LITERALS);
}

function body(r: Rand): Buffer {
  const model = modelLiteral(r);
  const kind = int(r, 10);
  if (kind <= 4) return Buffer.from(`{"model":${model},"prompt":"hi","max_tokens":1}`, "utf8");
  if (kind === 5)
    return Buffer.from(
      `{"model":${model},"system":[{"type":"text","text":"sé"}],"messages":[{"role":"user","content":"hé 模"}]}`,
      "utf8",
    );
  if (kind === 6) {
    const full = `{"model":${model},"prompt":"truncated`;
    return Buffer.from(full.slice(0, int(r, full.length)), "utf8");
  }
  if (kind === 7) return Buffer.from(Array.from({ length: int(r, 300) }, () => int(r, 256)));
  if (kind === 8) {
    // Invalid UTF-8 inside the model string, or duplicate keys.
    return chance(r, 0.5)
      ? Buffer.concat([
          Buffer.from('{"model":"a'),
          Buffer.from([0xff, 0xc0, 0x80, 0xed, 0xa0, 0x80]),
          Buffer.from('","prompt":"x"}'),
        ])
      : Buffer.from(`{"model":"m","model":${model},"prompt":"x"}`, "utf8");
  }
  // Rarely huge (beyond the 1 MiB buffer limit: 413), otherwise deep nesting.
  if (chance(r, 0.02)) return Buffer.from(`{"model":"m","prompt":"${"a".repeat(1_100_000)}"}`);
  return Buffer.from(`{"model":"m","prompt":${"[".repeat(1 + int(r, 3000))}`);
}

const PATHS = [
  "/v1/completions",
  "/v1/chat/completions",
  "/v1/embeddings",
  "/v1/messages",
  "/v1/messages?beta=true",
  "/v1/models",
  "/",
  "/epp/v1/snapshot",
  "/epp/v1/snapshot?x=1",
  "//v1/completions",
  "/v1/completions?model=%E6%A8%A1",
  "/%00",
  "/v1/../epp/v1/snapshot",
  "http://evil.example/v1/completions",
  "/" + "p".repeat(6000),
];
const METHODS = ["POST", "POST", "POST", "GET", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH", "TRACE"];

/** Header lines (latin1 strings) that Node's parser accepts. */
function goodHeaders(r: Rand, token: string): string[] {
  const h: string[] = [];
  if (chance(r, 0.8))
    h.push(
      `content-type: ${pick(r, ["application/json", "text/plain", "application/json; charset=utf-8", ""])}`,
    );
  const spoofs = int(r, 4) === 0 ? 1 + int(r, 3) : 0;
  for (let i = 0; i < spoofs; i++) {
    h.push(
      `${pick(r, [DEST, "X-Gateway-Destination-Endpoint"])}: ${pick(r, SPOOFS)}${chance(r, 0.3) ? "," + pick(r, SPOOFS) : ""}`,
    );
  }
  if (chance(r, 0.1)) h.push(`x-gateway-destination-endpoint-served: ${pick(r, SPOOFS)}`);
  if (chance(r, 0.1)) h.push(`x-gateway-model-name: ${pick(r, ["spoof", "UTF-8''%00"])}`);
  if (chance(r, 0.15)) h.push(`authorization: Bearer ${chance(r, 0.5) ? token : "wrong"}`);
  if (chance(r, 0.05)) h.push(`authorization: Bearer ${token}`, `authorization: Bearer ${token}`);
  if (chance(r, 0.15)) {
    // obs-text: UTF-8 bytes and raw 0x80–0xFF bytes, legal on the wire.
    h.push(`x-obs: ${Buffer.from(pick(r, ["模", "🚀", "é", "שלום"]), "utf8").toString("latin1")}`);
    h.push(`x-raw: \xff\x80\xfe`);
  }
  if (chance(r, 0.05)) h.push(`x-!#$%&'*+.^_\`|~: odd but valid name`);
  if (chance(r, 0.05)) h.push(`x-big: ${"v".repeat(4000 + int(r, 8000))}`);
  if (chance(r, 0.03)) for (let i = 0; i < 100; i++) h.push(`x-many-${i}: ${i}`);
  if (chance(r, 0.05)) h.push("expect: 100-continue");
  if (chance(r, 0.1)) h.push(`x-request-id: ${pick(r, ["fixed", "\t id \t", "é"])}`);
  if (chance(r, 0.1))
    h.push(
      `x-fuzz-reply: ${pick(r, ["obs", "chunked", "close", "die-mid-body", "die-before-reply", "204"])}`,
    );
  if (chance(r, 0.05)) h.push(`x-gateway-inference-objective: ${pick(r, ["", "模", "\t"])}`);
  return h;
}

/** A header line Node's parser refuses (→ 400 or 431 and a close). */
function badHeader(r: Rand): Buffer {
  return pick(r, [
    Buffer.from("x-nul: a\0b\r\n", "latin1"),
    Buffer.from("x-cr: a\rb\r\n", "latin1"),
    Buffer.from("x-lf: a\nb\r\n", "latin1"),
    Buffer.from("x-del: a\x7fb\r\n", "latin1"),
    Buffer.from("x-ctl: a\x01b\r\n", "latin1"),
    Buffer.from("bad name: v\r\n", "latin1"),
    Buffer.from("x-模: v\r\n", "utf8"),
    Buffer.from(" folded: v\r\n", "latin1"),
    Buffer.from("nocolon\r\n", "latin1"),
    Buffer.from(`x-huge: ${"h".repeat(20_000)}\r\n`, "latin1"),
    Buffer.from("content-length: 5\r\ncontent-length: 6\r\n", "latin1"),
    Buffer.from("content-length: -1\r\n", "latin1"),
    Buffer.from("transfer-encoding: chunked\r\ncontent-length: 3\r\n", "latin1"),
    Buffer.from("transfer-encoding: gzip\r\n", "latin1"),
  ]);
}

function chunked(b: Buffer, r: Rand, bad: boolean): Buffer {
  const parts: Buffer[] = [];
  let i = 0;
  while (i < b.length) {
    const n = Math.min(b.length - i, 1 + int(r, 400));
    parts.push(
      Buffer.from(`${n.toString(16)}${chance(r, 0.1) ? ";ext=1" : ""}\r\n`),
      b.subarray(i, i + n),
      Buffer.from("\r\n"),
    );
    i += n;
  }
  if (bad) {
    parts.push(
      Buffer.from(
        pick(r, ["zz\r\n", "-1\r\n", "fffffffffffffffffff\r\n", "5\r\nab\r\n0\r\n\r\n", "3\r\nabcdef"]),
      ),
    );
  } else {
    parts.push(Buffer.from(chance(r, 0.2) ? "0\r\nx-trailer: t\r\n\r\n" : "0\r\n\r\n"));
  }
  return Buffer.concat(parts);
}

function makeCase(r: Rand, token: string): Case {
  const method = pick(r, METHODS);
  const path = pick(r, PATHS);
  const controlPathWithToken = path.startsWith("/epp/v1/snapshot") && method === "POST";
  const headers = goodHeaders(r, token);
  if (controlPathWithToken && chance(r, 0.8)) headers.push(`authorization: Bearer ${token}`);
  const hasBody = method !== "GET" && method !== "HEAD" && method !== "TRACE" && chance(r, 0.9);
  const b = hasBody ? body(r) : Buffer.alloc(0);
  const kind = int(r, 100);
  const http10 = kind === 0;
  const closes = http10 || kind === 1;
  if (kind === 1) headers.push("connection: close");
  const version = http10 ? "HTTP/1.0" : "HTTP/1.1";
  const start = Buffer.from(
    `${method} ${path} ${version}\r\n${http10 && chance(r, 0.5) ? "" : "host: gw.local\r\n"}`,
    "latin1",
  );
  const fields = Buffer.from(headers.map((h) => `${h}\r\n`).join(""), "latin1");
  // Framing: 2..11 are broken on purpose (terminal), the rest well-formed.
  if (kind >= 2 && kind <= 11) {
    const sub = kind - 2;
    let bytes: Buffer;
    if (sub <= 2)
      bytes = Buffer.concat([
        start,
        fields,
        badHeader(r),
        Buffer.from(`content-length: ${b.length}\r\n\r\n`),
        b,
      ]);
    else if (sub === 3)
      bytes = Buffer.concat([
        start,
        fields,
        Buffer.from("transfer-encoding: chunked\r\n\r\n"),
        chunked(b, r, true),
      ]);
    else if (sub === 4)
      bytes = Buffer.concat([start, fields, Buffer.from(`content-length: ${b.length + 10}\r\n\r\n`), b]); // then close
    else if (sub === 5)
      bytes = Buffer.concat([
        start,
        fields,
        Buffer.from(`content-length: ${Math.max(0, b.length - 3)}\r\n\r\n`),
        b,
        Buffer.from("\r\n"),
      ]);
    else if (sub === 6)
      bytes = Buffer.concat([start, fields]).subarray(0, 1 + int(r, start.length + fields.length)); // early close mid-head
    else if (sub === 7)
      bytes = Buffer.from(
        pick(r, [
          "FOO / HTTP/1.1\r\n\r\n",
          "GET / HTTP/9.9\r\n\r\n",
          "GET  / HTTP/1.1\r\n\r\n",
          "\x16\x03\x01\x00\xa5\x01",
          "CONNECT 127.0.0.1:1 HTTP/1.1\r\nhost: x\r\n\r\n",
          "GET /\x7f HTTP/1.1\r\n\r\n",
        ]),
        "latin1",
      );
    else if (sub === 8)
      bytes = Buffer.concat([
        start,
        fields,
        Buffer.from("transfer-encoding: chunked\r\n\r\n"),
        chunked(b, r, false).subarray(0, int(r, b.length + 1)),
      ]);
    else
      bytes = Buffer.concat([
        Buffer.from(`${method} /\xff\xfe${path} HTTP/1.1\r\n`, "latin1"),
        fields,
        Buffer.from("\r\n"),
      ]);
    return {
      bytes: [bytes],
      // The method actually on the wire (a raw request line may not be the drawn one): HEAD answers have no body.
      method: bytes.toString("latin1").split(" ")[0]!,
      terminal: true,
      closes: true,
      controlPathWithToken,
      slow: false,
      resets: false,
      mayClose: true,
    };
  }
  const useChunked = hasBody && chance(r, 0.3);
  const framing = useChunked
    ? Buffer.from("transfer-encoding: chunked\r\n\r\n")
    : Buffer.from(hasBody || chance(r, 0.2) ? `content-length: ${b.length}\r\n\r\n` : "\r\n");
  const whole = Buffer.concat([start, fields, framing, useChunked ? chunked(b, r, false) : b]);
  // Slowloris-lite (bounded): a few cases arrive in small pieces with short pauses.
  const slow = chance(r, 0.002);
  const bytes: Buffer[] = [];
  if (slow || chance(r, 0.1)) {
    const pieces = slow ? 12 : 2 + int(r, 4);
    const step = Math.ceil(whole.length / pieces);
    for (let i = 0; i < whole.length; i += step) bytes.push(whole.subarray(i, i + step));
  } else bytes.push(whole);
  const resets = headers.includes("x-fuzz-reply: die-mid-body");
  const mayClose = headers.includes("expect: 100-continue");
  // Near Node's 16 KiB head limit (--max-http-header-size) the answer may be 431 and a close: such a case ends its
  // batch like a framing error.
  const huge = start.length + fields.length > 15_000;
  return {
    bytes,
    method,
    terminal: huge,
    closes: closes || huge,
    controlPathWithToken,
    slow,
    resets,
    mayClose,
  };
}

interface Tally {
  requests: number;
  responses: number;
  statuses: Map<number, number>;
  errors: string[];
  controlPath204: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** One connection: a batch of cases (pipelined when more than one), read back with the strict parser. */
/** Runs one connection's cases; resolves with how many of them were written (an early close stops it). */
function runConnection(port: number, cases: Case[], t: Tally): Promise<() => number> {
  let sent = 0;
  return new Promise((resolve) => {
    const socket = net.connect(port, "127.0.0.1");
    socket.setNoDelay(true);
    const last = cases.at(-1)!;
    const required = cases.filter((c) => !c.terminal).length;
    const methods = cases.map((c) => c.method);
    let answered = 0;
    let finished = false;
    let received = Buffer.alloc(0);
    const debug = () =>
      process.env.EPP_FUZZ_DEBUG
        ? `\n--- sent:\n${cases.map((c) => Buffer.concat(c.bytes).toString("latin1").slice(0, 600)).join("\n---\n")}\n--- received:\n${received.toString("latin1").slice(0, 3000)}`
        : "";
    const fail = (msg: string) => {
      if (t.errors.length < 20) t.errors.push(msg);
    };
    const done = () => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(() => sent);
    };
    const parser = new WireParser(
      "response",
      (m: WireMessage) => {
        if (m.status! < 200) return; // 100 Continue
        // A terminal case may get two answers: a content-length shorter than the body leaves bytes that Node
        // then answers as a malformed request (400).
        const c =
          cases[Math.min(answered, last.terminal && answered === cases.length ? cases.length - 1 : answered)];
        answered++;
        if (answered > cases.length + (last.terminal ? 1 : 0))
          return fail(`a response nobody asked for: ${m.startLine}`);
        t.responses++;
        t.statuses.set(m.status!, (t.statuses.get(m.status!) ?? 0) + 1);
        // A 204 a model server sent (x-fuzz-reply: 204) is passed through; a stored snapshot is a 204 of the filter's.
        const fromFilter =
          header(m, "x-upstream").length === 0 || header(m, "x-epp-snapshot-generation").length > 0;
        if (c?.controlPathWithToken && m.status === 204 && fromFilter) {
          t.controlPath204++;
          fail(`the data listener answered 204 on the control path: ${m.rawHead}`);
        }
        for (const served of header(m, `${DEST}-served`)) {
          if (SPOOFS.some((s) => served.includes(s))) fail(`served header names a spoofed host: ${served}`);
        }
        if (answered === cases.length && !last.terminal && !last.closes) done();
      },
      () => methods[answered],
    );
    const timer = setTimeout(() => {
      fail(`no answer within 20 s (${answered}/${cases.length} answered; last terminal=${last.terminal})`);
      done();
    }, 20_000);
    socket.on("data", (chunk: Buffer) => {
      if (process.env.EPP_FUZZ_DEBUG) received = Buffer.concat([received, chunk]);
      try {
        parser.push(chunk);
      } catch (err) {
        fail(`malformed response: ${err instanceof WireError ? err.message : String(err)}${debug()}`);
        done();
      }
    });
    socket.on("error", () => {});
    socket.on("close", () => {
      // Truncated bodies are acceptable only as a reset (an upstream that died mid-response); the head checks
      // already ran. Fewer answers than well-formed requests is a failure unless a reply asked to close.
      parser.end();
      // A terminal case pipelined behind others may end the connection early: Node answers a parse error with
      // 400 (or nothing) and closes at once, dropping responses still in flight.
      // The case whose model server dies mid-body may or may not have had its response head counted.
      const excused =
        last.terminal ||
        cases[answered]?.resets ||
        cases[answered - 1]?.resets ||
        cases[answered - 1]?.mayClose;
      if (!finished && answered < required && !excused) {
        fail(`connection closed after ${answered}/${required} answers${debug()}`);
      }
      done();
    });
    void (async () => {
      for (const c of cases) {
        t.requests++;
        sent++;
        for (const piece of c.bytes) {
          if (socket.destroyed) return;
          socket.write(piece);
          if (c.slow) await sleep(2);
        }
        if (c.closes || c.terminal) break;
      }
      // After a terminal case: half-close, so an early close or a short body is seen as one.
      if (last.terminal && !socket.destroyed) socket.end();
    })();
  });
}

test(
  `the gateway process survives ${CASES} adversarial requests over real sockets`,
  { timeout: 600_000 },
  async () => {
    const violations: string[] = [];
    const upstreamCheck = (pool: Set<string>) => (r: UpstreamRequestView) => {
      const dest = r.headers.filter(([k]) => k === DEST).map(([, v]) => v);
      if (dest.length !== 1)
        return `${dest.length} destination headers on ${r.method} ${r.target.slice(0, 60)}`;
      const entries = dest[0]!.split(",");
      if (!entries.every((e) => pool.has(e))) return `destination not from the pool: ${dest[0]}`;
      if (!entries.includes(r.upstream))
        return `reached ${r.upstream}, not on its destination list ${dest[0]}`;
      if (r.headers.filter(([k]) => k === "host").length > 1) return "two Host headers";
      return undefined;
    };
    const pool = new Set<string>();
    const ups: RecordingUpstream[] = [];
    let gw: GatewayProcess | undefined;
    let pusher: NodeJS.Timeout | undefined;
    try {
      for (let i = 0; i < 3; i++) ups.push(await startRecordingUpstream(`pod-${i}`, upstreamCheck(pool)));
      for (const u of ups) pool.add(u.address);
      const addresses = ups.map((u) => u.address);
      gw = await startGatewayProcess({ endpoints: addresses });
      const g = gw;
      let generation = 1n;
      const push = async () => {
        const res = await g.push(snapshotFor(generation++, addresses, ["m"]));
        if (res.status !== 204) violations.push(`snapshot push: ${res.status} ${res.body}`);
      };
      await push();
      pusher = setInterval(
        () => void push().catch((e: Error) => violations.push(`push: ${e.message}`)),
        1000,
      );

      const r = mulberry32(SEED);
      const tally: Tally = { requests: 0, responses: 0, statuses: new Map(), errors: [], controlPath204: 0 };
      let made = 0;
      const nextBatch = (): Case[] | undefined => {
        if (made >= CASES) return undefined;
        const n = Math.min(CASES - made, chance(r, 0.5) ? 1 : 2 + int(r, 7));
        const batch: Case[] = [];
        for (let i = 0; i < n; i++) {
          const c = makeCase(r, g.token);
          batch.push(c);
          made++;
          if (c.terminal || c.closes) break;
        }
        return batch;
      };
      const started = performance.now();
      await Promise.all(
        Array.from({ length: CONCURRENCY }, async () => {
          for (let b = nextBatch(); b; b = nextBatch()) {
            const sent = await runConnection(g.dataPort, b, tally);
            // Cases an early close kept from being written are made again, so CASES requests go out.
            made -= b.length - sent();
          }
        }),
      );
      const seconds = (performance.now() - started) / 1000;
      clearInterval(pusher);
      const upstreamRequests = ups.reduce((n, u) => n + u.count(), 0);
      const statuses = [...tally.statuses]
        .sort(([a], [b]) => a - b)
        .map(([s, n]) => `${s}:${n}`)
        .join(" ");
      const warnLines = g.logs.filter((l) => l.level === 40).length;
      console.log(
        `fuzz-sockets: ${tally.requests} requests (seed ${SEED}) in ${seconds.toFixed(1)} s, ` +
          `${tally.responses} responses [${statuses}], ${upstreamRequests} reached the model servers, ` +
          `${warnLines} warning lines logged`,
      );

      assert.ok(g.alive(), "the gateway process stayed up");
      assert.deepEqual(tally.errors, [], "every response well-formed, every well-formed request answered");
      assert.equal(tally.controlPath204, 0);
      assert.deepEqual([...violations, ...ups.flatMap((u) => u.violations)], [], "upstream requests valid");
      assert.ok(tally.requests >= CASES, `sent ${tally.requests} of ${CASES}`);
      // The corpus reaches routing and the refusals, or the generator has degenerated.
      assert.ok(upstreamRequests > CASES * 0.1, `only ${upstreamRequests} requests routed`);
      assert.ok((tally.statuses.get(400) ?? 0) > 0, "some 400s");
      // Rate-limited logging: a bounded number of warning lines however many requests failed.
      assert.ok(warnLines < 2000, `${warnLines} warning lines`);
      // Still serving after the storm.
      const after = await fetch(`http://127.0.0.1:${g.dataPort}/v1/completions`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: '{"model":"m","prompt":"still there?"}',
      });
      assert.equal(after.status, 200, await after.text());
    } finally {
      clearInterval(pusher);
      await gw?.stop();
      for (const u of ups) await u.close();
    }
  },
);
