// An InferencePool with appProtocol kubernetes.io/h2c: pods that speak only HTTP/2 cleartext (prior knowledge).
// The gateway process runs envoy/envoy-h2c.yaml as `npm start` would: its cluster's HttpProtocolOptions
// (explicit_http_config.http2_protocol_options) become the gateway's cluster.http2, and the router talks to the
// simulated pods over node:http2. The official openai client stays on HTTP/1.1 downstream.
import { after, test } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import http2 from "node:http2";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import OpenAI from "openai";
import { Gateway } from "../../gateway/server.ts";
import { normalizeConfig } from "../../gateway/config.ts";
import { ORIGINAL_DST_BOOTSTRAP, readShippedEnvoy } from "../../scripts/local-stack/gateway-config.ts";
import { startSimCluster } from "../../sim/index.ts";
import { snapshotFor, startGatewayProcess } from "../support/gateway-process.ts";

const H2C_BOOTSTRAP = join(new URL("../..", import.meta.url).pathname, "envoy/envoy-h2c.yaml");
const MODEL = "meta-llama/Llama-3.1-8B-Instruct";
const SERVED = "x-gateway-destination-endpoint-served";

const cleanup: Array<() => Promise<unknown>> = [];
after(async () => {
  for (const c of cleanup.reverse()) await c();
});

test("the h2c bootstrap's cluster protocol options become the gateway's cluster.http2", () => {
  assert.equal(readShippedEnvoy(H2C_BOOTSTRAP).cluster.http2, true);
  assert.equal(readShippedEnvoy(ORIGINAL_DST_BOOTSTRAP).cluster.http2, undefined);
  const { cluster } = readShippedEnvoy(H2C_BOOTSTRAP);
  assert.equal(cluster.type, "ORIGINAL_DST");
  // A protocol choice the gateway does not model is refused, not silently spoken as HTTP/1.1.
  const dir = mkdtempSync(join(tmpdir(), "epp-h2c-"));
  cleanup.push(async () => rmSync(dir, { recursive: true, force: true }));
  const variant = join(dir, "envoy.yaml");
  writeFileSync(
    variant,
    readFileSync(H2C_BOOTSTRAP, "utf8").replace(
      "explicit_http_config:\n            http2_protocol_options: {}",
      "use_downstream_protocol_config:\n            http2_protocol_options: {}",
    ),
  );
  assert.throws(() => readShippedEnvoy(variant), /only explicit_http_config/);
  assert.throws(
    () =>
      normalizeConfig({
        listeners: [{ name: "data", address: "127.0.0.1", port: 0 }],
        wasm: "build/filter.wasm",
        pluginConfig: { pool: { namespace: "default", name: "p" } },
        cluster: { type: "ORIGINAL_DST", http2: "yes" },
      }),
    /cluster.http2 must be a boolean/,
  );
});

test("chat completions, plain and streamed, reach h2c pods through the gateway process", async () => {
  const sims = await startSimCluster({ pods: 2, basePort: 0, preset: "fast", timeScale: 4, h2c: true });
  cleanup.push(() => sims.close());
  const addresses = sims.pods.map((p) => `127.0.0.1:${p.port}`);
  const gp = await startGatewayProcess({ endpoints: addresses, bootstrap: H2C_BOOTSTRAP, workers: 1 });
  cleanup.push(() => gp.stop());
  const pushed = await gp.push(snapshotFor(1n, addresses, [MODEL]));
  assert.equal(pushed.status, 204, pushed.body);
  const client = new OpenAI({
    baseURL: `http://127.0.0.1:${gp.dataPort}/v1`,
    apiKey: "unused",
    maxRetries: 0,
  });

  const { data: c, response } = await client.chat.completions
    .create({ model: MODEL, messages: [{ role: "user", content: "hello over h2c" }], max_tokens: 4 })
    .withResponse();
  assert.equal(c.model, MODEL);
  assert.ok((c.choices[0]?.message.content ?? "").length > 0);
  assert.equal(response.headers.get("x-inference-http-version"), "2.0", "the pod was reached over HTTP/2");
  const served = response.headers.get(SERVED);
  assert.ok(served && addresses.includes(served), `served ${served}`);
  assert.equal(`127.0.0.1:${response.headers.get("x-inference-port")}`, served);

  const { data: stream, response: r2 } = await client.chat.completions
    .create({
      model: MODEL,
      messages: [{ role: "user", content: "stream over h2c" }],
      max_tokens: 4,
      stream: true,
    })
    .withResponse();
  let text = "";
  for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? "";
  assert.ok(text.length > 0);
  assert.equal(r2.headers.get("x-inference-http-version"), "2.0");
  assert.ok(addresses.includes(r2.headers.get(SERVED) ?? ""));
  assert.ok(gp.alive());
});

