// Filter-manager semantics: header-map availability, status rewrites, local replies, body buffering.
import { test } from "node:test";
import assert from "node:assert/strict";
import { serializePairs, type HeaderList, WasmResult } from "../../host/index.ts";
import { loadPuppet, newEnvoy } from "./puppet.ts";
import { REQ, recorder } from "./recorder.ts";

const enc = (s: string) => new TextEncoder().encode(s);

test("request headers: readable/mutable only in on_request_headers; BadArgument later; missing key → NotFound", async () => {
  const seen: Array<[string, number, string?]> = [];
  const { plugin } = await loadPuppet(newEnvoy(), {
    proxy_on_request_headers: (g) => {
      seen.push(["get x-model", g.getHeader(0, "X-Model").r, g.getHeader(0, "x-model").value]);
      seen.push(["get missing", g.getHeader(0, "nope").r]);
      seen.push(["replace", g.replaceHeader(0, "x-gateway-destination-endpoint", "10.0.0.7:8000")]);
      seen.push(["add", g.addHeader(0, "x-extra", "1")]);
      seen.push(["map type 8", g.getHeader(8, "x").r]);
      return 0;
    },
    proxy_on_response_headers: (g) => {
      seen.push(["req get in response", g.getHeader(0, "x-model").r]);
      seen.push(["req replace in response", g.replaceHeader(0, "a", "b")]);
      seen.push(["resp get", g.getHeader(2, ":status").r, g.getHeader(2, ":status").value]);
      return 0;
    },
    proxy_on_log: (g) => {
      seen.push(["log get", g.getHeader(0, "x-model").r, g.getHeader(0, "x-model").value]);
      seen.push(["log replace", g.replaceHeader(0, "x-model", "z")]);
      seen.push(["log trailers", g.getHeader(1, "x").r]);
    },
  });
  const rec = recorder();
  const s = plugin.newHttpStream(rec);
  s.decodeHeaders([...REQ, ["x-gateway-destination-endpoint", "evil"]], true);
  s.encodeHeaders([[":status", "200"]], true);
  s.destroy();
  assert.deepEqual(seen, [
    ["get x-model", 0, "m1"],
    ["get missing", 1],
    ["replace", 0],
    ["add", 0],
    ["map type 8", 2],
    ["req get in response", 2],
    ["req replace in response", 2],
    ["resp get", 0, "200"],
    ["log get", 0, "m1"],
    ["log replace", 2],
    ["log trailers", 1],
  ]);
  const fwd = rec.reqHeaders[0]!;
  assert.deepEqual(
    fwd.filter(([k]) => k === "x-gateway-destination-endpoint"),
    [["x-gateway-destination-endpoint", "10.0.0.7:8000"]],
  );
  assert.deepEqual(fwd.at(-1), ["x-extra", "1"]);
  await plugin.shutdown();
});

test("header pairs: serialization format, byte size, set_header_map_pairs and the 1024-pair limit", async () => {
  const out: unknown[] = [];
  const { plugin } = await loadPuppet(newEnvoy(), {
    proxy_on_request_headers: (g) => {
      const pairs = g.callOut("proxy_get_header_map_pairs", 0);
      out.push(
        Buffer.from(pairs.data).equals(
          Buffer.from(
            serializePairs([
              [":path", "/a"],
              ["k", "vv"],
            ]),
          ),
        ),
      );
      const sp = g.alloc(4);
      g.call("proxy_get_header_map_size", 0, sp);
      out.push(g.u32(sp)); // ":path"+"/a"+"k"+"vv" = 5+2+1+2
      // > 1024 pairs decode silently as an empty list.
      const many = serializePairs(Array.from({ length: 1025 }, (_, i) => [`h${i}`, "v"] as [string, string]));
      out.push(g.call("proxy_set_header_map_pairs", 0, ...g.put(many)));
      out.push(g.callOut("proxy_get_header_map_pairs", 0).data.length);
      out.push(g.call("proxy_set_header_map_pairs", 0, ...g.put(serializePairs([["New", "1"]]))));
      return 0;
    },
  });
  const rec = recorder();
  const s = plugin.newHttpStream(rec);
  s.decodeHeaders(
    [
      [":path", "/a"],
      ["k", "vv"],
    ],
    true,
  );
  s.destroy();
  assert.deepEqual(out, [true, 10, 0, 0, 0]);
  assert.deepEqual(rec.reqHeaders[0], [["new", "1"]]);
  await plugin.shutdown();
});

