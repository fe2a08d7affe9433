// The status page's view of the filter's decisions: decision counters parsed from an Envoy admin's
// /stats/prometheus, their growth per read summed over Envoys (a restarted Envoy's reset counters never
// count negative), per-step series in the history (a gap when no Envoy answered), and /status.json saying
// whether it can see them.
import { test } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { Registry } from "prom-client";
import {
  EnvoyStatsReader,
  decisionCounts,
  requestKey,
  statsUrl,
  type DecisionGrowth,
} from "../../sidecar/status/envoy-stats.ts";
import { StatusHistory } from "../../sidecar/status/history.ts";
import { NO_ENVOY_ANSWERS, splitsOf, type statusView } from "../../sidecar/status/status-json.ts";
import { createSidecarServer, listen } from "../../sidecar/server.ts";
import type { PublishedSnapshot, SidecarState } from "../../sidecar/state.ts";
import { snapshotWith } from "../support/snapshot-fixture.ts";

const FR = 'model_name="food-review",target_model_name="food-review-v1"';

/** A page in the shape the gateway admin (and Envoy with the shipped stats_tags) serves. */
function page(routed: number, shed: number, picks: Record<string, number>): string {
  return [
    "# TYPE epp_wasm_requests_total counter",
    `epp_wasm_requests_total{${FR},objective="__none__",outcome="routed"} ${routed}`,
    `epp_wasm_requests_total{${FR},objective="premium",outcome="routed"} 1`,
    `epp_wasm_requests_total{${FR},objective="__none__",outcome="shed"} ${shed}`,
    "# TYPE epp_wasm_endpoint_picks_total counter",
    ...Object.entries(picks).map(([e, n]) => `epp_wasm_endpoint_picks_total{endpoint="${e}"} ${n}`),
    "# TYPE inference_extension_scheduler_e2e_duration_microseconds histogram",
    'inference_extension_scheduler_e2e_duration_microseconds_bucket{le="+Inf"} 9',
    "",
  ].join("\n");
}

/** A loopback URL nothing listens on. */
async function closedUrl(): Promise<string> {
  const s = http.createServer();
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
  const { port } = s.address() as AddressInfo;
  await new Promise((r) => s.close(r));
  return `http://127.0.0.1:${port}`;
}

