// Routing on a body's head with the real build/filter.wasm in the host: the decision comes as soon as
// `model` and enough prompt have arrived, the rest streams through untouched (and unbuffered), a late
// `model` is waited for, a rewrite changes only the head, and a second `model` in the tail is a 400.
import { test } from "node:test";
import assert from "node:assert/strict";
import { loadFilterPlugin } from "../support/filter-plugin.ts";
import type { HeaderList, LocalReply, WasmPlugin } from "../../host/index.ts";
import { snapshotBytesWith } from "../support/snapshot-fixture.ts";

const TOKEN = "s3cret-token";
const DEST = "x-gateway-destination-endpoint";
const enc = new TextEncoder();

async function load(config: Record<string, unknown> = {}): Promise<WasmPlugin> {
  const { plugin } = await loadFilterPlugin({
    controlToken: TOKEN,
    staleAfterMs: 0,
    randomSeed: 1,
    ...config,
  });
  const push = run(plugin, "/epp/v1/snapshot", [
    snapshotBytesWith({
      endpoints: [{ address: "10.0.0.1" }, { address: "10.0.0.2" }],
      rewrites: [{ matches: ["alias"], targets: [{ model: "served-model-v2", weight: 1 }] }],
    }),
  ]);
  assert.equal(push.reply?.status, 204);
  return plugin;
}

interface Run {
  reply?: LocalReply;
  forwarded?: HeaderList;
  /** Request body bytes that had arrived when the headers went upstream. */
  arrivedAtDecision?: number;
  upstreamBody: Uint8Array[];
}

/** Sends `chunks` as one request body; the host forwards what the filter lets through. */
function run(plugin: WasmPlugin, path: string, chunks: Uint8Array[], extra: HeaderList = []): Run {
  const out: Run = { upstreamBody: [] };
  let arrived = 0;
  const s = plugin.newHttpStream({
    forwardRequestHeaders: (h: HeaderList) => {
      out.forwarded = h;
      out.arrivedAtDecision = arrived;
    },
    forwardRequestData: (d: Uint8Array) => void out.upstreamBody.push(d.slice()),
    forwardResponseHeaders: () => {},
    forwardResponseData: () => {},
    localReply: (r: LocalReply) => (out.reply = r),
  });
  const total = chunks.reduce((n, c) => n + c.length, 0);
  s.decodeHeaders(
    [
      [":method", "POST"],
      [":path", path],
      [":authority", "gw"],
      [":scheme", "http"],
      ["authorization", `Bearer ${TOKEN}`],
      ["content-length", String(total)],
      ...extra,
    ],
    false,
  );
  chunks.forEach((c, i) => {
    if (out.reply) return;
    arrived += c.length;
    s.decodeData(c, i === chunks.length - 1);
  });
  if (out.forwarded && !out.reply) s.encodeHeaders([[":status", "200"]], true);
  s.destroy();
  return out;
}

function chunked(bytes: Uint8Array, size: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let i = 0; i < bytes.length; i += size) out.push(bytes.subarray(i, i + size));
  return out;
}

function concat(parts: Uint8Array[]): Uint8Array {
  return Buffer.concat(parts.map((p) => Buffer.from(p)));
}

function header(h: HeaderList | undefined, name: string): string | undefined {
  return h?.find(([k]) => k === name)?.[1];
}

const big = (n: number) =>
  "the quick brown fox jumps over the lazy dog ".repeat(Math.ceil(n / 44)).slice(0, n);

test("a 4 MiB prompt with model first is routed on its first 64 KiB and streams through unchanged", async () => {
  const plugin = await load({ maxBodyBytes: 1 << 20 });
  const body = enc.encode(
    JSON.stringify({ model: "m", messages: [{ role: "user", content: big(4 << 20) }] }),
  );
  const out = run(plugin, "/v1/chat/completions", chunked(body, 16 * 1024));
  assert.equal(
    out.reply,
    undefined,
    "no local reply: the body is larger than maxBodyBytes but never buffered",
  );
  assert.match(header(out.forwarded, DEST) ?? "", /^10\.0\.0\.[12]:8000$/);
  assert.ok(out.arrivedAtDecision! <= 64 * 1024, `decided after ${out.arrivedAtDecision} bytes`);
  assert.deepEqual(concat(out.upstreamBody), Buffer.from(body));
});

test("model after a long prompt (the Python client's order) is waited for, then routed", async () => {
  const plugin = await load();
  const body = enc.encode(
    JSON.stringify({ messages: [{ role: "user", content: big(300_000) }], model: "m" }),
  );
  const out = run(plugin, "/v1/chat/completions", chunked(body, 16 * 1024));
  assert.ok(out.forwarded, JSON.stringify(out.reply));
  assert.ok(out.arrivedAtDecision! >= body.length - 16 * 1024, "nothing is decided before model arrives");
  assert.deepEqual(concat(out.upstreamBody), Buffer.from(body));
});