test("StopIteration(1) from headers is rewritten to StopAllIteration unless allowed", async () => {
  for (const allow of [false, true]) {
    const calls: string[] = [];
    const { plugin } = await loadPuppet(
      newEnvoy(),
      {
        proxy_on_request_headers: () => 1,
        proxy_on_request_body: (g, _id, size, eos) => {
          calls.push(`body ${size} ${eos}`);
          if (!eos) return 1;
          g.replaceHeader(0, "x-picked", "yes"); // still available: headers were never continued
          return 0;
        },
      },
      { allowOnHeadersStopIteration: allow },
    );
    const rec = recorder();
    const s = plugin.newHttpStream(rec);
    s.decodeHeaders(REQ, false);
    s.decodeData(enc("ab"), false);
    s.decodeData(enc("cd"), true);
    if (allow) {
      // The plugin sees the body, buffered: sizes cover the whole buffered body.
      assert.deepEqual(calls, ["body 2 0", "body 4 1"]);
      assert.deepEqual(rec.events, ["reqH eos=false", "reqD 4 eos=true"]);
      assert.ok(rec.reqHeaders[0]!.some(([k, v]) => k === "x-picked" && v === "yes"));
    } else {
      // StopAllIterationAndWatermark: nothing reaches the plugin or the upstream.
      assert.deepEqual(calls, []);
      assert.deepEqual(rec.events, []);
    }
    s.destroy();
    await plugin.shutdown();
  }
});

test("continue_stream after StopAll forwards headers and hands the buffered body to the plugin", async () => {
  const calls: string[] = [];
  let streamId = 0;
  const { plugin, guests } = await loadPuppet(newEnvoy(), {
    proxy_on_request_headers: (_g, id) => {
      streamId = id!;
      return 4;
    },
    proxy_on_request_body: (_g, _id, size, eos) => {
      calls.push(`body ${size} ${eos}`);
      return 0;
    },
    proxy_on_tick: (g) => {
      calls.push(`effective ${g.call("proxy_set_effective_context", streamId)}`);
      calls.push(`continue ${g.call("proxy_continue_stream", 0)}`);
      calls.push(`bad effective ${g.call("proxy_set_effective_context", 999)}`);
    },
  });
  const rec = recorder();
  const s = plugin.newHttpStream(rec);
  s.decodeHeaders(REQ, false);
  s.decodeData(enc("hello"), true);
  assert.deepEqual(rec.events, []);
  assert.equal(guests.get(0)!.call("proxy_set_tick_period_milliseconds", 0), 0);
  // Drive the root callback directly (the same path a tick takes).
  const p = plugin as unknown as {
    vms: Array<{ callRoot(name: string, ...args: number[]): unknown }>;
    rootContextIds: number[];
  };
  p.vms[0]!.callRoot("proxy_on_tick", p.rootContextIds[0]!);
  assert.deepEqual(calls, ["effective 0", "continue 0", "bad effective 2", "body 5 1"]);
  assert.deepEqual(rec.events, ["reqH eos=false", "reqD 5 eos=true"]);
  s.destroy();
  await plugin.shutdown();
});

