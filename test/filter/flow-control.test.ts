// Flow control (issue 22) with the real build/filter.wasm in the host: on a pool without room a request
// is held (stream stopped, nothing sent), the root's tick dispatches held requests when a snapshot shows
// room — highest band first, rotating over fairness ids — and answers them on TTL, limits or a pool
// gone; a client that leaves frees its place; N worker VMs share the room through shared data.
import { test } from "node:test";
import assert from "node:assert/strict";
import type { HeaderList } from "../../host/index.ts";
import { renderPrometheus } from "../../host/prometheus.ts";
import { statsConfig } from "../../gateway/stats-tags.ts";
import type { SnapshotFixture } from "../support/snapshot-fixture.ts";
import { DEST, harness, OBJECTIVES, pool } from "../support/flow-harness.ts";
import type { Held } from "../support/flow-harness.ts";

const enc = new TextEncoder();

const SATURATED: [number, number] = [9, 9];
/** One more request fits (endpoint 1 at the limit). */
const ROOM_ONE: [number, number] = [5, 9];

function status(h: Held): number | undefined {
  return h.reply?.status;
}

function header(hs: HeaderList | undefined, name: string): string | undefined {
  return hs?.find(([k]) => k === name)?.[1];
}

test("a saturated pool holds the request: no reply, nothing upstream; room dispatches it with a destination", async () => {
  const t = await harness();
  t.push(pool(SATURATED));
  const a = t.send("a");
  t.tick(20);
  assert.equal(a.reply, undefined);
  assert.equal(a.forwarded, undefined);
  assert.equal(a.upstream.length, 0);
  t.push(pool(ROOM_ONE));
  t.tick();
  assert.equal(a.reply, undefined);
  assert.equal(header(a.forwarded, DEST), "10.0.0.1:8000");
  // The body that waited in Envoy follows the headers, whole.
  assert.equal(
    Buffer.concat(a.upstream).toString(),
    JSON.stringify({ model: "m", messages: [{ role: "user", content: "a" }] }),
  );
  t.finish(a);
});

test("flow control off (no FLOW_CONTROL section): a saturated pool routes priority ≥ 0 and sheds < 0 at once, as before", async () => {
  const t = await harness();
  t.push(pool(SATURATED, { flowControl: undefined }));
  const a = t.send("a");
  const b = t.send("b", { objective: "sheddable" });
  assert.ok(header(a.forwarded, DEST));
  assert.equal(status(b), 429);
});

test("the higher band is dispatched first when room appears", async () => {
  const t = await harness();
  t.push(pool(SATURATED));
  const low = t.send("low", { objective: "sheddable" });
  const std = t.send("std", { objective: "standard" });
  const high = t.send("high", { objective: "critical" });
  t.tick();
  t.push(pool(ROOM_ONE));
  t.tick();
  assert.ok(high.forwarded, "critical first");
  assert.equal(std.forwarded, undefined);
  assert.equal(low.forwarded, undefined);
  t.push(pool(ROOM_ONE));
  t.tick();
  assert.ok(std.forwarded, "standard next");
  assert.equal(low.forwarded, undefined);
  t.push(pool(ROOM_ONE));
  t.tick();
  assert.ok(low.forwarded, "sheddable last: it waited rather than being shed");
});

test("inside a band, dispatch rotates over fairness ids, FCFS per id (global-strict is one FIFO)", async () => {
  for (const fairness of ["round-robin", "global-strict"] as const) {
    const t = await harness();
    t.push(pool(SATURATED, { flowControl: { fairness } }));
    const sent = [
      t.send("x1", { fairness: "x" }),
      t.send("x2", { fairness: "x" }),
      t.send("x3", { fairness: "x" }),
      t.send("y1", { fairness: "y" }),
      t.send("z1", { fairness: "z" }),
    ];
    const order: string[] = [];
    for (let k = 0; k < sent.length; k++) {
      t.push(pool(ROOM_ONE, { flowControl: { fairness } }));
      t.tick();
      for (const h of sent) if (h.forwarded && !order.includes(h.name)) order.push(h.name);
    }
    assert.deepEqual(
      order,
      fairness === "round-robin" ? ["x1", "y1", "z1", "x2", "x3"] : ["x1", "x2", "x3", "y1", "z1"],
      fairness,
    );
  }
});

