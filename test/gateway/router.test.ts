// The gateway's router over real loopback sockets (gateway/router.ts): per-attempt host choice, Envoy's retry
// rules for resets before the response, body replay bounded by the buffer limit, Envoy's local-reply texts, and
// a reset (never a clean end) when the upstream dies mid-response. The filter is replaced by a recording stub.
import { test } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import type { HeaderList, HttpStream } from "../../host/index.ts";
import { createCluster } from "../../gateway/cluster.ts";
import type { ClusterConfig, RetryPolicyConfig } from "../../gateway/config.ts";
import { Router, type Downstream } from "../../gateway/router.ts";
import { GatewayStats } from "../../gateway/stats.ts";
import { refusedPort, startRawUpstream, startUpstream, type TestUpstream } from "../support/upstreams.ts";

const H = "x-gateway-destination-endpoint";
const REFUSED =
  "upstream connect error or disconnect/reset before headers. reset reason: remote connection failure, " +
  "transport failure reason: delayed connect error: Connection refused";
const REFUSED_AFTER_RETRY =
  "upstream connect error or disconnect/reset before headers. retried and the latest reset reason: " +
  "remote connection failure, transport failure reason: delayed connect error: Connection refused";

interface Recorded {
  hosts: string[];
  status?: number;
  headers?: HeaderList;
  body: string;
  ended: boolean;
  reset: boolean;
  local?: { status: number; body: string; details: string };
}