test("send_local_response is deferred, adds headers, rewrites whitespace in details, forces Stop", async () => {
  const order: string[] = [];
  const { plugin } = await loadPuppet(newEnvoy(), {
    proxy_on_request_headers: (g) => {
      const r = g.sendLocalResponse(
        429,
        "too many requests",
        "slow down",
        serializePairs([["retry-after", "1"]]),
      );
      order.push(`called ${r}`);
      return 0; // ignored: a local reply forces Stop
    },
  });
  const rec = recorder();
  const s = plugin.newHttpStream({
    ...rec,
    localReply: (r) => {
      order.push("reply");
      rec.localReply(r);
    },
  });
  s.decodeHeaders(REQ, false);
  s.decodeData(enc("ignored"), true);
  s.destroy();
  assert.deepEqual(order, ["called 0", "reply"]);
  assert.deepEqual(rec.events, ["local 429 too_many_requests"]);
  assert.deepEqual(rec.replies[0]!.headers, [
    ["retry-after", "1"],
    ["content-length", "9"],
    ["content-type", "text/plain"],
  ]);
  assert.equal(new TextDecoder().decode(rec.replies[0]!.body), "slow down");
  await plugin.shutdown();
});

test("send_local_response after response headers went out resets the stream", async () => {
  const { plugin } = await loadPuppet(newEnvoy(), {
    proxy_on_response_body: (g) => {
      g.sendLocalResponse(500, "late", "");
      return 0;
    },
  });
  const rec = recorder();
  const s = plugin.newHttpStream(rec);
  s.decodeHeaders(REQ, true);
  s.encodeHeaders([[":status", "200"]], false);
  s.encodeData(enc("x"), true);
  assert.deepEqual(rec.events, ["reqH eos=true", "respH eos=false", "reset late"]);
  s.destroy();
  await plugin.shutdown();
});

test("body: get_buffer_bytes clamps, set_buffer_bytes prepends/replaces/appends, BadArgument in the middle", async () => {
  const out: unknown[] = [];
  const { plugin } = await loadPuppet(newEnvoy(), {
    proxy_on_request_body: (g, _id, _size, eos) => {
      if (!eos) return 1;
      out.push(g.bufferBytes(0).text);
      out.push(g.bufferBytes(0, 2, 3).text);
      out.push(g.bufferBytes(0, 100, 3));
      out.push(g.bufferBytes(0, 1, 0xffffffff).r); // start + length overflows
      const lp = g.alloc(4);
      const fp = g.alloc(4);
      out.push([g.call("proxy_get_buffer_status", 0, lp, fp), g.u32(lp), g.u32(fp)]);
      out.push(g.call("proxy_set_buffer_bytes", 0, 0, 0, ...g.put("<<")));
      out.push(g.call("proxy_set_buffer_bytes", 0, 1000, 0, ...g.put(">>")));
      out.push(g.call("proxy_set_buffer_bytes", 0, 3, 1, ...g.put("!")));
      out.push(g.bufferBytes(0).text);
      out.push(g.call("proxy_set_buffer_bytes", 6, 0, 0, ...g.put("x"))); // immutable
      out.push(g.bufferBytes(9).r);
      out.push(g.bufferBytes(2).r);
      return 0;
    },
  });
  const rec = recorder();
  const s = plugin.newHttpStream(rec);
  s.decodeHeaders(REQ, false);
  s.decodeData(enc("abc"), false);
  s.decodeData(enc("def"), true);
  assert.deepEqual(out, ["abcdef", "cde", { r: 0, text: "" }, 2, [0, 6, 0], 0, 0, 2, "<<abcdef>>", 2, 2, 1]);
  assert.deepEqual(rec.reqData, ["<<abcdef>>"]);
  s.destroy();
  await plugin.shutdown();
});

