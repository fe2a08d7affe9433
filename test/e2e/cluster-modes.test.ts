// The shipped Envoy configurations route. The local gateway runs each bootstrap as it is written — envoy/envoy.yaml
// (ORIGINAL_DST) and envoy/envoy-override-host.yaml (override_host) — translated by the same code `npm start` uses:
// cluster type, route retry policy, and each listener's Wasm plugin configuration, unchanged. Real sockets, real
// build/filter.wasm, simulated pods, and the sidecar pushing real snapshots.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Gateway } from "../../gateway/server.ts";
import { normalizeConfig } from "../../gateway/config.ts";
import { FileInventory } from "../../sidecar/inventory/files.ts";
import { encodeSnapshot } from "../../sidecar/snapshot/encoder.ts";
import { startSimCluster, type SimCluster } from "../../sim/pods.ts";
import {
  gatewayConfigFromEnvoy,
  ORIGINAL_DST_BOOTSTRAP,
  OVERRIDE_HOST_BOOTSTRAP,
} from "../../scripts/local-stack/gateway-config.ts";
import { startSidecar, waitFor } from "../support/sidecar-harness.ts";
import { startUpstream, type TestUpstream } from "../support/upstreams.ts";
import { loopbackSnapshot, shippedControl } from "../support/shipped-control.ts";

const MODEL = "meta-llama/Llama-3.1-8B-Instruct";
const SERVED = "x-gateway-destination-endpoint-served";
const DESTINATION = "x-gateway-destination-endpoint";

type Mode = "original_dst" | "override_host";
const BOOTSTRAP: Record<Mode, string> = {
  original_dst: ORIGINAL_DST_BOOTSTRAP,
  override_host: OVERRIDE_HOST_BOOTSTRAP,
};

/**
 * A gateway running the shipped bootstrap for `mode`, with `endpoints` as override_host's endpoint set.
 * `patchDataPlugin` edits the data listener's plugin configuration (only the "today's main" evidence uses it).
 */
async function startGateway(
  mode: Mode,
  endpoints: string[],
  patchDataPlugin?: (c: Record<string, unknown>) => void,
): Promise<Gateway> {
  const raw = gatewayConfigFromEnvoy(BOOTSTRAP[mode], {
    listeners: { data: { port: 0 }, control: { port: 0 } },
    wasm: "build/filter.wasm",
    endpoints: mode === "override_host" ? endpoints : undefined,
  });
  const config = normalizeConfig(raw);
  assert.equal(config.cluster.type, mode === "override_host" ? "override_host" : "ORIGINAL_DST");
  if (patchDataPlugin) {
    patchDataPlugin(config.listeners.find((l) => l.name === "data")!.pluginConfig as Record<string, unknown>);
  }
  const gw = new Gateway(config);
  await gw.start();
  return gw;
}

const url = (gw: Gateway, listener: string) => `http://127.0.0.1:${gw.listener(listener).port}`;

interface Served {
  status: number;
  pod: string | null;
  served: string | null;
  upstream: string | null;
  body: string;
}

async function complete(gw: Gateway, prompt: string): Promise<Served> {
  const res = await fetch(`${url(gw, "data")}/v1/completions`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ model: MODEL, prompt, max_tokens: 1 }),
    signal: AbortSignal.timeout(10_000),
  });
  return {
    status: res.status,
    pod: res.headers.get("x-inference-pod"),
    served: res.headers.get(SERVED),
    upstream: res.headers.get("x-upstream"),
    body: await res.text(),
  };
}

function poolManifests(pool: { namespace: string; name: string }, ports: number[]): string {
  const head = `apiVersion: inference.networking.k8s.io/v1
kind: InferencePool
metadata: { name: ${pool.name}, namespace: ${pool.namespace} }
spec:
  selector: { matchLabels: { app: sim } }
  targetPorts: [{ number: 8000 }]
  endpointPickerRef: { name: epp, port: { number: 9002 } }
`;
  return (
    head +
    ports
      .map(
        (port, i) => `---
apiVersion: v1
kind: Pod
metadata:
  name: sim-${i}
  namespace: ${pool.namespace}
  labels: { app: sim }
  annotations: { epp-wasm.io/port: "${port}" }
status:
  podIP: 127.0.0.1
  conditions: [{ type: Ready, status: "True" }]
`,
      )
      .join("")
  );
}