test("past the TTL: 429 for a sheddable request, 503 otherwise, with Retry-After and an OpenAI-style body", async () => {
  const t = await harness();
  t.push(pool(SATURATED, { flowControl: { defaultTtlMs: 100 } }));
  const low = t.send("low", { objective: "sheddable" });
  const std = t.send("std");
  t.tick(95);
  assert.equal(low.reply, undefined);
  t.tick(10);
  for (const [h, code, type] of [
    [low, 429, "rate_limit_exceeded"],
    [std, 503, "service_unavailable"],
  ] as const) {
    assert.equal(status(h), code);
    assert.equal(h.reply?.headers.find(([k]) => k === "retry-after")?.[1], "1");
    assert.equal(h.reply?.headers.find(([k]) => k === "content-type")?.[1], "application/json");
    const body = JSON.parse(new TextDecoder().decode(h.reply?.body)) as {
      error: { type: string; code: string; message: string };
    };
    assert.equal(body.error.type, type);
    assert.equal(body.error.code, "queue_timeout");
    assert.equal(h.forwarded, undefined);
  }
});

test("a band's limit: the request beyond it is refused at once (503, or 429 when sheddable)", async () => {
  const t = await harness();
  const fc = {
    bands: [{ priority: 0, maxRequests: 1, maxBytes: 0, ttlMs: 0 }],
    defaultBand: { maxRequests: 1, maxBytes: 0, ttlMs: 0 },
  };
  t.push(pool(SATURATED, { flowControl: fc }));
  const a = t.send("a");
  const b = t.send("b");
  const c = t.send("c", { objective: "sheddable" });
  const d = t.send("d", { objective: "sheddable" });
  assert.equal(a.reply, undefined);
  assert.equal(status(b), 503);
  assert.equal(header(b.reply?.headers, "retry-after"), "1");
  assert.match(new TextDecoder().decode(b.reply?.body), /"code":"queue_full"/);
  assert.equal(c.reply, undefined);
  assert.equal(status(d), 429);
});

test("a byte limit counts the bytes a held request keeps", async () => {
  const t = await harness();
  t.push(pool(SATURATED, { flowControl: { maxBytes: 150 } }));
  const a = t.send("a", { content: "x".repeat(60) });
  const b = t.send("b", { content: "y".repeat(60) });
  assert.equal(a.reply, undefined);
  assert.equal(status(b), 503);
});

test("a client that disconnects while queued frees its place at once", async () => {
  const t = await harness();
  const fc = { defaultBand: { maxRequests: 1, maxBytes: 0, ttlMs: 0 } };
  t.push(pool(SATURATED, { flowControl: fc }));
  const a = t.send("a");
  assert.equal(status(t.send("b")), 503, "the band is full");
  a.stream.destroy(); // downstream reset: Envoy runs on_log, on_done, on_delete
  const c = t.send("c");
  assert.equal(c.reply, undefined, "the freed place takes the next request");
  t.push(pool(ROOM_ONE, { flowControl: fc }));
  t.tick();
  assert.ok(c.forwarded);
  assert.equal(a.forwarded, undefined, "the one that left is never dispatched");
});

test("a snapshot that removes the pool's endpoints answers every held request with 503 at once", async () => {
  const t = await harness();
  t.push(pool(SATURATED));
  const a = t.send("a");
  const b = t.send("b", { objective: "critical" });
  const c = t.send("c", { objective: "sheddable" });
  t.tick();
  t.push({ endpoints: [], objectives: OBJECTIVES, flowControl: {} });
  t.tick();
  assert.equal(status(a), 503);
  assert.equal(status(b), 503);
  assert.equal(status(c), 503, "a lost pool is no capacity decision: sheddable requests get 503 too");
  assert.match(new TextDecoder().decode(a.reply?.body), /no_ready_endpoint/);
});

test("requests finishing on this worker free room for the held ones", async () => {
  const t = await harness();
  t.push(pool(ROOM_ONE));
  const a = t.send("a");
  assert.ok(a.forwarded, "the one unit of room");
  const b = t.send("b");
  t.tick(20);
  assert.equal(b.forwarded, undefined);
  t.finish(a);
  t.tick();
  assert.ok(b.forwarded, "a's completion made room");
});

