// The PLUGINS section in the real build/filter.wasm: the filter builds its scheduler from it, and refuses a
// config it cannot build (a newer sidecar's plugin type, a bad parameter) with a 400 that names the problem,
// while the previous config keeps routing.
import { test } from "node:test";
import assert from "node:assert/strict";
import { loadFilterPlugin } from "../support/filter-plugin.ts";
import type { HeaderList, LocalReply, WasmPlugin } from "../../host/index.ts";
import { snapshotBytesWith } from "../support/snapshot-fixture.ts";
import type { SchedulingSection } from "../../sidecar/snapshot/types.ts";

const TOKEN = "s3cret-token";
const SESSION = "x-session-token";

/** Session affinity on top of the queue scorer: the response names the pick in a token. */
function sessions(extraType?: string): SchedulingSection {
  const plugins = [
    { type: "queue-scorer", name: "queue-scorer", params: {} },
    { type: "session-affinity-scorer", name: "sessions", params: {} },
    { type: "max-score-picker", name: "max-score-picker", params: {} },
  ];
  if (extraType) plugins.push({ type: extraType, name: "newer", params: {} });
  return {
    plugins,
    profiles: [
      {
        name: "default",
        entries: [
          { plugin: 0, weight: 1 },
          { plugin: 1, weight: 10 },
          { plugin: 2, weight: 1 },
          ...(extraType ? [{ plugin: 3, weight: 1 }] : []),
        ],
      },
    ],
    handler: null,
    saturation: null,
  };
}

interface Outcome {
  reply?: LocalReply;
  response?: HeaderList;
}

function send(plugin: WasmPlugin, path: string, body: Uint8Array, extra: HeaderList = []): Outcome {
  const out: Outcome = {};
  let forwarded = false;
  const s = plugin.newHttpStream({
    forwardRequestHeaders: () => (forwarded = true),
    forwardRequestData: () => {},
    forwardResponseHeaders: (h: HeaderList) => (out.response = h),
    forwardResponseData: () => {},
    localReply: (r: LocalReply) => (out.reply = r),
  });
  s.decodeHeaders(
    [
      [":method", "POST"],
      [":path", path],
      [":authority", "gw"],
      ["authorization", `Bearer ${TOKEN}`],
      ...extra,
    ],
    false,
  );
  s.decodeData(body, true);
  if (forwarded && !out.reply) s.encodeHeaders([[":status", "200"]], true);
  s.destroy();
  return out;
}

function push(plugin: WasmPlugin, generation: number, scheduling?: SchedulingSection): LocalReply {
  const bytes = snapshotBytesWith({
    generation,
    endpoints: [{ address: "10.0.0.1" }, { address: "10.0.0.2" }],
    ...(scheduling ? { scheduling } : {}),
  });
  return send(plugin, "/epp/v1/snapshot", bytes).reply!;
}

function sessionToken(plugin: WasmPlugin): string | undefined {
  const body = new TextEncoder().encode(JSON.stringify({ model: "m", prompt: "hi" }));
  const out = send(plugin, "/v1/completions", body);
  assert.equal(out.reply, undefined, JSON.stringify(out.reply));
  return out.response?.find(([k]) => k === SESSION)?.[1];
}

test("a PLUGINS section configures the scheduler; one naming an unknown type is a 400 and the previous config stays", async () => {
  const { plugin } = await loadFilterPlugin({ controlToken: TOKEN, staleAfterMs: 0, randomSeed: 1 });
  assert.equal(push(plugin, 1).status, 204);
  assert.equal(sessionToken(plugin), undefined, "the built-in default config has no session affinity");

  assert.equal(push(plugin, 2, sessions()).status, 204);
  const token = sessionToken(plugin);
  assert.ok(token, "session affinity from the pushed config hands out a token");
  assert.match(Buffer.from(token, "base64").toString(), /^10\.0\.0\.[12]:8000$/);

  const refused = push(plugin, 3, sessions("precise-prefix-cache-scorer-v9"));
  assert.equal(refused.status, 400);
  const body = new TextDecoder().decode(refused.body);
  assert.match(body, /precise-prefix-cache-scorer-v9/, body);
  assert.ok(sessionToken(plugin), "the previous config keeps routing");
});
