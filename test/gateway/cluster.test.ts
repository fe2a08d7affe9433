// Host selection per attempt, per cluster type (gateway/cluster.ts), and the cluster/retry config checks.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createCluster, type LbContext } from "../../gateway/cluster.ts";
import { ConfigError, normalizeConfig } from "../../gateway/config.ts";
import { GatewayStats } from "../../gateway/stats.ts";

const H = "x-gateway-destination-endpoint";
const ctx = (value?: string | string[]): LbContext => ({
  headers: [
    [":path", "/"],
    ...(value === undefined
      ? []
      : (Array.isArray(value) ? value : [value]).map((v): [string, string] => [H, v])),
  ],
});

function originalDst(defaults: string[] = []) {
  const stats = new GatewayStats();
  const cluster = createCluster(
    { type: "ORIGINAL_DST", name: "original_destination_cluster", connectTimeoutMs: 1000 },
    stats,
    defaults,
  );
  return { stats, pick: (c: LbContext) => cluster.chooseHost(c)?.key };
}

function overrideHost(endpoints: string[]) {
  const stats = new GatewayStats();
  const cluster = createCluster(
    { type: "override_host", name: "inference_pool", connectTimeoutMs: 1000, endpoints },
    stats,
  );
  return { stats, pick: (c: LbContext) => cluster.chooseHost(c)?.key };
}

test("ORIGINAL_DST: one ip:port routes, every attempt re-reads it (same host on retries)", () => {
  const { stats, pick } = originalDst();
  const c = ctx("10.0.0.1:8000");
  assert.equal(pick(c), "10.0.0.1:8000");
  assert.equal(pick(c), "10.0.0.1:8000");
  assert.equal(stats.get("original_dst_host_invalid"), 0);
});

test("ORIGINAL_DST: a list-valued header is invalid → no host, original_dst_host_invalid", () => {
  const { stats, pick } = originalDst(["http://127.0.0.1:9"]);
  assert.equal(pick(ctx("10.0.0.1:8000,10.0.0.2:8000")), undefined);
  assert.equal(pick(ctx("pod-0:8000")), undefined);
  assert.equal(stats.get("original_dst_host_invalid"), 2);
  assert.equal(stats.get("upstream_cx_none_healthy"), 2);
  assert.equal(stats.get("default_upstream_selected"), 0, "an invalid header never uses defaultUpstreams");
});

test("ORIGINAL_DST: only the first header value counts", () => {
  const { pick } = originalDst();
  assert.equal(pick(ctx(["10.0.0.1:1", "10.0.0.2:2"])), "10.0.0.1:1");
  assert.equal(pick(ctx(["bad", "10.0.0.2:2"])), undefined);
});

test("ORIGINAL_DST: no header → no host (Envoy), or the defaultUpstreams stand-in round robin", () => {
  const none = originalDst();
  assert.equal(none.pick(ctx()), undefined);
  assert.equal(none.stats.get("original_dst_host_invalid"), 0, "a missing header is not invalid");
  const withDefaults = originalDst(["http://127.0.0.1:7001", "http://[::1]:7002"]);
  assert.deepEqual(
    [withDefaults.pick(ctx()), withDefaults.pick(ctx()), withDefaults.pick(ctx())],
    ["127.0.0.1:7001", "[::1]:7002", "127.0.0.1:7001"],
  );
});

test("override_host: first known entry serves, each attempt takes the next, then the fallback", () => {
  const { stats, pick } = overrideHost(["10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80"]);
  const c = ctx("10.0.0.2:80,10.0.0.3:80");
  assert.equal(pick(c), "10.0.0.2:80");
  assert.equal(pick(c), "10.0.0.3:80");
  // Used up: round robin over the cluster's endpoints.
  assert.equal(pick(c), "10.0.0.1:80");
  assert.equal(pick(c), "10.0.0.2:80");
  assert.equal(stats.get("override_host_selected"), 2);
  assert.equal(stats.get("override_host_fallback"), 2);
});

test("override_host: entries not in the endpoint set are skipped (consumed), not a fallback", () => {
  const { stats, pick } = overrideHost(["10.0.0.1:80", "10.0.0.2:80"]);
  const c = ctx("10.9.9.9:80, pod-0:80 ,10.0.0.1:080,,10.0.0.2:80 ,10.0.0.1:80");
  assert.equal(pick(c), "10.0.0.2:80");
  assert.equal(stats.get("override_host_skipped"), 3);
  assert.equal(pick(c), "10.0.0.1:80");
  assert.equal(stats.get("override_host_fallback"), 0);
});

test("override_host: string match against the canonical host key", () => {
  const { pick } = overrideHost(["[fd00::1]:80", "10.0.0.1:80"]);
  assert.equal(pick(ctx("[fd00:0:0::1]:80,[fd00::1]:80")), "[fd00::1]:80");
  // A non-canonical spelling is not found (Envoy's findHost is a map lookup), so the next entry serves.
  assert.equal(pick(ctx("10.0.0.1:+80,10.0.0.1:80")), "10.0.0.1:80");
});