test("N worker VMs share the room: a snapshot with room for 3 dispatches 3 in all, not 3 per worker", async () => {
  const workers = 4;
  const t = await harness(workers);
  t.push(pool(SATURATED));
  const held: Held[] = [];
  for (let w = 0; w < workers; w++)
    for (let k = 0; k < 5; k++) held.push(t.send(`w${w}-${k}`, { worker: w }));
  t.tick(20);
  assert.equal(held.filter((h) => h.forwarded).length, 0);
  t.push(pool([3, 9])); // room = 6 − 3 = 3
  t.tick(50);
  assert.equal(held.filter((h) => h.forwarded).length, 3);
  t.push(pool([4, 9])); // a new snapshot: room 2, counted afresh
  t.tick(50);
  assert.equal(held.filter((h) => h.forwarded).length, 5);
});

test("metrics: queue size and bytes by band across workers, outcomes by band, queue time, pool saturation", async () => {
  const t = await harness(2);
  t.push(pool(SATURATED, { flowControl: { defaultTtlMs: 100 } }));
  const a = t.send("a", { objective: "critical", worker: 0 });
  t.send("b", { worker: 1 });
  const c = t.send("c", { worker: 1 });
  const text = () => renderPrometheus(t.proc.metrics, statsConfig());
  const value = (name: string, labels: string) =>
    Number(text().match(new RegExp(`^${name}\\{${labels}\\} (\\d+)$`, "m"))?.[1]);
  assert.equal(value("inference_extension_flow_control_queue_size", 'priority="0"'), 2);
  assert.equal(value("inference_extension_flow_control_queue_size", 'priority="1"'), 1);
  assert.ok(value("inference_extension_flow_control_queue_bytes", 'priority="0"') > 0);
  assert.match(text(), /^inference_extension_flow_control_pool_saturation(\{\})? 1$/m);
  c.stream.destroy();
  t.push(pool(ROOM_ONE, { flowControl: { defaultTtlMs: 100 } }));
  t.tick();
  assert.ok(a.forwarded);
  t.tick(200);
  assert.equal(value("inference_extension_flow_control_queue_size", 'priority="0"'), 0);
  assert.equal(value("inference_extension_flow_control_queue_bytes", 'priority="0"'), 0);
  for (const [p, outcome, n] of [
    ["1", "queued", 1],
    ["1", "dispatched", 1],
    ["0", "queued", 2],
    ["0", "cancelled", 1],
    ["0", "expired", 1],
  ] as const)
    assert.equal(
      value("epp_wasm_flow_control_requests_total", `outcome="${outcome}",priority="${p}"`),
      n,
      `${p} ${outcome}`,
    );
  assert.match(
    text(),
    /^inference_extension_flow_control_request_queue_duration_milliseconds_count\{priority="0"\} 1$/m,
  );
});

/** xorshift32: the fuzz test's seeded source. */
function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x / 0x100000000;
  };
}