function recorder() {
  const r: Recorded = { hosts: [], body: "", ended: false, reset: false };
  let settle!: () => void;
  const settled = new Promise<void>((resolve) => (settle = resolve));
  const stream = {
    setUpstreamHost: (address: string, port: number) => r.hosts.push(`${address}:${port}`),
    setResponseInfo: () => {},
    encodeHeaders: (headers: HeaderList, eos: boolean) => {
      r.status = Number(headers[0]![1]);
      r.headers = headers;
      if (eos) {
        r.ended = true;
        settle();
      }
    },
    encodeData: (data: Uint8Array, eos: boolean) => {
      r.body += Buffer.from(data).toString();
      if (eos) {
        r.ended = true;
        settle();
      }
    },
    decodeHeaders() {},
    decodeData() {},
    decodeTrailers() {},
    destroy() {},
    workerIndex: 0,
    contextId: 1,
  } satisfies HttpStream;
  const down: Downstream = {
    stream,
    localReply: (status, body, details) => {
      r.local = { status, body, details };
      settle();
    },
    reset: () => {
      r.reset = true;
      settle();
    },
  };
  /** Bounded wait for the outcome (a response end, a local reply or a reset). */
  const outcome = async (ms = 5000): Promise<Recorded> => {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      settled,
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no outcome within ${ms} ms`)), ms);
      }),
    ]);
    clearTimeout(timer);
    return r;
  };
  return { r, down, outcome };
}

interface Setup {
  cluster: ClusterConfig;
  retry?: Partial<RetryPolicyConfig>;
  bufferLimitBytes?: number;
  upstreamTimeoutMs?: number;
  random?: () => number;
}

async function withRouter(
  s: Setup,
  body: (
    start: (headers: HeaderList, eos: boolean) => ReturnType<typeof recorder> & { router: Router },
    stats: GatewayStats,
  ) => Promise<void>,
) {
  const stats = new GatewayStats();
  const agent = new http.Agent({ keepAlive: true });
  const routers: Router[] = [];
  try {
    await body((headers, eos) => {
      const rec = recorder();
      const router = new Router(
        headers,
        eos,
        {
          cluster: createCluster(s.cluster, stats),
          retryPolicy: s.retry && {
            retryOn: ["connect-failure", "reset-before-request"],
            numRetries: 1,
            baseIntervalMs: 1,
            maxIntervalMs: 10,
            ...s.retry,
          },
          bufferLimitBytes: s.bufferLimitBytes ?? 1 << 20,
          connectTimeoutMs: 2000,
          upstreamTimeoutMs: s.upstreamTimeoutMs ?? 10_000,
          agent,
          stats,
          random: s.random,
        },
        rec.down,
      );
      routers.push(router);
      return { ...rec, router };
    }, stats);
  } finally {
    for (const r of routers) r.abort();
    agent.destroy();
  }
}

const get = (dest?: string): HeaderList => [
  [":method", "GET"],
  [":path", "/v1/models"],
  [":authority", "gw"],
  ...(dest === undefined ? [] : [[H, dest] as [string, string]]),
];
const post = (dest: string): HeaderList => [
  [":method", "POST"],
  [":path", "/v1/completions"],
  [":authority", "gw"],
  ["content-type", "application/json"],
  [H, dest],
];

const ORIGINAL_DST: ClusterConfig = {
  type: "ORIGINAL_DST",
  name: "original_destination_cluster",
  connectTimeoutMs: 2000,
};
const overrideHost = (...endpoints: string[]): ClusterConfig => ({
  type: "override_host",
  name: "inference_pool",
  connectTimeoutMs: 2000,
  endpoints,
});

async function withUpstreams(n: number, body: (ups: TestUpstream[]) => Promise<void>) {
  const ups: TestUpstream[] = [];
  try {
    for (let i = 0; i < n; i++) ups.push(await startUpstream(`u${i}`));
    await body(ups);
  } finally {
    for (const u of ups) await u.close();
  }
}

test("ORIGINAL_DST: one ip:port is served and named as the upstream host", async () => {
  await withUpstreams(1, async ([u]) => {
    await withRouter({ cluster: ORIGINAL_DST }, async (start) => {
      const s = start(get(u!.address), true);
      const r = await s.outcome();
      assert.equal(r.status, 200);
      assert.equal(r.ended, true);
      assert.deepEqual(JSON.parse(r.body), { upstream: "u0" });
      assert.deepEqual(r.hosts, [u!.address]);
      // The header is forwarded untouched.
      assert.equal(u!.seen[0]!.headers[H], u!.address);
    });
  });
});

test("ORIGINAL_DST: a list-valued header is 503 no healthy upstream, counted, nothing sent", async () => {
  await withUpstreams(2, async ([a, b]) => {
    await withRouter({ cluster: ORIGINAL_DST, retry: { numRetries: 3 } }, async (start, stats) => {
      const r = await start(get(`${a!.address},${b!.address}`), true).outcome();
      assert.deepEqual(r.local, {
        status: 503,
        body: "no healthy upstream",
        details: "no_healthy_upstream",
      });
      assert.deepEqual(r.hosts, [], "no attempt, so no upstream host");
      assert.equal(stats.get("original_dst_host_invalid"), 1);
      assert.equal(stats.get("upstream_cx_none_healthy"), 1);
      assert.equal(stats.get("upstream_rq_retry"), 0);
      assert.equal(a!.seen.length + b!.seen.length, 0);
    });
  });
});

test("ORIGINAL_DST without the header and without defaultUpstreams: 503 no healthy upstream", async () => {
  await withRouter({ cluster: ORIGINAL_DST }, async (start, stats) => {
    const r = await start(get(), true).outcome();
    assert.equal(r.local?.status, 503);
    assert.equal(r.local?.body, "no healthy upstream");
    assert.equal(stats.get("original_dst_host_invalid"), 0);
  });
});

test("no retry policy: a refused connect is one attempt and Envoy's 503 text", async () => {
  const dead = `127.0.0.1:${await refusedPort()}`;
  await withRouter({ cluster: ORIGINAL_DST }, async (start, stats) => {
    const r = await start(get(dead), true).outcome();
    assert.equal(r.local?.status, 503);
    assert.equal(r.local?.body, REFUSED);
    assert.equal(
      r.local?.details,
      "upstream_reset_before_response_started{remote_connection_failure|delayed_connect_error:_Connection_refused}",
    );
    assert.deepEqual(r.hosts, [dead]);
    assert.equal(stats.get("upstream_cx_connect_fail"), 1);
    assert.equal(stats.get("upstream_rq_retry"), 0);
  });
});

test("ORIGINAL_DST retries re-read the same header: the same dead host every attempt", async () => {
  const dead = `127.0.0.1:${await refusedPort()}`;
  await withRouter({ cluster: ORIGINAL_DST, retry: { numRetries: 2 } }, async (start, stats) => {
    const r = await start(get(dead), true).outcome();
    assert.equal(r.local?.status, 503);
    assert.equal(r.local?.body, REFUSED_AFTER_RETRY);
    assert.deepEqual(r.hosts, [dead, dead, dead]);
    assert.equal(stats.get("upstream_rq_retry"), 2);
    assert.equal(stats.get("upstream_rq_retry_limit_exceeded"), 1);
    assert.equal(stats.get("upstream_cx_connect_fail"), 3);
  });
});

test("ORIGINAL_DST port 0 parses (as in Envoy) and fails to connect; it never reaches port 80", async () => {
  await withRouter({ cluster: ORIGINAL_DST }, async (start) => {
    const r = await start(get("127.0.0.1:0"), true).outcome();
    assert.equal(r.local?.body, REFUSED);
    assert.deepEqual(r.hosts, ["127.0.0.1:0"]);
  });
});

test("override_host: a refused pick is retried on the next entry, the body is replayed", async () => {
  const dead = `127.0.0.1:${await refusedPort()}`;
  await withUpstreams(2, async ([a, b]) => {
    await withRouter(
      { cluster: overrideHost(dead, a!.address, b!.address), retry: { numRetries: 2 } },
      async (start, stats) => {
        const s = start(post(`${dead},${b!.address},${a!.address}`), false);
        s.router.decodeData(Buffer.from('{"prompt":'), false);
        s.router.decodeData(Buffer.from('"hi"}'), true);
        const r = await s.outcome();
        assert.equal(r.status, 200);
        assert.deepEqual(JSON.parse(r.body), { upstream: "u1" });
        assert.deepEqual(r.hosts, [dead, b!.address], "each attempt names its host");
        assert.equal(b!.seen[0]!.body, '{"prompt":"hi"}');
        assert.equal(a!.seen.length, 0);
        assert.equal(stats.get("upstream_rq_retry"), 1);
        assert.equal(stats.get("upstream_rq_retry_success"), 1);
        assert.equal(stats.get("override_host_selected"), 2);
      },
    );
  });
});

test("a header value Envoy's request encoder refuses is a 503 local reply, not sent, not retried", async () => {
  await withUpstreams(1, async ([a]) => {
    await withRouter({ cluster: ORIGINAL_DST, retry: { retryOn: ["reset"] } }, async (start, stats) => {
      const r = await start([...get(a!.address), ["x-note", "line\r\nbreak"]], true).outcome();
      assert.deepEqual(r.local, {
        status: 503,
        body: "invalid header value for: x-note",
        details: "filter_removed_required_request_headers{invalid_header_value_for:_x-note}",
      });
      const n = await start([...get(a!.address), ["bad name", "v"]], true).outcome();
      assert.equal(n.local?.body, "invalid header name: bad name");
      assert.equal(stats.get("upstream_rq_retry"), 0);
      assert.equal(a!.seen.length, 0);
      // Non-ASCII text from the module goes out as its UTF-8 bytes (obs-text passes Envoy's check).
      const ok = await start([...get(a!.address), ["x-note", "café"]], true).outcome();
      assert.equal(ok.status, 200);
      assert.equal(Buffer.from(String(a!.seen[0]!.headers["x-note"]), "latin1").toString("utf8"), "café");
    });
  });
});

test("request trailers end the request and are replayed on a retry", async () => {
  const dead = `127.0.0.1:${await refusedPort()}`;
  await withUpstreams(1, async ([a]) => {
    await withRouter({ cluster: overrideHost(dead, a!.address), retry: {} }, async (start) => {
      const s = start(post(`${dead},${a!.address}`), false);
      s.router.decodeData(Buffer.from("body"), false);
      s.router.decodeTrailers([["x-checksum", "abc"]]);
      const r = await s.outcome();
      assert.equal(r.status, 200);
      assert.equal(a!.seen[0]!.body, "body");
      assert.deepEqual(a!.seen[0]!.trailers, { "x-checksum": "abc" });
    });
  });
});

test("override_host: unknown entries are skipped; a used-up list falls back to round robin", async () => {
  const dead = `127.0.0.1:${await refusedPort()}`;
  await withUpstreams(1, async ([a]) => {
    await withRouter(
      { cluster: overrideHost(dead, a!.address), retry: { numRetries: 2 } },
      async (start, stats) => {
        // 10.9.9.9 is not in the cluster: skipped. Then dead; the retry finds the list used up →
        // round robin starts at dead again, the second retry reaches a.
        const r = await start(get(`10.9.9.9:80,${dead}`), true).outcome();
        assert.equal(r.status, 200);
        assert.deepEqual(r.hosts, [dead, dead, a!.address]);
        assert.equal(stats.get("override_host_skipped"), 1);
        assert.equal(stats.get("override_host_fallback"), 2);
      },
    );
  });
});

test("override_host without a retry policy: the refused pick is the answer (no walk)", async () => {
  const dead = `127.0.0.1:${await refusedPort()}`;
  await withUpstreams(1, async ([a]) => {
    await withRouter({ cluster: overrideHost(dead, a!.address) }, async (start) => {
      const r = await start(get(`${dead},${a!.address}`), true).outcome();
      assert.equal(r.local?.body, REFUSED);
      assert.equal(a!.seen.length, 0);
    });
  });
});

test("reset-before-request alone also retries a refused connect (nothing was sent)", async () => {
  const dead = `127.0.0.1:${await refusedPort()}`;
  await withUpstreams(1, async ([a]) => {
    await withRouter(
      { cluster: overrideHost(dead, a!.address), retry: { retryOn: ["reset-before-request"] } },
      async (start) => {
        const r = await start(get(`${dead},${a!.address}`), true).outcome();
        assert.equal(r.status, 200);
      },
    );
  });
});

test("a reset after the request reached the pod: reset-before-request does not retry, reset does", async () => {
  const slam = await startRawUpstream((socket) => socket.destroy());
  try {
    await withUpstreams(1, async ([a]) => {
      const cluster = overrideHost(slam.address, a!.address);
      await withRouter({ cluster, retry: { numRetries: 2 } }, async (start, stats) => {
        const r = await start(get(`${slam.address},${a!.address}`), true).outcome();
        assert.equal(r.local?.status, 503);
        assert.equal(
          r.local?.body,
          "upstream connect error or disconnect/reset before headers. reset reason: connection termination",
        );
        assert.equal(stats.get("upstream_rq_retry"), 0);
        assert.equal(a!.seen.length, 0);
      });
      await withRouter({ cluster, retry: { retryOn: ["reset"] } }, async (start) => {
        const r = await start(get(`${slam.address},${a!.address}`), true).outcome();
        assert.equal(r.status, 200);
        assert.deepEqual(r.hosts, [slam.address, a!.address]);
      });
    });
  } finally {
    await slam.close();
  }
});

test("a body over the buffer limit abandons retries (retry_or_shadow_abandoned)", async () => {
  const dead = `127.0.0.1:${await refusedPort()}`;
  await withUpstreams(1, async ([a]) => {
    await withRouter(
      { cluster: overrideHost(dead, a!.address), retry: { numRetries: 2 }, bufferLimitBytes: 8 },
      async (start, stats) => {
        const s = start(post(`${dead},${a!.address}`), false);
        s.router.decodeData(Buffer.from("12345"), false);
        s.router.decodeData(Buffer.from("67890"), true);
        const r = await s.outcome();
        assert.equal(r.local?.body, REFUSED, "no retry: the body could not be replayed");
        assert.equal(stats.get("retry_or_shadow_abandoned"), 1);
        assert.equal(stats.get("upstream_rq_retry"), 0);
        assert.equal(a!.seen.length, 0);
      },
    );
  });
});

test("overflowing the buffer while waiting to retry answers 507", async () => {
  const dead = `127.0.0.1:${await refusedPort()}`;
  await withRouter(
    {
      cluster: overrideHost(dead),
      retry: { numRetries: 1, baseIntervalMs: 60_000 },
      bufferLimitBytes: 8,
      random: () => 0.99,
    },
    async (start, stats) => {
      const s = start(post(dead), false);
      const deadline = Date.now() + 5000;
      while (stats.get("upstream_rq_retry") === 0) {
        assert.ok(Date.now() < deadline, "the first attempt never failed");
        await new Promise((r) => setTimeout(r, 5));
      }
      s.router.decodeData(Buffer.from("123456789"), false);
      const r = await s.outcome();
      assert.deepEqual(r.local, {
        status: 507,
        body: "exceeded request buffer limit while retrying upstream",
        details: "request_payload_exceeded_retry_buffer_limit",
      });
    },
  );
});

test("an upstream that dies mid-response resets the downstream: never a clean end", async () => {
  for (const head of [
    "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n",
    "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 100\r\n\r\nhello",
  ]) {
    const dying = await startRawUpstream((socket) => {
      socket.write(head);
      setTimeout(() => socket.destroy(), 20);
    });
    try {
      await withRouter(
        { cluster: overrideHost(dying.address), retry: { retryOn: ["reset"], numRetries: 3 } },
        async (start, stats) => {
          const r = await start(get(dying.address), true).outcome();
          assert.equal(r.status, 200);
          assert.equal(r.body, "hello");
          assert.equal(r.reset, true);
          assert.equal(r.ended, false);
          assert.equal(stats.get("upstream_rq_retry"), 0, "no retry once the response started");
        },
      );
    } finally {
      await dying.close();
    }
  }
});

test("an upstream that never answers hits the route timeout: 504", async () => {
  const silent = await startRawUpstream(() => {});
  try {
    await withRouter({ cluster: ORIGINAL_DST, upstreamTimeoutMs: 100 }, async (start, stats) => {
      const r = await start(get(silent.address), true).outcome();
      assert.deepEqual(r.local, {
        status: 504,
        body: "upstream request timeout",
        details: "response_timeout",
      });
      assert.equal(stats.get("upstream_rq_timeout"), 1);
    });
  } finally {
    await silent.close();
  }
});
