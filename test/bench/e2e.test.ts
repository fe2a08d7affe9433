// `npm run bench:e2e` at toy scale: the real stack (simulated pods, sidecar, gateway with filter.wasm) under a
// short streaming load, half the requests through the gateway and half straight to a pod. Checks the report's
// shape and sanity, not timings, and that the stack left no port behind.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { portIsFree } from "../../scripts/local-stack/ports.ts";

const ROOT = new URL("../..", import.meta.url).pathname;

interface Side {
  successes: {
    count: number;
    latency: Record<string, { p50: number; p90: number }>;
  };
  failures: { count: number };
}

test("bench:e2e runs the real stack briefly and reports both paths, the gateway's added latency and the filter's share", async () => {
  const out = mkdtempSync(join(tmpdir(), "epp-bench-e2e-"));
  try {
    const r = spawnSync(
      process.execPath,
      [
        ...["--import", "tsx", "bench/e2e.ts"],
        ...["--qps", "8", "--duration-s", "3", "--pods", "2", "--time-scale", "50", "--seed", "3"],
        ...["--out", out],
      ],
      { cwd: ROOT, encoding: "utf8", timeout: 120_000 },
    );
    assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`);
    const report = JSON.parse(readFileSync(join(out, "e2e.json"), "utf8")) as {
      config: { ports: { gateway: number; control: number; sidecar: number; pods: [number, number] } };
      gateway: Side;
      direct: Side;
      gateway_added_latency_ms: Record<string, number>;
      filter_per_request_us_p50: number | null;
    };
    for (const side of [report.gateway, report.direct]) {
      assert.ok(side.successes.count > 0, "requests on both paths succeeded");
      assert.equal(side.failures.count, 0);
      for (const metric of ["time_to_first_token", "request_latency", "inter_token_latency"]) {
        const d = side.successes.latency[metric]!;
        assert.ok(d.p50 > 0 && d.p90 >= d.p50 && Number.isFinite(d.p90), `${metric}: ${JSON.stringify(d)}`);
      }
    }
    for (const [k, v] of Object.entries(report.gateway_added_latency_ms))
      assert.ok(Number.isFinite(v), `${k} = ${v}`);
    assert.ok((report.filter_per_request_us_p50 ?? 0) > 0, "the filter's own time was measured");
    assert.match(readFileSync(join(out, "e2e.md"), "utf8"), /\| via gateway \| \d+ \|/);
    const { gateway, control, sidecar, pods } = report.config.ports;
    for (const port of [gateway, control, sidecar, pods[0], pods[1]])
      assert.ok(await portIsFree(port), `port ${port} still in use after the benchmark`);
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});