test("fuzz: random arrivals, split bodies, disconnects, snapshots, ticks and completions over 3 workers never trap; every stream ends once", async () => {
  const workers = 3;
  for (const seed of [1, 2, 3]) {
    const t = await harness(workers);
    const r = rng(seed);
    const pick = <T>(a: readonly T[]): T => a[Math.floor(r() * a.length)]!;
    const all: Held[] = [];
    const outcomes = new Map<Held, number>();
    const pending: { h: Held; rest: Uint8Array }[] = [];
    const snapshot = (): SnapshotFixture => {
      const gone = r() < 0.05;
      const fc =
        r() < 0.1
          ? undefined
          : {
              fairness: pick(["round-robin", "global-strict"] as const),
              maxRequests: pick([0, 5, 20]),
              maxBytes: pick([0, 2000, 20000]),
              defaultTtlMs: pick([0, 30, 200]),
              defaultBand: { maxRequests: pick([0, 3, 10]), maxBytes: pick([0, 5000]), ttlMs: pick([0, 50]) },
              bands:
                r() < 0.5
                  ? []
                  : [{ priority: 1, maxRequests: pick([0, 2]), maxBytes: 0, ttlMs: pick([0, 20]) }],
            };
      return {
        endpoints: gone
          ? []
          : [
              { address: "10.0.0.1", waiting: Math.floor(r() * 10), ready: r() > 0.05 },
              { address: "10.0.0.2", waiting: Math.floor(r() * 10) },
            ],
        objectives: OBJECTIVES,
        ...(fc === undefined ? {} : { flowControl: fc }),
      };
    };
    t.push(snapshot());
    for (let step = 0; step < 600; step++) {
      const op = r();
      if (op < 0.35) {
        const name = `s${seed}-${step}`;
        const h = t.open(name, Math.floor(r() * workers));
        const body = enc.encode(
          JSON.stringify({
            model: "m",
            messages: [{ role: "user", content: "x".repeat(Math.floor(r() * 1500)) }],
          }),
        );
        const headers: HeaderList = [
          [":method", "POST"],
          [":path", "/v1/chat/completions"],
          [":authority", "gw"],
          [":scheme", "http"],
          ["content-length", String(body.length)],
          ["x-gateway-inference-objective", pick(["critical", "standard", "sheddable", "nope"])],
          ["x-gateway-inference-fairness-id", pick(["a", "b", "c"])],
        ];
        h.stream.decodeHeaders(headers, false);
        const cut = r() < 0.3 ? Math.floor(body.length / 2) : body.length;
        h.stream.decodeData(body.subarray(0, cut), cut === body.length);
        if (cut < body.length) pending.push({ h, rest: body.subarray(cut) });
        all.push(h);
      } else if (op < 0.45 && pending.length > 0) {
        const { h, rest } = pending.splice(Math.floor(r() * pending.length), 1)[0]!;
        if (!h.ended) h.stream.decodeData(rest, true);
      } else if (op < 0.55) {
        const open = all.filter((h) => !h.ended);
        if (open.length > 0) {
          const h = pick(open);
          h.ended = true;
          h.stream.destroy(); // a client that leaves (or a request that finished)
        }
      } else if (op < 0.7) {
        const done = all.filter((h) => !h.ended && (h.forwarded || h.reply));
        if (done.length > 0) t.finish(pick(done));
      } else if (op < 0.78) {
        t.push(snapshot());
      } else {
        t.tick(1 + Math.floor(r() * 30));
      }
    }
    // Drain: flow control off and room everywhere; every request still open must now be answered or sent.
    for (const { h, rest } of pending) if (!h.ended) h.stream.decodeData(rest, true);
    t.push({ endpoints: [{ address: "10.0.0.1" }, { address: "10.0.0.2" }], objectives: OBJECTIVES });
    t.tick(50);
    for (const h of all) {
      outcomes.set(h, (h.forwarded ? 1 : 0) + (h.reply ? 1 : 0));
      assert.notEqual(h.reply?.details, "wasm_fail_stream", `${h.name}: the VM trapped`);
      if (!h.ended) assert.equal(outcomes.get(h), 1, `${h.name} ended ${outcomes.get(h)} times`);
      else assert.ok(outcomes.get(h)! <= 1, `${h.name} ended twice`);
      t.finish(h);
    }
    const vms = (t.plugin as unknown as { vms: { failed: boolean }[] }).vms;
    assert.ok(
      vms.every((vm) => !vm.failed),
      "no worker VM failed",
    );
    const text = renderPrometheus(t.proc.metrics, statsConfig());
    // The run went through the queue's paths, not around them.
    for (const outcome of ["queued", "dispatched", "expired", "rejected", "cancelled"]) {
      const n = [
        ...text.matchAll(
          new RegExp(`^epp_wasm_flow_control_requests_total\\{outcome="${outcome}",[^}]*\\} (\\d+)$`, "gm"),
        ),
      ]
        .map((m) => Number(m[1]))
        .reduce((x, y) => x + y, 0);
      assert.ok(n > 0, `seed ${seed}: no ${outcome}`);
    }
    for (const m of text.matchAll(/^inference_extension_flow_control_queue_(size|bytes)\{[^}]*\} (-?\d+)$/gm))
      assert.equal(Number(m[2]), 0, `seed ${seed}: ${m[0]}`);
  }
});
