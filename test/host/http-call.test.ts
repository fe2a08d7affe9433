// proxy_http_call over real loopback HTTP: validation, token numbering, callback-only response
// access, failures as (token, 0, 0, 0), timeouts, and resuming a stream from the callback.
import { test } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { serializePairs, WasmResult } from "../../host/index.ts";
import { type Guest, loadPuppet, newEnvoy } from "./puppet.ts";
import { REQ, recorder } from "./recorder.ts";
import { withDeadline } from "../support/deadline.ts";

async function withServer(fn: (base: string, seen: string[]) => Promise<void>): Promise<void> {
  const seen: string[] = [];
  const server = http.createServer((req, res) => {
    let body = "";
    req.on("data", (c) => (body += c));
    req.on("end", () => {
      seen.push(
        `${req.method} ${req.url} host=${req.headers.host} len=${req.headers["content-length"] ?? "-"} body=${body}`,
      );
      if (req.url === "/slow") return void setTimeout(() => res.end("late"), 500).unref();
      res.writeHead(200, { "content-type": "text/plain", "x-table": "v7" });
      res.end("table-bytes");
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address() as AddressInfo;
  try {
    await fn(`http://127.0.0.1:${port}`, seen);
  } finally {
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  }
}

function httpCall(
  g: Guest,
  cluster: string,
  headers: Array<[string, string]>,
  body: string,
  timeout: number,
): { r: number; token: number } {
  const tp = g.alloc(4);
  const r = g.call(
    "proxy_http_call",
    ...g.put(cluster),
    ...g.put(serializePairs(headers)),
    ...g.put(body),
    ...g.put(new Uint8Array(0)),
    timeout,
    tp,
  );
  return { r, token: r === 0 ? g.u32(tp) : 0 };
}

const GET: Array<[string, string]> = [
  [":method", "POST"],
  [":path", "/table"],
  [":authority", "sidecar"],
];

test("http_call: validation, tokens 4, 8, …, response readable only in the callback, an unreachable cluster answers 503", async () => {
  await withServer(async (base, seen) => {
    const events: string[] = [];
    let resolve!: () => void;
    const allDone = new Promise<void>((r) => (resolve = r));
    const { plugin, guests } = await loadPuppet(
      newEnvoy(),
      {
        proxy_on_http_call_response: (g, root, token, nh, bodySize, ntr) => {
          const status = g.getHeader(6, ":status");
          const body = g.bufferBytes(4);
          events.push(
            `cb root=${root} token=${token} ${nh},${bodySize},${ntr} status=${status.value} x-table=${g.getHeader(6, "x-table").value} body=${body.text}`,
          );
          if (nh === 0) {
            const cp = g.alloc(4);
            const o = g.callOut("proxy_get_status", cp);
            events.push(`status ${g.u32(cp)} ${g.text(o.data)}`);
          }
          if (events.filter((e) => e.startsWith("cb")).length === 3) resolve();
        },
      },
      { clusters: { sidecar: base, dead: "http://127.0.0.1:1" } },
    );
    const g = guests.get(0)!;
    g.reset();
    assert.equal(httpCall(g, "nope", GET, "", 1000).r, WasmResult.BadArgument);
    assert.equal(httpCall(g, "sidecar", GET.slice(1), "", 1000).r, WasmResult.BadArgument);
    assert.equal(httpCall(g, "sidecar", GET, "", -1).r, WasmResult.BadArgument);
    const a = httpCall(g, "sidecar", GET, "hello", 0); // timeout 0 = none
    const b = httpCall(g, "sidecar", GET, "", 2000);
    const c = httpCall(g, "dead", GET, "", 2000);
    assert.deepEqual(
      [a, b, c].map((x) => x.token),
      [4, 8, 12],
    );
    // Outside the callback the response maps/buffer are unavailable.
    assert.equal(g.getHeader(6, ":status").r, WasmResult.BadArgument);
    assert.equal(g.bufferBytes(4).r, WasmResult.NotFound);
    await withDeadline(allDone, 10_000, "three http_call callbacks");
    const ok = events.filter((e) => e.includes("status=200"));
    assert.equal(ok.length, 2);
    assert.match(ok[0]!, /^cb root=1 token=(4|8) \d+,11,0 status=200 x-table=v7 body=table-bytes$/);
    // Envoy's async client turns a connect failure into the router's local reply, not a failure.
    const dead = events.find((e) => e.startsWith("cb root=1 token=12 "));
    assert.match(
      dead ?? "",
      /^cb root=1 token=12 3,\d+,0 status=503 x-table= body=upstream connect error or disconnect\/reset before headers\. reset reason: remote connection failure/,
    );
    assert.ok(seen.includes("POST /table host=sidecar len=5 body=hello"));
    assert.ok(seen.some((x) => x.startsWith("POST /table host=sidecar") && x.endsWith(" body=")));
    await plugin.shutdown();
  });
});

test("http_call timeout answers 504 (the router's reply); the callback can resume the originating stream", async () => {
  await withServer(async (base) => {
    const events: string[] = [];
    let streamId = 0;
    let finished!: () => void;
    const done = new Promise<void>((r) => (finished = r));
    const { plugin } = await loadPuppet(
      newEnvoy(),
      {
        proxy_on_request_headers: (g, id) => {
          streamId = id!;
          events.push(
            `call ${
              httpCall(
                g,
                "sidecar",
                [
                  [":method", "GET"],
                  [":path", "/slow"],
                  [":authority", "s"],
                ],
                "",
                50,
              ).r
            }`,
          );
          return 1; // rewritten to StopAllIterationAndWatermark
        },
        proxy_on_http_call_response: (g, _root, token, nh) => {
          events.push(`cb ${token} ${nh} ${g.getHeader(6, ":status").value} ${g.bufferBytes(4).text}`);
          g.call("proxy_set_effective_context", streamId);
          events.push(`set ${g.replaceHeader(0, "x-gateway-destination-endpoint", "10.0.0.9:8000")}`);
          events.push(`continue ${g.call("proxy_continue_stream", 0)}`);
        },
      },
      { clusters: { sidecar: base } },
    );
    const rec = recorder();
    const s = plugin.newHttpStream({
      ...rec,
      forwardRequestHeaders: (h, e) => {
        rec.forwardRequestHeaders(h, e);
        finished();
      },
    });
    s.decodeHeaders(REQ, true);
    assert.deepEqual(rec.events, []);
    await withDeadline(done, 10_000, "the timed-out call's callback resuming the stream");
    assert.deepEqual(events, ["call 0", "cb 4 3 504 upstream request timeout", "set 0", "continue 0"]);
    assert.ok(
      rec.reqHeaders[0]!.some(([k, v]) => k === "x-gateway-destination-endpoint" && v === "10.0.0.9:8000"),
    );
    s.destroy();
    await plugin.shutdown();
  });
});

test("http_call: a response cut off after its headers is a failure: (token, 0, 0, 0) and status 11 reset", async () => {
  // Envoy's async client reports a reset after the response began as onFailure(Reset)
  // (async_client_impl.cc AsyncRequestSharedImpl::onReset), which context.cc onHttpCallFailure
  // delivers as on_http_call_response(root, token, 0, 0, 0) with get_status = BrokenConnection.
  const server = http.createServer((req, res) => {
    req.resume();
    res.writeHead(200, { "content-length": "100" });
    res.write("partial");
    setTimeout(() => req.socket.destroy(), 20).unref();
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address() as AddressInfo;
  try {
    const events: string[] = [];
    let delivered!: () => void;
    const done = new Promise<void>((r) => (delivered = r));
    const { plugin, guests } = await loadPuppet(
      newEnvoy(),
      {
        proxy_on_http_call_response: (g, root, token, nh, body, ntr) => {
          const cp = g.alloc(4);
          const o = g.callOut("proxy_get_status", cp);
          events.push(
            `cb root=${root} token=${token} ${nh},${body},${ntr} status=${g.u32(cp)} ${g.text(o.data)}`,
          );
          events.push(`headers ${g.getHeader(6, ":status").r}`);
          delivered();
        },
      },
      { clusters: { cut: `http://127.0.0.1:${port}` } },
    );
    const g = guests.get(0)!;
    g.reset();
    assert.deepEqual(httpCall(g, "cut", GET, "", 0), { r: 0, token: 4 });
    await withDeadline(done, 10_000, "the cut-off call's callback");
    assert.deepEqual(events, [
      "cb root=1 token=4 0,0,0 status=11 reset",
      `headers ${WasmResult.BadArgument}`,
    ]);
    await plugin.shutdown();
  } finally {
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  }
});