/** POSTs through the gateway's data listener with the destination header set by hand (no snapshot needed). */
function post(port: number, path: string, body: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: "127.0.0.1", port, method: "POST", path, headers: { "content-type": "application/json" } },
      (res) => {
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (c: string) => (text += c));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body: text }));
        res.on("error", reject);
      },
    );
    req.on("error", reject);
    req.end(body);
  });
}

/**
 * An in-process gateway whose override_host cluster of `endpoints` speaks h2c. It gets no snapshot: FailOpen passes
 * each request on without a destination and the cluster's round-robin fallback picks from `endpoints`.
 */
async function h2Gateway(endpoints: string[], retryOn?: string[]): Promise<Gateway> {
  const gw = new Gateway(
    normalizeConfig({
      listeners: [{ name: "data", address: "127.0.0.1", port: 0 }],
      wasm: "build/filter.wasm",
      workers: 1,
      pluginConfig: {
        pool: { namespace: "default", name: "p" },
        failureMode: "FailOpen",
        destinationMode: "override_host",
      },
      cluster: { type: "override_host", endpoints, http2: true },
      ...(retryOn ? { retryPolicy: { retryOn, numRetries: 1 } } : {}),
    }),
  );
  await gw.start();
  cleanup.push(() => gw.stop());
  return gw;
}

test("h2c upstream failures: a refused connect retries to the next override_host entry, then replies as Envoy", async () => {
  const sims = await startSimCluster({ pods: 1, basePort: 0, preset: "fast", timeScale: 4, h2c: true });
  cleanup.push(() => sims.close());
  const live = `127.0.0.1:${sims.pods[0]!.port}`;
  // A port nothing listens on: bind one, note it, close it.
  const dead = await new Promise<string>((resolve) => {
    const s = http.createServer().listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(`127.0.0.1:${port}`));
    });
  });
  const gw = await h2Gateway([dead, live], ["connect-failure", "reset-before-request"]);
  const port = gw.listener("data").port;
  const body = JSON.stringify({ model: MODEL, messages: [{ role: "user", content: "hi" }], max_tokens: 2 });
  const statuses: number[] = [];
  for (let i = 0; i < 2; i++) statuses.push((await post(port, "/v1/chat/completions", body)).status);
  // Whichever host round robin starts on, the dead one's refused connect retries to the live one.
  assert.deepEqual(statuses, [200, 200]);

  const noRetry = await h2Gateway([dead]);
  const refused = await post(noRetry.listener("data").port, "/v1/chat/completions", body);
  assert.equal(refused.status, 503);
  assert.equal(
    refused.body,
    "upstream connect error or disconnect/reset before headers. reset reason: remote connection failure, " +
      "transport failure reason: delayed connect error: Connection refused",
  );
});

/** An h2c server that resets the first `resets` streams with `code` before any response, then answers 200. */
async function resettingServer(code: number, resets = Infinity): Promise<string> {
  let seen = 0;
  const server = http2.createServer();
  server.on("stream", (stream) => {
    stream.on("error", () => {}); // the local close with an error code is reported on the stream too
    if (seen++ < resets) stream.close(code);
    else {
      stream.respond({ ":status": 200, "content-type": "application/json" });
      stream.end("{}");
    }
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()));
  cleanup.push(() => new Promise((resolve) => server.close(resolve)));
  return `127.0.0.1:${(server.address() as { port: number }).port}`;
}

test("an h2c stream reset before the response headers is a remote reset (503), not a hang", async () => {
  const gw = await h2Gateway([await resettingServer(http2.constants.NGHTTP2_INTERNAL_ERROR)]);
  const res = await post(gw.listener("data").port, "/v1/chat/completions", "{}");
  assert.equal(res.status, 503);
  assert.equal(
    res.body,
    "upstream connect error or disconnect/reset before headers. reset reason: remote reset",
  );
});

test("REFUSED_STREAM is a remote refused stream reset: retried under refused-stream, not under reset-before-request", async () => {
  const refusedOnce = async () => resettingServer(http2.constants.NGHTTP2_REFUSED_STREAM, 1);
  const retryGw = async (retryOn: string[]) => {
    const gw = await h2Gateway([await refusedOnce()], retryOn);
    return post(gw.listener("data").port, "/v1/chat/completions", "{}");
  };
  // The stream's headers reached the pod, so reset-before-request does not retry it (Envoy: upstream_request_started).
  const notRetried = await retryGw(["connect-failure", "reset-before-request"]);
  assert.equal(notRetried.status, 503);
  assert.equal(
    notRetried.body,
    "upstream connect error or disconnect/reset before headers. reset reason: remote refused stream reset",
  );
  const retried = await retryGw(["connect-failure", "reset-before-request", "refused-stream"]);
  assert.equal(retried.status, 200, retried.body);
});