/** Simulated pods, the gateway on the shipped bootstrap, and the sidecar pushing their snapshots to it. */
async function withStack(
  mode: Mode,
  pods: number,
  body: (s: { gw: Gateway; sims: SimCluster }) => Promise<void>,
) {
  const control = shippedControl(BOOTSTRAP[mode]);
  const sims = await startSimCluster({ pods, basePort: 0, preset: "fast", timeScale: 10, seed: 4 });
  const dir = mkdtempSync(join(tmpdir(), "epp-cluster-modes-"));
  let gw: Gateway | undefined;
  let sc: Awaited<ReturnType<typeof startSidecar>> | undefined;
  try {
    const ports = sims.pods.map((p) => p.port);
    writeFileSync(join(dir, "pool.yaml"), poolManifests(control.pool, ports));
    gw = await startGateway(
      mode,
      ports.map((p) => `127.0.0.1:${p}`),
    );
    sc = await startSidecar({
      inventory: new FileInventory({ manifestsDir: dir, debounceMs: 20, settleMs: 20, rescanMs: 500 }),
      envoys: [url(gw, "control")],
      token: control.token,
    });
    const sidecar = sc;
    await waitFor(
      "the sidecar's first snapshot to be accepted",
      () => sidecar.sidecar.readiness().ready,
      5000,
    );
    await body({ gw, sims });
  } finally {
    await sc?.stop();
    await gw?.stop();
    await sims.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

for (const mode of ["original_dst", "override_host"] as const) {
  for (const pods of [1, 4]) {
    test(`${mode}: the shipped configuration routes every request to a pool of ${pods}`, async () => {
      await withStack(mode, pods, async ({ gw, sims }) => {
        const byPort = new Map(sims.pods.map((p, i) => [`sim-${i}`, `127.0.0.1:${p.port}`]));
        const n = 16;
        for (let i = 0; i < n; i++) {
          const r = await complete(gw, `request ${i}`);
          assert.equal(r.status, 200, `request ${i}: ${r.status} ${r.body}`);
          assert.ok(r.pod && byPort.has(r.pod), `served by a pool pod, got ${r.pod}`);
          // The served header names the host that answered (upstream.address of the last attempt).
          assert.equal(r.served, byPort.get(r.pod));
        }
        assert.equal(gw.stats.get("original_dst_host_invalid"), 0);
        assert.equal(gw.stats.get("upstream_cx_none_healthy"), 0);
        assert.equal(gw.stats.get("upstream_rq_retry"), 0);
        if (mode === "override_host") {
          assert.equal(gw.stats.get("override_host_selected"), n, "every pick was in the endpoint set");
          assert.equal(gw.stats.get("override_host_fallback"), 0);
        }
        // The control listener routes nothing: its route is a direct_response 404, as in the bootstrap.
        const other = await fetch(`${url(gw, "control")}/v1/models`);
        assert.equal(other.status, 404);
        await other.arrayBuffer();
      });
    });
  }
}

// Four plain upstreams that record the headers they get, with hand-made snapshots (loopbackSnapshot): which
// pod is the pick is then ours to decide, and a killed pod stays the pick.

async function withUpstreams(
  mode: Mode,
  body: (s: { gw: Gateway; ups: TestUpstream[]; push: () => Promise<void> }) => Promise<void>,
  patchDataPlugin?: (c: Record<string, unknown>) => void,
) {
  const control = shippedControl(BOOTSTRAP[mode]);
  const ups: TestUpstream[] = [];
  let gw: Gateway | undefined;
  try {
    for (let i = 0; i < 4; i++) ups.push(await startUpstream(`pod-${i}`));
    const started = await startGateway(
      mode,
      ups.map((u) => u.address),
      patchDataPlugin,
    );
    gw = started;
    let generation = 1n;
    const push = async () => {
      const res = await fetch(`${url(started, "control")}${control.path}`, {
        method: "POST",
        headers: {
          authorization: `Bearer ${control.token}`,
          "content-type": "application/octet-stream",
        },
        body: new Uint8Array(
          encodeSnapshot(
            loopbackSnapshot(
              control.pool,
              generation++,
              ups.map((u) => u.port),
            ),
          ),
        ),
      });
      assert.equal(res.status, 204, await res.text());
    };
    await push();
    await body({ gw: started, ups, push });
  } finally {
    await gw?.stop();
    for (const u of ups) await u.close();
  }
}

test("override_host: a killed pick is retried on the next entry of the list and succeeds", async () => {
  await withUpstreams(
    "override_host",
    async ({ gw, ups, push }) => {
      // The pick is pod-0 while it is up.
      const before = await complete(gw, "warm up");
      assert.equal(before.status, 200);
      assert.equal(before.upstream, "pod-0");
      const list = String(ups[0]!.seen.at(-1)!.headers[DESTINATION]).split(",");
      assert.equal(list[0], ups[0]!.address);
      assert.ok(list.length >= 2, `the pick has fallbacks: ${list.join(",")}`);

      await ups[0]!.close(); // connections to pod-0 are now refused
      await push(); // the snapshot still says pod-0 is the least loaded
      const n = 5;
      for (let i = 0; i < n; i++) {
        const r = await complete(gw, `after the kill ${i}`);
        assert.equal(r.status, 200, r.body);
        // The fallback behind the dead pick served it, and the served header names it (not the dead pick).
        const seen = ups.slice(1).flatMap((u) => u.seen.map((s) => ({ u, s })));
        const last = seen.find(({ s }) => s.body.includes(`after the kill ${i}`));
        assert.ok(last, "a live pod received the request, body replayed");
        const header = String(last.s.headers[DESTINATION]).split(",");
        assert.equal(header[0], ups[0]!.address, "the dead pod is still the pick");
        assert.equal(last.u.address, header[1], "the retry took the next entry");
        assert.equal(r.upstream, last.u.name);
        assert.equal(r.served, last.u.address);
      }
      assert.equal(gw.stats.get("upstream_cx_connect_fail"), n);
      assert.equal(gw.stats.get("upstream_rq_retry"), n);
      assert.equal(gw.stats.get("upstream_rq_retry_success"), n);
      assert.equal(gw.stats.get("override_host_fallback"), 0, "the list, not the fallback policy, served");
    },
    // The gateway's walk down the list, every time: the filter's own avoidance of the dead pick after its
    // first failure is off here (test/e2e/dead-pool.test.ts covers it).
    (plugin) => {
      plugin.failedConnectWindowMs = 0;
    },
  );
});

test("original_dst: a killed pick is retried on the same host and the request fails", async () => {
  await withUpstreams("original_dst", async ({ gw, ups, push }) => {
    const before = await complete(gw, "warm up");
    assert.equal(before.upstream, "pod-0");
    // ORIGINAL_DST gets exactly one ip:port.
    assert.equal(ups[0]!.seen.at(-1)!.headers[DESTINATION], ups[0]!.address);

    await ups[0]!.close();
    await push();
    const r = await complete(gw, "after the kill");
    assert.equal(r.status, 503);
    assert.match(
      r.body,
      /^upstream connect error or disconnect\/reset before headers\. retried and the latest reset reason: remote connection failure/,
    );
    assert.equal(gw.stats.get("upstream_rq_retry"), 1, "envoy.yaml's one retry, to the same pod");
    assert.equal(gw.stats.get("upstream_cx_connect_fail"), 2);
    for (const u of ups.slice(1)) assert.equal(u.seen.length, 0);
  });
});

// The evidence for issue 26: today's main shipped envoy.yaml without a destinationMode, so the filter wrote its
// default — the pick plus up to 3 fallbacks — into the header. An ORIGINAL_DST cluster cannot parse that list.
test("original_dst with a list-valued destination (main's default of 3 fallbacks) is a 503, counted", async () => {
  await withUpstreams(
    "original_dst",
    async ({ gw, ups }) => {
      const n = 4;
      for (let i = 0; i < n; i++) {
        const r = await complete(gw, `list ${i}`);
        assert.equal(r.status, 503);
        assert.equal(r.body, "no healthy upstream");
      }
      assert.equal(gw.stats.get("original_dst_host_invalid"), n);
      assert.equal(gw.stats.get("upstream_cx_none_healthy"), n);
      for (const u of ups) assert.equal(u.seen.length, 0, "nothing reached any pod");
    },
    (plugin) => {
      plugin.destinationMode = "override_host";
      plugin.maxFallbacks = 3;
    },
  );
});
