// A dead pool costs no connect attempts: the gateway runs the shipped override_host bootstrap
// (envoy/envoy-override-host.yaml, translated as `npm start` does), real build/filter.wasm, four real
// upstreams. All four are killed: each worker learns it from its own failed requests (UF in on_log), then
// every request gets 503 no_reachable_endpoint at once and the gateway's upstream_cx_connect_fail stops
// growing. A pod brought back on its port serves again once failedConnectWindowMs is over.
import { test } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import { Gateway } from "../../gateway/server.ts";
import { normalizeConfig } from "../../gateway/config.ts";
import { encodeSnapshot } from "../../sidecar/snapshot/encoder.ts";
import { gatewayConfigFromEnvoy, OVERRIDE_HOST_BOOTSTRAP } from "../../scripts/local-stack/gateway-config.ts";
import { startUpstream, type TestUpstream } from "../support/upstreams.ts";
import { waitFor } from "../support/deadline.ts";
import { loopbackSnapshot, shippedControl } from "../support/shipped-control.ts";

const MODEL = "meta-llama/Llama-3.1-8B-Instruct";
const WINDOW_MS = 3000;

interface Reply {
  status: number;
  upstream: string | null;
  retryAfter: string | null;
  body: string;
}

async function complete(base: string, prompt: string): Promise<Reply> {
  const res = await fetch(`${base}/v1/completions`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ model: MODEL, prompt, max_tokens: 1 }),
    signal: AbortSignal.timeout(10_000),
  });
  return {
    status: res.status,
    upstream: res.headers.get("x-upstream"),
    retryAfter: res.headers.get("retry-after"),
    body: await res.text(),
  };
}

const noReachable = (r: Reply) => r.status === 503 && r.body.includes('"code":"no_reachable_endpoint"');

/** A pod brought back on the port it had. */
async function revive(port: number, name: string): Promise<http.Server> {
  const server = http.createServer((req, res) => {
    req.resume();
    req.on("end", () => {
      res.writeHead(200, { "content-type": "application/json", "x-upstream": name });
      res.end(JSON.stringify({ upstream: name }));
    });
  });
  await new Promise<void>((resolve) => server.listen(port, "127.0.0.1", resolve));
  return server;
}

test("override_host: a pool whose pods are all dead gets 503 at once without connect attempts; a revived pod serves after the window", async () => {
  const control = shippedControl(OVERRIDE_HOST_BOOTSTRAP);
  const ups: TestUpstream[] = [];
  let gw: Gateway | undefined;
  let revived: http.Server | undefined;
  try {
    for (let i = 0; i < 4; i++) ups.push(await startUpstream(`pod-${i}`));
    const config = normalizeConfig(
      gatewayConfigFromEnvoy(OVERRIDE_HOST_BOOTSTRAP, {
        listeners: { data: { port: 0 }, control: { port: 0 } },
        wasm: "build/filter.wasm",
        endpoints: ups.map((u) => u.address),
        // A window far longer than the burst below takes on a busy machine, so no timing is asserted.
        pluginConfig: { failedConnectWindowMs: WINDOW_MS },
      }),
    );
    assert.equal(config.cluster.type, "override_host");
    const started = new Gateway(config);
    gw = started;
    await started.start();
    const data = `http://127.0.0.1:${started.listener("data").port}`;
    const res = await fetch(`http://127.0.0.1:${started.listener("control").port}${control.path}`, {
      method: "POST",
      headers: { authorization: `Bearer ${control.token}`, "content-type": "application/octet-stream" },
      body: new Uint8Array(
        encodeSnapshot(
          loopbackSnapshot(
            control.pool,
            1n,
            ups.map((u) => u.port),
          ),
        ),
      ),
    });
    assert.equal(res.status, 204, await res.text());
    assert.equal((await complete(data, "warm up")).status, 200);

    for (const u of ups) await u.close(); // every pod is gone; the snapshot still lists them all
    // Each worker learns it from one request whose attempts walked the whole list (UF + URX in on_log).
    const learning: Reply[] = [];
    for (let i = 0; i < 6 && !learning.some(noReachable); i++)
      learning.push(await complete(data, `dead ${i}`));
    const failedFirst = learning.filter((r) => !noReachable(r));
    assert.ok(learning.some(noReachable), `no 503 no_reachable_endpoint in ${learning.length} requests`);
    assert.equal(failedFirst.length, config.workers, "one failed request per worker, then the filter knows");
    for (const r of failedFirst) {
      assert.equal(r.status, 503);
      assert.match(r.body, /^upstream connect error or disconnect\/reset before headers\. retried/);
    }
    const attempts = started.stats.get("upstream_cx_connect_fail");
    assert.equal(attempts, config.workers * 4, "each worker tried the four pods once");

    for (let i = 0; i < 10; i++) {
      const r = await complete(data, `dead pool ${i}`);
      assert.ok(noReachable(r), `request ${i}: ${r.status} ${r.body}`);
      assert.equal(r.retryAfter, "1");
    }
    assert.equal(
      started.stats.get("upstream_cx_connect_fail"),
      attempts,
      "no connect attempt into the dead pool",
    );

    // pod-2 comes back on its port. Once the marks are older than the window, each worker tries again:
    // its first request passes over pods 0 and 1 (still dead) and pod-2 answers; after that pod-2 is the pick.
    revived = await revive(ups[2]!.port, "pod-2");
    await waitFor(
      "the window to pass and pod-2 to serve on every worker",
      async () => {
        // Streams take the workers in turn: one request per worker, all served by pod-2.
        const rs = [];
        for (let w = 0; w < config.workers; w++) rs.push(await complete(data, "probe"));
        return rs.every((r) => r.upstream === "pod-2");
      },
      WINDOW_MS * 6,
    );
    for (let i = 0; i < 10; i++) {
      const r = await complete(data, `back ${i}`);
      assert.equal(r.status, 200, `request ${i}: ${r.status} ${r.body}`);
      assert.equal(r.upstream, "pod-2");
    }
    const after = started.stats.get("upstream_cx_connect_fail") - attempts;
    // Each worker probes once per window: pods 0 and 1 may be tried again on each probe before pod-2 serves.
    assert.ok(after <= config.workers * 2 * 6, `connect attempts after the revival: ${after}`);
  } finally {
    await gw?.stop();
    if (revived) {
      const server = revived;
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  }
});
