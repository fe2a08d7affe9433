// Pools with appProtocol kubernetes.io/h2c: the pool spec keeps it, their target ports are scraped as h2c:// URLs,
// and the h2c fetcher reads a metrics page from a server that speaks only HTTP/2 cleartext.
import { after, test } from "node:test";
import assert from "node:assert/strict";
import http2 from "node:http2";
import { normalize } from "../../sidecar/inventory/resources.ts";
import type { PoolRecord } from "../../sidecar/inventory/resources.ts";
import type { PoolInventory } from "../../sidecar/inventory/types.ts";
import { scrapeConfigFromInventory, scrapeTargets } from "../../sidecar/collector/targets.ts";
import { createMetricsFetcher } from "../../sidecar/collector/fetchers.ts";

const cleanup: Array<() => Promise<unknown>> = [];
after(async () => {
  for (const c of cleanup.reverse()) await c();
});

function pool(spec: Record<string, unknown>, annotations: Record<string, string> = {}) {
  return normalize({
    apiVersion: "inference.networking.k8s.io/v1",
    kind: "InferencePool",
    metadata: { name: "p", namespace: "ns", annotations },
    spec: { selector: { matchLabels: { app: "x" } }, targetPorts: [{ number: 8000 }], ...spec },
  });
}

function inventoryOf(spec: Record<string, unknown>, annotations: Record<string, string> = {}): PoolInventory {
  const r = pool(spec, annotations);
  assert.ok(r.ok);
  return { pool: (r.record as PoolRecord).spec, endpoints: [], models: [] } as unknown as PoolInventory;
}

test("spec.appProtocol: h2c is kept, http and absent are the default, anything else is refused", () => {
  assert.equal(inventoryOf({ appProtocol: "kubernetes.io/h2c" }).pool.appProtocol, "kubernetes.io/h2c");
  assert.equal(inventoryOf({ appProtocol: "http" }).pool.appProtocol, undefined);
  assert.equal(inventoryOf({}).pool.appProtocol, undefined);
  const bad = pool({ appProtocol: "h2c" });
  assert.ok(!bad.ok);
  assert.equal(`${bad.invalid?.field}:${bad.invalid?.reason}`, "spec.appProtocol:invalid");
});

test("an h2c pool's target ports are scraped over h2c; a separate metrics port stays HTTP/1.1", () => {
  const endpoints = [{ address: "10.0.0.1", port: 8000, ready: true }];
  const urls = (spec: Record<string, unknown>, annotations: Record<string, string> = {}) =>
    scrapeTargets(
      { endpoints },
      scrapeConfigFromInventory(inventoryOf(spec, annotations), { metricsNameFilter: false }),
    ).map((t) => t.url);
  assert.deepEqual(urls({ appProtocol: "kubernetes.io/h2c" }), ["h2c://10.0.0.1:8000/metrics"]);
  assert.deepEqual(urls({}), ["http://10.0.0.1:8000/metrics"]);
  assert.deepEqual(urls({ appProtocol: "kubernetes.io/h2c" }, { "epp-wasm.io/metrics-port": "9400" }), [
    "http://10.0.0.1:9400/metrics",
  ]);
});

test("the metrics fetcher reads h2c:// from an HTTP/2-only server, keeps the session, and reports non-200", async () => {
  const seen: string[] = [];
  let sessions = 0;
  const server = http2.createServer((req, res) => {
    seen.push(`${req.httpVersion} ${req.url}`);
    if (req.url?.startsWith("/missing")) res.writeHead(404).end();
    else res.writeHead(200, { "content-type": "text/plain" }).end("vllm:num_requests_waiting 3\n");
  });
  server.on("session", () => sessions++);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()));
  cleanup.push(() => new Promise((resolve) => server.close(resolve)));
  const port = (server.address() as { port: number }).port;
  const fetcher = createMetricsFetcher();
  cleanup.push(() => fetcher.close());

  const body = await fetcher.fetch(`h2c://127.0.0.1:${port}/metrics?name[]=a`, AbortSignal.timeout(5000));
  assert.equal(body, "vllm:num_requests_waiting 3\n");
  const channel = fetcher.open!(`h2c://127.0.0.1:${port}/metrics`);
  const again = await new Promise<string | undefined>((resolve, reject) =>
    channel.get((err, b) => (err ? reject(err) : resolve(b))),
  );
  assert.equal(again, "vllm:num_requests_waiting 3\n");
  await assert.rejects(
    fetcher.fetch(`h2c://127.0.0.1:${port}/missing`, AbortSignal.timeout(5000)),
    /HTTP 404/,
  );
  assert.deepEqual(seen, ["2.0 /metrics?name[]=a", "2.0 /metrics", "2.0 /missing"]);
  assert.equal(sessions, 1, "one session per endpoint, reused");
});