test("buffering beyond the limit: 413 for requests, 500 for responses", async () => {
  const { plugin } = await loadPuppet(
    newEnvoy(),
    { proxy_on_request_body: () => 1, proxy_on_response_body: () => 1 },
    { bufferLimitBytes: 8 },
  );
  const a = recorder();
  const s = plugin.newHttpStream(a);
  s.decodeHeaders(REQ, false);
  s.decodeData(enc("12345"), false);
  s.decodeData(enc("67890"), false);
  assert.deepEqual(a.events, ["reqH eos=false", "local 413 request_payload_too_large"]);
  s.destroy();
  const b = recorder();
  const s2 = plugin.newHttpStream(b);
  s2.decodeHeaders(REQ, true);
  s2.encodeHeaders([[":status", "200"]], false);
  s2.encodeData(enc("123456789"), false);
  // Response headers were already forwarded (headers returned Continue), so Envoy can only reset.
  assert.deepEqual(b.events, ["reqH eos=true", "respH eos=false", "reset response_payload_too_large"]);
  s2.destroy();
  const { plugin: p2 } = await loadPuppet(
    newEnvoy(),
    { proxy_on_response_headers: () => 3 },
    { bufferLimitBytes: 8 },
  );
  const c = recorder();
  const s3 = p2.newHttpStream(c);
  s3.decodeHeaders(REQ, true);
  s3.encodeHeaders([[":status", "200"]], false);
  s3.encodeData(enc("123456789"), false);
  assert.deepEqual(c.events, ["reqH eos=true", "local 500 response_payload_too_large"]);
  s3.destroy();
  // StopIterationAndWatermark / StopAllIterationAndWatermark only apply flow control: no error reply.
  const { plugin: p3 } = await loadPuppet(
    newEnvoy(),
    { proxy_on_request_headers: () => 1, proxy_on_request_body: () => 2 },
    { bufferLimitBytes: 4, allowOnHeadersStopIteration: true },
  );
  const w = recorder();
  const s4 = p3.newHttpStream(w);
  s4.decodeHeaders(REQ, false);
  s4.decodeData(enc("123456789"), false);
  assert.deepEqual(w.events, []);
  s4.destroy();
  await plugin.shutdown();
  await p2.shutdown();
  await p3.shutdown();
});

test("ContinueAndEndStream (2) from headers is plain Continue, as Envoy's status conversion makes it", async () => {
  const { plugin } = await loadPuppet(newEnvoy(), { proxy_on_request_headers: () => 2 });
  const rec = recorder();
  const s = plugin.newHttpStream(rec);
  s.decodeHeaders(REQ, false);
  s.decodeData(enc("x"), true);
  assert.deepEqual(rec.events, ["reqH eos=false", "reqD 1 eos=true"]);
  s.destroy();
  await plugin.shutdown();
});

test("a local reply passes through the plugin's own on_response_headers/body, which may edit it", async () => {
  const seen: string[] = [];
  const { plugin } = await loadPuppet(newEnvoy(), {
    proxy_on_request_headers: (g) => {
      g.sendLocalResponse(404, "no_model", "missing");
      return 0;
    },
    proxy_on_response_headers: (g, _id, n, eos) => {
      seen.push(`resp headers n=${n} eos=${eos} status=${g.getHeader(2, ":status").value}`);
      g.addHeader(2, "x-gateway-destination-endpoint-served", "none");
      return 0;
    },
    proxy_on_response_body: (g, _id, size, eos) => {
      seen.push(`resp body ${size} ${eos} ${g.bufferBytes(1).text}`);
      return 0;
    },
  });
  const rec = recorder();
  const s = plugin.newHttpStream(rec);
  s.decodeHeaders(REQ, true);
  s.encodeHeaders([[":status", "200"]], true); // upstream never asked: ignored after the local reply
  s.destroy();
  assert.deepEqual(seen, ["resp headers n=3 eos=0 status=404", "resp body 7 1 missing"]);
  assert.deepEqual(rec.events, ["local 404 no_model"]);
  assert.ok(
    rec.replies[0]!.headers.some(([k, v]) => k === "x-gateway-destination-endpoint-served" && v === "none"),
  );
  await plugin.shutdown();
});