test("past maxBodyBytes without a model, the request gets 413", async () => {
  const plugin = await load({ maxBodyBytes: 256 * 1024 });
  const body = enc.encode(
    JSON.stringify({ messages: [{ role: "user", content: big(600_000) }], model: "m" }),
  );
  const out = run(plugin, "/v1/chat/completions", chunked(body, 16 * 1024));
  assert.equal(out.reply?.status, 413);
  assert.equal(out.forwarded, undefined);
});

test("a rewrite on a streamed body changes only the head and fixes content-length", async () => {
  const plugin = await load();
  const original = { model: "alias", messages: [{ role: "user", content: big(200_000) }] };
  const body = enc.encode(JSON.stringify(original));
  const out = run(plugin, "/v1/chat/completions", chunked(body, 8 * 1024));
  assert.ok(out.forwarded);
  const sent = concat(out.upstreamBody);
  assert.deepEqual(JSON.parse(sent.toString()), { ...original, model: "served-model-v2" });
  assert.equal(header(out.forwarded, "content-length"), String(sent.length));
});

test("a second top-level model in the streamed tail ends the request with 400", async () => {
  const plugin = await load();
  for (const second of ['"model":"other"', '"\\u006d\\u006fdel":"other"']) {
    const body = enc.encode(
      JSON.stringify({ model: "m", messages: [{ role: "user", content: big(100_000) }] }).slice(0, -1) +
        "," +
        second +
        "}",
    );
    const out = run(plugin, "/v1/chat/completions", chunked(body, 4096));
    assert.ok(out.forwarded, "routed on the head");
    assert.equal(out.reply?.status, 400, second);
    assert.match(new TextDecoder().decode(out.reply!.body), /must appear once/);
  }
  // A nested model (a tool's parameter, say) is not the request's model.
  const nested = enc.encode(
    JSON.stringify({ model: "m", messages: [{ role: "user", content: big(100_000) }], meta: { model: "x" } }),
  );
  assert.equal(run(plugin, "/v1/chat/completions", chunked(nested, 4096)).reply, undefined);
});

test("a whole 1 MiB body in one chunk is routed from its head, the same as when it streams", async () => {
  const plugin = await load();
  const body = enc.encode(
    JSON.stringify({ model: "m", messages: [{ role: "user", content: big(1 << 20) }] }),
  );
  const whole = run(plugin, "/v1/chat/completions", [body]);
  const streamed = run(plugin, "/v1/chat/completions", chunked(body, 16 * 1024));
  assert.ok(whole.forwarded && streamed.forwarded);
  assert.deepEqual(concat(whole.upstreamBody), Buffer.from(body));
});

// Anthropic Messages (/v1/messages): `system` is rendered first, so a head is decided only once it is whole.
test("/v1/messages: system first is routed on the head; system after a long conversation is waited for", async () => {
  const plugin = await load();
  const conversation = [{ role: "user", content: [{ type: "text", text: big(150_000) }] }];
  const early = enc.encode(JSON.stringify({ model: "m", system: "be brief", messages: conversation }));
  const first = run(plugin, "/v1/messages", chunked(early, 16 * 1024));
  assert.match(header(first.forwarded, DEST) ?? "", /^10\.0\.0\.[12]:8000$/);
  assert.ok(first.arrivedAtDecision! <= 64 * 1024, `decided after ${first.arrivedAtDecision} bytes`);
  const late = enc.encode(JSON.stringify({ model: "m", messages: conversation, system: "be brief" }));
  const second = run(plugin, "/v1/messages", chunked(late, 16 * 1024));
  assert.ok(second.forwarded, JSON.stringify(second.reply));
  assert.ok(second.arrivedAtDecision! >= late.length - 16 * 1024, "nothing is decided before system arrives");
  assert.deepEqual(concat(second.upstreamBody), Buffer.from(late));
});

test("/v1/messages: the model is rewritten in the head and the prompt routes by prefix", async () => {
  const plugin = await load();
  const system = [{ type: "text", text: big(4000) }];
  const ask = (i: number) => ({
    model: "alias",
    max_tokens: 16,
    system,
    messages: [{ role: "user", content: `question ${i}` }],
  });
  const out = run(plugin, "/v1/messages", [enc.encode(JSON.stringify(ask(0)))]);
  const sent = concat(out.upstreamBody);
  assert.deepEqual(JSON.parse(sent.toString()), { ...ask(0), model: "served-model-v2" });
  assert.equal(header(out.forwarded, "content-length"), String(sent.length));
  const home = header(out.forwarded, DEST);
  for (let i = 1; i < 8; i++)
    assert.equal(
      header(run(plugin, "/v1/messages", [enc.encode(JSON.stringify(ask(i)))]).forwarded, DEST),
      home,
    );
  // The same conversation as a chat completion renders the same prompt, so it shares the cache.
  const chat = {
    model: "alias",
    messages: [
      { role: "system", content: system },
      { role: "user", content: "question 9" },
    ],
  };
  assert.equal(
    header(run(plugin, "/v1/chat/completions", [enc.encode(JSON.stringify(chat))]).forwarded, DEST),
    home,
  );
});