test("override_host: absent, empty or blank header → fallback round robin", () => {
  const { stats, pick } = overrideHost(["10.0.0.1:80", "10.0.0.2:80"]);
  assert.equal(pick(ctx()), "10.0.0.1:80");
  assert.equal(pick(ctx("")), "10.0.0.2:80");
  assert.equal(pick(ctx(" , ,")), "10.0.0.1:80");
  assert.equal(stats.get("override_host_fallback"), 3);
});

test("override_host: the list is built at the first attempt; later header changes do not count", () => {
  const { pick } = overrideHost(["10.0.0.1:80", "10.0.0.2:80"]);
  const c = ctx("10.0.0.2:80");
  assert.equal(pick(c), "10.0.0.2:80");
  (c.headers as Array<[string, string]>).splice(1, 1, [H, "10.0.0.2:80,10.0.0.2:80"]);
  assert.equal(pick(c), "10.0.0.1:80", "the cursor is past the only entry: fallback");
});

test("override_host: only the first header value is split", () => {
  const { pick } = overrideHost(["10.0.0.1:80", "10.0.0.2:80"]);
  const c = ctx(["10.0.0.2:80", "10.0.0.1:80"]);
  assert.equal(pick(c), "10.0.0.2:80");
  assert.equal(pick(c), "10.0.0.1:80", "fallback (round robin), not the second header value");
});

const base = { listeners: [{ name: "data", port: 0 }], pluginConfig: {} };

test("config: cluster defaults to ORIGINAL_DST; override_host needs IP:port endpoints", () => {
  assert.equal(normalizeConfig(base).cluster.type, "ORIGINAL_DST");
  const oh = normalizeConfig({
    ...base,
    cluster: { type: "override_host", endpoints: ["127.0.0.1:8001", "[0::1]:8002"] },
  }).cluster;
  assert.deepEqual(oh, {
    type: "override_host",
    name: "inference_pool",
    connectTimeoutMs: 5000,
    endpoints: ["127.0.0.1:8001", "[::1]:8002"],
  });
  const bad: Array<[unknown, RegExp]> = [
    [{ type: "STRICT_DNS" }, /cluster.type must be ORIGINAL_DST or override_host/],
    [{ type: "override_host" }, /cluster.endpoints/],
    [{ type: "override_host", endpoints: [] }, /cluster.endpoints/],
    [{ type: "override_host", endpoints: ["pod-0:8000"] }, /not an IP:port literal/],
    [{ type: "override_host", endpoints: ["127.0.0.1:0"] }, /not an IP:port literal/],
    [{ type: "override_host", endpoints: ["127.0.0.1:+80"] }, /not an IP:port literal/],
    [{ type: "override_host", endpoints: ["127.0.0.1:80,127.0.0.1:81"] }, /not an IP:port literal/],
    [{ type: "override_host", endpoints: ["127.0.0.1:80", "127.0.0.1:80"] }, /listed twice/],
    [{ type: "ORIGINAL_DST", endpoints: ["127.0.0.1:80"] }, /unknown field "endpoints"/],
    [{ type: "ORIGINAL_DST", connectTimeoutMs: 0 }, /connectTimeoutMs/],
    ["ORIGINAL_DST", /cluster must be an object/],
  ];
  for (const [cluster, re] of bad) {
    assert.throws(() => normalizeConfig({ ...base, cluster }), re, JSON.stringify(cluster));
  }
  assert.throws(
    () =>
      normalizeConfig({
        ...base,
        defaultUpstreams: ["http://127.0.0.1:1"],
        cluster: { type: "override_host", endpoints: ["127.0.0.1:8001"] },
      }),
    (e: unknown) => e instanceof ConfigError && /ORIGINAL_DST only/.test(e.message),
  );
});

test("config: retryPolicy takes Envoy's retry_on names and defaults", () => {
  assert.equal(normalizeConfig(base).retryPolicy, undefined);
  assert.deepEqual(
    normalizeConfig({ ...base, retryPolicy: { retryOn: "connect-failure,reset-before-request" } })
      .retryPolicy,
    {
      retryOn: ["connect-failure", "reset-before-request"],
      numRetries: 1,
      baseIntervalMs: 25,
      maxIntervalMs: 250,
    },
  );
  assert.deepEqual(
    normalizeConfig({
      ...base,
      retryPolicy: { retryOn: ["connect-failure"], numRetries: 3, baseIntervalMs: 1 },
    }).retryPolicy,
    { retryOn: ["connect-failure"], numRetries: 3, baseIntervalMs: 1, maxIntervalMs: 10 },
  );
  const bad: Array<[unknown, RegExp]> = [
    [{ retryOn: "5xx" }, /"5xx" is not modelled/],
    [{ retryOn: [] }, /retryOn/],
    [{ retryOn: "reset", numRetries: -1 }, /numRetries/],
    [{ retryOn: "reset", numRetries: 1.5 }, /numRetries/],
    [{ retryOn: "reset", baseIntervalMs: 0 }, /baseIntervalMs/],
    [{ retryOn: "reset", baseIntervalMs: 10, maxIntervalMs: 5 }, /maxIntervalMs/],
    [{ retryOn: "reset", perTryTimeout: "1s" }, /unknown field "perTryTimeout"/],
  ];
  for (const [retryPolicy, re] of bad) {
    assert.throws(() => normalizeConfig({ ...base, retryPolicy }), re, JSON.stringify(retryPolicy));
  }
});