test("request headers stay readable after a body callback resumed the stream, not after Continue or continue_stream", async () => {
  // Envoy context.cc: request_headers_ is cleared only when on_request_headers returns Continue or on
  // continue_stream (of either direction); a stream resumed by on_request_body keeps the map.
  const seen: Array<[string, number]> = [];
  let mode: "body" | "headers" | "continue" = "body";
  const { plugin } = await loadPuppet(
    newEnvoy(),
    {
      proxy_on_request_headers: () => (mode === "headers" ? 0 : 1),
      proxy_on_request_body: (g) => {
        if (mode === "continue") {
          g.call("proxy_continue_stream", 1); // the response direction still clears the request maps
          return 1;
        }
        return 0;
      },
      proxy_on_response_headers: (g) => {
        seen.push([`${mode} get`, g.getHeader(0, "x-model").r]);
        seen.push([`${mode} replace`, g.replaceHeader(0, "x-late", "1")]);
        seen.push([`${mode} resp get`, g.getHeader(2, ":status").r]);
        return 0;
      },
    },
    { allowOnHeadersStopIteration: true },
  );
  for (const m of ["body", "headers", "continue"] as const) {
    mode = m;
    const s = plugin.newHttpStream(recorder());
    s.decodeHeaders(REQ, false);
    s.decodeData(enc("x"), true);
    s.encodeHeaders([[":status", "200"]], true);
    s.destroy();
  }
  assert.deepEqual(seen, [
    ["body get", 0],
    ["body replace", 0],
    ["body resp get", 0],
    ["headers get", 2],
    ["headers replace", 2],
    ["headers resp get", 0],
    ["continue get", 2],
    ["continue replace", 2],
    ["continue resp get", 0],
  ]);
  await plugin.shutdown();
});

test("trailers: the body has no end_of_stream, on_request_trailers decides; Stop holds until continue_stream", async () => {
  const calls: string[] = [];
  let stopAtTrailers = false;
  const { plugin, guests } = await loadPuppet(
    newEnvoy(),
    {
      proxy_on_request_headers: () => 1,
      proxy_on_request_body: (_g, _id, size, eos) => {
        calls.push(`body ${size} eos=${eos}`);
        return 1;
      },
      proxy_on_request_trailers: (g, _id, n) => {
        calls.push(`trailers n=${n} t=${g.getHeader(1, "x-t").value}`);
        g.replaceHeader(0, "x-decided", "at-trailers");
        return stopAtTrailers ? 1 : 0;
      },
    },
    { allowOnHeadersStopIteration: true },
  );
  for (const stop of [false, true]) {
    stopAtTrailers = stop;
    calls.length = 0;
    const trailers: HeaderList[] = [];
    const rec = recorder();
    const s = plugin.newHttpStream({ ...rec, forwardRequestTrailers: (t) => trailers.push(t) });
    s.decodeHeaders(REQ, false);
    s.decodeData(enc("abc"), false);
    s.decodeTrailers([["X-T", "v"]]);
    assert.deepEqual(calls, ["body 3 eos=0", "trailers n=1 t=v"]);
    if (stop) {
      assert.deepEqual(rec.events, [], "held until continue_stream");
      const g = guests.get(0)!;
      g.call("proxy_set_effective_context", s.contextId);
      assert.equal(g.call("proxy_continue_stream", 0), 0);
      s.encodeData(new Uint8Array(0), false); // any host entry drains the deferred continue
    }
    assert.deepEqual(rec.events, ["reqH eos=false", "reqD 3 eos=false"]);
    assert.ok(rec.reqHeaders[0]!.some(([k, v]) => k === "x-decided" && v === "at-trailers"));
    assert.deepEqual(trailers, [[["x-t", "v"]]]);
    s.destroy();
  }
  await plugin.shutdown();
});

