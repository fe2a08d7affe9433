// The filter's metrics end to end: requests through the gateway process, then a scrape of its admin
// /stats/prometheus, which applies the shipped Envoy bootstrap's stats_config (issue 19 items 1-2).
import { test } from "node:test";
import assert from "node:assert/strict";
import { LOCAL_POOL, startGatewayProcess } from "../support/gateway-process.ts";
import { snapshotWith } from "../support/snapshot-fixture.ts";
import { startUpstream } from "../support/upstreams.ts";

const PROMPT = "Review this dish: ".repeat(120);

async function chat(port: number, body: string, headers: Record<string, string> = {}): Promise<number> {
  const res = await fetch(`http://127.0.0.1:${port}/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body,
    signal: AbortSignal.timeout(10_000),
  });
  await res.arrayBuffer();
  return res.status;
}

const request = (model: string) => JSON.stringify({ model, messages: [{ role: "user", content: PROMPT }] });

/** The value of the one series `name{labels}` in a Prometheus text page (undefined when absent). */
function series(text: string, nameAndLabels: string): number | undefined {
  const line = text.split("\n").find((l) => l.startsWith(`${nameAndLabels} `));
  return line === undefined ? undefined : Number(line.slice(nameAndLabels.length + 1));
}

test("gateway admin /stats/prometheus: request totals by model and outcome, picks per endpoint, decision histogram", async () => {
  const upstreams = await Promise.all([startUpstream("a"), startUpstream("b")]);
  const gw = await startGatewayProcess({ endpoints: upstreams.map((u) => u.address), admin: true });
  try {
    const pushed = await gw.push(
      snapshotWith({
        generation: 1n,
        createdAtMs: Date.now(),
        pool: { ...LOCAL_POOL, strictModels: true },
        endpoints: upstreams.map((u) => ({ address: "127.0.0.1", port: u.port, kvBlockCount: 1000 })),
        models: [
          { name: "food-review", criticality: "Critical", targets: [{ name: "food-review-v1", weight: 1 }] },
        ],
        scheduler: { metricsStalenessMs: 60_000 },
      }),
    );
    assert.equal(pushed.status, 204, pushed.body);

    const statuses: number[] = [];
    for (let i = 0; i < 4; i++) statuses.push(await chat(gw.dataPort, request("food-review")));
    statuses.push(
      await chat(gw.dataPort, request("food-review"), { "x-gateway-inference-objective": "not-in-snapshot" }),
    );
    for (let i = 0; i < 2; i++) statuses.push(await chat(gw.dataPort, request("no-such-model")));
    statuses.push(await chat(gw.dataPort, "{"));
    assert.deepEqual(statuses, [200, 200, 200, 200, 200, 404, 404, 400]);

    const res = await fetch(`http://127.0.0.1:${gw.adminPort}/stats/prometheus`);
    assert.equal(res.status, 200);
    const text = await res.text();
    if (process.env.SHOW_SCRAPE) console.log(text);
    const fr = 'model_name="food-review",target_model_name="food-review-v1"';
    const unknown = 'model_name="__unknown__",target_model_name="__none__"';
    const none = 'model_name="__none__",target_model_name="__none__"';
    assert.equal(series(text, `inference_objective_request_total{${fr}}`), 5, text);
    assert.equal(series(text, `inference_objective_request_total{${unknown}}`), 2);
    assert.equal(series(text, `inference_objective_request_total{${none}}`), 1);
    assert.equal(
      series(text, `inference_objective_request_error_total{${unknown},error_code="BadRequest"}`),
      2,
    );
    assert.equal(series(text, `epp_wasm_requests_total{${fr},objective="__none__",outcome="routed"}`), 4);
    assert.equal(series(text, `epp_wasm_requests_total{${fr},objective="__unknown__",outcome="routed"}`), 1);
    assert.equal(
      series(text, `epp_wasm_requests_total{${unknown},objective="__none__",outcome="unknown_model"}`),
      2,
    );
    assert.equal(
      series(text, `epp_wasm_requests_total{${none},objective="__none__",outcome="bad_request"}`),
      1,
    );

    // Picks per endpoint: only the pool's endpoints, summing to the routed requests.
    const picks = upstreams.map(
      (u) => series(text, `epp_wasm_endpoint_picks_total{endpoint="${u.address}"}`) ?? 0,
    );
    assert.equal(
      picks.reduce((a, b) => a + b, 0),
      5,
      text,
    );
    assert.equal(
      upstreams.reduce((n, u) => n + u.seen.length, 0),
      5,
    );

    // Every body decision is timed; the histogram uses the shipped buckets.
    const d = "inference_extension_scheduler_e2e_duration_microseconds";
    assert.equal(series(text, `${d}_count{}`), 8);
    assert.equal(series(text, `${d}_bucket{le="+Inf"}`), 8);
    assert.ok(series(text, `${d}_bucket{le="50000"}`)! >= 1);
    assert.equal(series(text, "epp_wasm_snapshot_age_milliseconds_count{}"), 8);

    // Repeating one prompt: its blocks are counted and, after the first, found in the prefix index.
    assert.ok(series(text, "epp_wasm_prefix_prompt_blocks_total{}")! > 0, text);
    assert.ok(series(text, "epp_wasm_prefix_blocks_matched_total{}")! > 0, text);
    assert.equal(series(text, 'epp_wasm_snapshots_total{outcome="accepted",reason="stored"}'), 1);
    assert.match(text, /^# TYPE inference_objective_request_total counter$/m);
    assert.match(text, new RegExp(`^# TYPE ${d} histogram$`, "m"));
  } finally {
    await gw.stop();
    await Promise.all(upstreams.map((u) => u.close()));
  }
});
