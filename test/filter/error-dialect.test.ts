// The filter's own replies speak the client's API (issue 24): Anthropic's error envelope for
// `POST /v1/messages` (type by status: 400 invalid_request_error, 404 not_found_error, 413
// request_too_large, 429 rate_limit_error, 503 overloaded_error), OpenAI's everywhere else — whether the
// reply comes from the path alone (no snapshot, content-type), the body (model, size), the scheduler
// (shed) or the flow-control queue (TTL). Also the GIE conformance served-endpoint header.
import { test } from "node:test";
import assert from "node:assert/strict";
import type { HeaderList } from "../../host/index.ts";
import { DEST, harness, OBJECTIVES, pool } from "../support/flow-harness.ts";
import type { Harness, Held } from "../support/flow-harness.ts";
import type { SnapshotFixture } from "../support/snapshot-fixture.ts";

const enc = new TextEncoder();
const MESSAGES = "/v1/messages";
const CHAT = "/v1/chat/completions";

const STRICT: SnapshotFixture = {
  pool: { strictModels: true },
  endpoints: [{ address: "10.0.0.1" }],
  models: [{ name: "claude-ish", criticality: "Standard", targets: [] }],
  objectives: OBJECTIVES,
};

function request(t: Harness, path: string, body: string | null, extra: HeaderList = [], name = path): Held {
  const h = t.open(name, 0);
  const headers: HeaderList = [
    [":method", "POST"],
    [":path", path],
    [":authority", "gw"],
    [":scheme", "http"],
    ...(extra.some(([k]) => k === "content-type")
      ? []
      : [["content-type", "application/json"] as [string, string]]),
    ...extra,
  ];
  if (body === null) {
    h.stream.decodeHeaders(headers, true);
    return h;
  }
  headers.push(["content-length", String(enc.encode(body).length)]);
  h.stream.decodeHeaders(headers, false);
  h.stream.decodeData(enc.encode(body), true);
  return h;
}

function json(h: Held): Record<string, unknown> {
  assert.ok(h.reply, `${h.name}: no local reply`);
  assert.equal(h.reply.headers.find(([k]) => k === "content-type")?.[1], "application/json");
  return JSON.parse(new TextDecoder().decode(h.reply.body)) as Record<string, unknown>;
}

/** Asserts Anthropic's envelope, exactly its two levels and keys. */
function anthropic(h: Held, status: number, type: string): string {
  assert.equal(h.reply?.status, status, h.name);
  const body = json(h);
  assert.deepEqual(Object.keys(body), ["type", "error"], h.name);
  assert.equal(body.type, "error");
  const error = body.error as Record<string, unknown>;
  assert.deepEqual(Object.keys(error), ["type", "message"], h.name);
  assert.equal(error.type, type, h.name);
  assert.equal(typeof error.message, "string");
  return error.message as string;
}

function openai(h: Held, status: number, type: string, code: string | null): void {
  assert.equal(h.reply?.status, status, h.name);
  const error = json(h).error as Record<string, unknown>;
  assert.deepEqual(Object.keys(error), ["message", "type", "param", "code"], h.name);
  assert.equal(error.type, type);
  assert.equal(error.code, code);
}

function retryAfter(h: Held): string | undefined {
  return h.reply?.headers.find(([k]) => k === "retry-after")?.[1];
}

const ask = (model: string) =>
  JSON.stringify({ model, max_tokens: 8, messages: [{ role: "user", content: "hi" }] });

test("/v1/messages: 400, 404 and 413 from the body are Anthropic-shaped; the same on /v1/chat/completions stay OpenAI-shaped", async () => {
  const t = await harness(1, { maxBodyBytes: 4096 });
  t.push(STRICT);
  const missing = request(t, MESSAGES, JSON.stringify({ messages: [] }));
  assert.equal(anthropic(missing, 400, "invalid_request_error"), '"model" is required');
  const unknown = request(t, MESSAGES, ask("nope"));
  assert.match(anthropic(unknown, 404, "not_found_error"), /The model `nope` does not exist/);
  const big = request(
    t,
    `${MESSAGES}?beta=true`,
    JSON.stringify({ pad: "x".repeat(8000), model: "claude-ish" }),
  );
  anthropic(big, 413, "request_too_large");
  const ok = request(t, MESSAGES, ask("claude-ish"));
  assert.equal(ok.reply, undefined);
  assert.equal(ok.forwarded?.find(([k]) => k === DEST)?.[1], "10.0.0.1:8000");

  openai(request(t, CHAT, JSON.stringify({ messages: [] })), 400, "invalid_request_error", null);
  openai(request(t, CHAT, ask("nope")), 404, "invalid_request_error", "model_not_found");
  openai(
    request(t, CHAT, JSON.stringify({ pad: "x".repeat(8000), model: "claude-ish" })),
    413,
    "invalid_request_error",
    "request_too_large",
  );
  // The param of a scan error survives the move to structured errors.
  assert.equal(
    (json(request(t, CHAT, JSON.stringify({ model: 3 }))).error as { param: string }).param,
    "model",
  );
});

test("/v1/messages: replies decided from the path alone (no snapshot, content-type) are Anthropic-shaped too", async () => {
  const t = await harness();
  const early = request(t, MESSAGES, ask("claude-ish"));
  anthropic(early, 503, "overloaded_error");
  openai(request(t, CHAT, ask("claude-ish")), 503, "service_unavailable", "no_snapshot");
  // The API's paths under /v1/messages are routed without reading the body; the path still tells.
  anthropic(request(t, "/v1/messages/count_tokens", ask("claude-ish"), [], "count"), 503, "overloaded_error");
  t.push(STRICT);
  const text = request(t, MESSAGES, "hello", [["content-type", "text/plain"]]);
  anthropic(text, 400, "invalid_request_error");
});

test("/v1/messages: a shed request is 429 rate_limit_error; a held one past its TTL is 503 overloaded_error with Retry-After", async () => {
  const t = await harness();
  t.push(pool([9, 9], { flowControl: undefined }));
  const shed = t.send("shed", { objective: "sheddable", path: MESSAGES });
  anthropic(shed, 429, "rate_limit_error");
  t.push(pool([9, 9], { flowControl: { defaultTtlMs: 50 } }));
  const held = t.send("held", { path: MESSAGES });
  const low = t.send("low", { objective: "sheddable", path: MESSAGES });
  const chat = t.send("chat");
  assert.equal(held.reply, undefined);
  t.tick(60);
  assert.match(anthropic(held, 503, "overloaded_error"), /TTL/);
  assert.equal(retryAfter(held), "1");
  anthropic(low, 429, "rate_limit_error");
  openai(chat, 503, "service_unavailable", "queue_timeout");
});

test("conformance: true also reports the served endpoint as x-conformance-test-served-endpoint; off, it does not", async () => {
  for (const conformance of [true, false]) {
    const t = await harness(1, { conformance });
    t.push({ endpoints: [{ address: "10.0.0.1" }, { address: "10.0.0.2" }] });
    const h = request(t, CHAT, ask("m"), [["test-epp-endpoint-selection", "10.0.0.2"]]);
    h.stream.encodeHeaders([[":status", "200"]], true);
    const served = h.response?.find(([k]) => k === "x-gateway-destination-endpoint-served")?.[1];
    const reported = h.response?.find(([k]) => k === "x-conformance-test-served-endpoint")?.[1];
    assert.equal(served, conformance ? "10.0.0.2:8000" : served);
    assert.equal(reported, conformance ? "10.0.0.2:8000" : undefined);
    h.stream.destroy();
  }
});