async function fakeAdmin(body: () => string | null) {
  const server = http.createServer((req, res) => {
    const b = body();
    if (req.url !== "/stats/prometheus" || b === null) res.writeHead(503).end("down");
    else res.writeHead(200, { "content-type": "text/plain" }).end(b);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

test("decision counters from a Prometheus page: summed over objectives, picks per endpoint", () => {
  const c = decisionCounts(page(4, 2, { "10.0.0.1:8000": 3, "10.0.0.2:8000": 2 }));
  assert.equal(c.requests.get(requestKey("food-review", "food-review-v1", "routed")), 5);
  assert.equal(c.requests.get(requestKey("food-review", "food-review-v1", "shed")), 2);
  assert.deepEqual(
    [...c.picks],
    [
      ["10.0.0.1:8000", 3],
      ["10.0.0.2:8000", 2],
    ],
  );
  assert.equal(statsUrl("http://127.0.0.1:9901"), "http://127.0.0.1:9901/stats/prometheus");
  assert.equal(statsUrl("http://10.0.0.9:15020/stats/prometheus"), "http://10.0.0.9:15020/stats/prometheus");
  assert.throws(() => statsUrl("not a url"));
});

test("reads sum each Envoy's growth; a restarted Envoy does not count negative; a dead one is reported", async () => {
  const a = { text: page(10, 0, { "10.0.0.1:8000": 10 }) as string | null };
  const b = { text: page(1, 0, { "10.0.0.2:8000": 1 }) };
  const ea = await fakeAdmin(() => a.text);
  const eb = await fakeAdmin(() => b.text);
  const reader = new EnvoyStatsReader({ urls: [ea.url, eb.url, await closedUrl()], timeoutMs: 2000 });
  try {
    assert.equal(reader.configured(), true);
    const first = await reader.read(); // baselines
    assert.equal(first.answered, 2);
    assert.equal(first.envoys, 3);
    assert.equal(first.requests.size, 0);
    a.text = page(13, 2, { "10.0.0.1:8000": 15 });
    b.text = page(0, 0, { "10.0.0.2:8000": 0 }); // restarted: counters start again
    const second = await reader.read();
    assert.equal(second.requests.get(requestKey("food-review", "food-review-v1", "routed")), 3);
    assert.equal(second.requests.get(requestKey("food-review", "food-review-v1", "shed")), 2);
    assert.deepEqual([...second.picks], [["10.0.0.1:8000", 5]]);
    b.text = page(4, 0, { "10.0.0.2:8000": 4 });
    a.text = null; // answers 503
    const third = await reader.read();
    assert.equal(third.answered, 1);
    assert.equal(third.requests.get(requestKey("food-review", "food-review-v1", "routed")), 4);
    const st = reader.status();
    assert.equal(st.length, 3);
    assert.equal(st[0]!.ok, false);
    assert.equal(st[0]!.error, "HTTP 503");
    assert.ok(st[0]!.lastOkAtMs !== null, "it answered before");
    assert.equal(st[1]!.ok, true);
    assert.equal(st[2]!.ok, false);
    assert.match(st[2]!.error!, /ECONNREFUSED/);
    assert.equal(st[2]!.lastOkAtMs, null);
    reader.setUrls([eb.url]);
    assert.deepEqual(
      reader.status().map((s) => s.url),
      [`${eb.url}/stats/prometheus`],
    );
  } finally {
    await ea.close();
    await eb.close();
  }
});

class OnePool implements SidecarState {
  pool: PublishedSnapshot = {
    snapshot: snapshotWith({
      endpoints: [{ address: "10.0.0.1" }],
      createdAtMs: Date.now(),
      models: [
        {
          name: "food-review",
          criticality: "Critical",
          targets: [
            { name: "food-review-v1", weight: 90 },
            { name: "food-review-v2", weight: 10 },
          ],
        },
      ],
    }),
    bytes: new Uint8Array(10),
  };
  readiness() {
    return { ready: true, reasons: [] };
  }
  poolKeys() {
    return ["default/a"];
  }
  latest() {
    return this.pool;
  }
  pushStatus() {
    return [];
  }
  configStatus() {
    return [];
  }
}

test("decision growth becomes per-step series on the step that ended; a step no Envoy answered is a gap", async () => {
  const clock = { t: 1_000_000 };
  const answers: DecisionGrowth[] = [];
  const growth = (answered: number, routed: number, picks: number): DecisionGrowth => ({
    answered,
    envoys: 1,
    requests: new Map(routed > 0 ? [[requestKey("m", "m-v1", "routed"), routed]] : []),
    picks: new Map(picks > 0 ? [["10.0.0.1:8000", picks]] : []),
  });
  const history = new StatusHistory({
    state: new OnePool(),
    now: () => clock.t,
    decisions: async () => answers.shift()!,
  });
  const settle = () => new Promise((r) => setImmediate(r));
  answers.push(growth(1, 0, 0), growth(1, 7, 7), growth(0, 0, 0), growth(1, 0, 0));
  for (let i = 0; i < 4; i++) {
    history.sample();
    await settle();
    clock.t += 1000;
  }
  history.sample();
  const d = history.view().decisions!;
  assert.deepEqual(d.requests, [
    { model: "m", target: "m-v1", outcome: "routed", v: [7, null, 0, null, null] },
  ]);
  assert.deepEqual(d.picks, [{ endpoint: "10.0.0.1:8000", v: [7, null, 0, null, null] }]);
  assert.equal(new StatusHistory({ state: new OnePool() }).view().decisions, undefined);
});

test("/status.json: visible when an Envoy admin answers, says so plainly when none does; configured splits", async () => {
  const admin = await fakeAdmin(() => page(3, 1, { "10.0.0.1:8000": 3 }));
  const good = new EnvoyStatsReader({ urls: [admin.url] });
  const dead = new EnvoyStatsReader({ urls: [await closedUrl()] });
  const state = new OnePool();
  assert.deepEqual(splitsOf(state.pool.snapshot), [
    {
      model: "food-review",
      targets: [
        { name: "food-review-v1", weight: 90 },
        { name: "food-review-v2", weight: 10 },
      ],
    },
  ]);
  const servers = [
    createSidecarServer({ state, registry: new Registry(), envoyStats: good }),
    createSidecarServer({ state, registry: new Registry(), envoyStats: dead }),
  ];
  try {
    const [g, b] = await Promise.all(servers.map((s) => listen(s, 0, "127.0.0.1")));
    await good.read();
    await dead.read();
    const view = async (port: number) =>
      (await (await fetch(`http://127.0.0.1:${port}/status.json`)).json()) as ReturnType<typeof statusView>;
    const sg = await view(g!.port);
    assert.equal(sg.requests.visible, true);
    assert.equal(sg.requests.envoys[0]!.ok, true);
    assert.equal(sg.pools[0]!.splits[0]!.targets[1]!.weight, 10);
    const sb = await view(b!.port);
    assert.equal(sb.requests.visible, false);
    assert.equal(sb.requests.note, NO_ENVOY_ANSWERS);
    assert.match(sb.requests.envoys[0]!.error!, /ECONNREFUSED/);
  } finally {
    for (const s of servers) await new Promise((r) => s.close(r));
    await admin.close();
  }
});

/** Flow control's gauges and counters as the shipped stats_tags label them (priority, outcome). */
function flowPage(held: number, bytes: number, dispatched: number): string {
  return [
    "# TYPE inference_extension_flow_control_queue_size gauge",
    `inference_extension_flow_control_queue_size{priority="100"} 0`,
    `inference_extension_flow_control_queue_size{priority="-10"} ${held}`,
    "# TYPE inference_extension_flow_control_queue_bytes gauge",
    `inference_extension_flow_control_queue_bytes{priority="-10"} ${bytes}`,
    "# TYPE epp_wasm_flow_control_requests_total counter",
    `epp_wasm_flow_control_requests_total{priority="-10",outcome="dispatched"} ${dispatched}`,
    `epp_wasm_flow_control_requests_total{priority="-10",outcome="expired"} 2`,
    `epp_wasm_flow_control_requests_total{priority="100",outcome="dispatched"} 7`,
    "",
  ].join("\n");
}

test("flow control's bands: held now and outcomes, summed over the Envoys read, highest priority first, in /status.json", async () => {
  const a = await fakeAdmin(() => flowPage(3, 3000, 10));
  const b = await fakeAdmin(() => flowPage(1, 500, 4));
  const reader = new EnvoyStatsReader({ urls: [a.url, b.url] });
  const server = createSidecarServer({ state: new OnePool(), registry: new Registry(), envoyStats: reader });
  const addr = await listen(server, 0, "127.0.0.1");
  try {
    assert.deepEqual(reader.flowControl(), [], "nothing before the first read");
    await reader.read();
    assert.deepEqual(reader.flowControl(), [
      { priority: 100, queued: 0, bytes: 0, outcomes: { dispatched: 14 } },
      { priority: -10, queued: 4, bytes: 3500, outcomes: { dispatched: 14, expired: 4 } },
    ]);
    const s = (await (await fetch(`http://127.0.0.1:${addr.port}/status.json`)).json()) as ReturnType<
      typeof statusView
    >;
    assert.equal(s.requests.flowControl[1]!.queued, 4);
  } finally {
    await new Promise((r) => server.close(r));
    await a.close();
    await b.close();
  }
});