test("upstream.address / upstream.port: absent before the router picks, then the last attempt's host", async () => {
  const seen: Array<[string, number, string]> = [];
  const { plugin } = await loadPuppet(newEnvoy(), {
    proxy_on_request_headers: (g) => {
      const p = g.property("upstream\0address");
      seen.push(["request", p.r, g.text(p.data)]);
      return 0;
    },
    proxy_on_response_headers: (g) => {
      const a = g.property("upstream\0address");
      const port = g.property("upstream\0port");
      const n =
        port.r === 0 ? new DataView(port.data.buffer, port.data.byteOffset).getBigInt64(0, true) : -1n;
      seen.push(["response", a.r, `${g.text(a.data)} ${n}`]);
      return 0;
    },
  });
  const s = plugin.newHttpStream(recorder());
  s.decodeHeaders(REQ, true);
  s.setUpstreamHost("10.0.0.1", 8000); // first attempt: refused
  s.setUpstreamHost("fd00::2", 9000); // the retry that answered
  s.encodeHeaders([[":status", "200"]], true);
  s.destroy();
  assert.deepEqual(seen, [
    ["request", 1, ""],
    ["response", 0, "[fd00::2]:9000 9000"],
  ]);
  await plugin.shutdown();
});

test("modifying request headers clears the route cache; response-header edits do not", async () => {
  // Envoy context.h onHeadersModified: any add/replace/remove/set on the request headers of an
  // ABI ≤ 0.2.1 plugin clears the route cache.
  const { plugin } = await loadPuppet(newEnvoy(), {
    proxy_on_request_headers: (g) => {
      g.getHeader(0, "x-model"); // reading does not count
      g.replaceHeader(0, "x-a", "1");
      g.call("proxy_remove_header_map_value", 0, ...g.put("x-model"));
      return 0;
    },
    proxy_on_response_headers: (g) => {
      g.addHeader(2, "x-b", "1");
      return 0;
    },
  });
  const s = plugin.newHttpStream(recorder());
  s.decodeHeaders(REQ, true);
  s.encodeHeaders([[":status", "200"]], true);
  assert.equal((s as unknown as { routeCacheClears: number }).routeCacheClears, 2);
  s.destroy();
  await plugin.shutdown();
});

test("close_stream resets the stream once the callback returns, with details wasm_close_stream", async () => {
  const seen: string[] = [];
  const { plugin } = await loadPuppet(newEnvoy(), {
    proxy_on_request_headers: (g) => {
      seen.push(`close ${g.call("proxy_close_stream", 0)}`);
      seen.push(`bad type ${g.call("proxy_close_stream", 4)}`);
      seen.push("returned");
      return 1; // rewritten to StopAllIterationAndWatermark: nothing goes upstream first
    },
  });
  const rec = recorder();
  const s = plugin.newHttpStream({
    ...rec,
    reset: (reason) => {
      seen.push("reset");
      rec.reset!(reason);
    },
  });
  s.decodeHeaders(REQ, true);
  assert.deepEqual(seen, ["close 0", `bad type ${WasmResult.BadArgument}`, "returned", "reset"]);
  assert.deepEqual(rec.events, ["reset wasm_close_stream"]);
  s.destroy();
  await plugin.shutdown();
});

test("request headers stay readable after the trailers callback resumed the stream", async () => {
  // context.cc decodeTrailers clears only request_trailers_ on Continue; request_headers_ stays set
  // because on_request_headers stopped.
  const seen: Array<[string, number]> = [];
  const { plugin } = await loadPuppet(
    newEnvoy(),
    {
      proxy_on_request_headers: () => 1,
      proxy_on_request_body: () => 1,
      proxy_on_request_trailers: () => 0,
      proxy_on_response_headers: (g) => {
        seen.push(["get", g.getHeader(0, "x-model").r]);
        seen.push(["replace", g.replaceHeader(0, "x-late", "1")]);
        return 0;
      },
    },
    { allowOnHeadersStopIteration: true },
  );
  const s = plugin.newHttpStream(recorder());
  s.decodeHeaders(REQ, false);
  s.decodeData(enc("abc"), false);
  s.decodeTrailers([["x-t", "v"]]);
  s.encodeHeaders([[":status", "200"]], true);
  s.destroy();
  assert.deepEqual(seen, [
    ["get", 0],
    ["replace", 0],
  ]);
  await plugin.shutdown();
});
