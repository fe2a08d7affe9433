// Pull mode in the real filter.wasm, driven by the host on a virtual clock: the root tick, the shared-data
// lease that lets one worker per Envoy fetch, proxy_http_call to the sidecar's GET /snapshot with
// If-None-Match, and the same validation and store as a pushed snapshot. The sidecar is a scripted stand-in
// behind the host's http_call (so every answer, delay and failure is ours to choose).
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { EnvoyProcess, VirtualClock } from "../../host/index.ts";
import type { HeaderList, LocalReply, WasmPlugin } from "../../host/index.ts";
import type { ProcessServices } from "../../host/vm.ts";
import type { LoadedPlugin } from "../../host/plugin.ts";
import type { HttpCallRequest, HttpCallResult } from "../../host/http-call.ts";
import { mulberry32 } from "../../sim/rng.ts";
import { snapshotBytesWith } from "../support/snapshot-fixture.ts";

const WASM = readFileSync(
  process.env.EPP_TEST_FILTER_WASM ?? new URL("../../build/filter.wasm", import.meta.url),
);
const T0_MS = 1_795_000_000_000;
const POOL = "pulled";
const CLUSTER = "epp-sidecar";
const INTERVAL = 100;
const TIMEOUT = 1000;
const DEST = "x-gateway-destination-endpoint";
const WARN = 3;

function snapshot(generation: number, address: string, nowMs: number, pool = POOL): Uint8Array {
  return snapshotBytesWith({
    generation,
    createdAtMs: nowMs,
    pool: { name: pool },
    endpoints: [{ podName: "pod", address }],
  });
}

type Answer =
  | { kind: "response"; status: number; headers?: HeaderList; body?: Uint8Array }
  | { kind: "reset" }
  /** No answer: the call ends at its timeout, as a reset (this host today) or as a 504 (Envoy). */
  | { kind: "hang"; asResponse: boolean };

interface Call {
  headers: HeaderList;
  timeoutMs: number;
  baseUrl: string;
  /** Worker whose root started it (the only one with a call pending). */
  worker: number;
  atMs: number;
}

/** The sidecar's GET /snapshot, scripted: `answer` decides each response; answers arrive after 5 ms. */
class ScriptedSidecar {
  readonly calls: Call[] = [];
  /** Most http_calls pending at once across all workers. */
  maxPending = 0;
  answer: (req: HttpCallRequest) => Answer = () => ({ kind: "response", status: 503 });
  plugin: LoadedPlugin | undefined;

  constructor(private readonly clock: VirtualClock) {}

  handle = (req: HttpCallRequest, done: (r: HttpCallResult | undefined) => void): (() => void) => {
    const a = this.answer(req);
    let timer: unknown;
    const deliver = (r: HttpCallResult | undefined) => {
      const pending = this.plugin!.vms.reduce((n, v) => n + v.pendingHttpCalls, 0);
      this.maxPending = Math.max(this.maxPending, pending);
      done(r);
    };
    const call: Call = {
      headers: req.headers,
      timeoutMs: req.timeoutMs,
      baseUrl: req.baseUrl,
      worker: -1,
      atMs: this.clock.nowMs(),
    };
    this.calls.push(call);
    // The host registers the call right after this returns; see which worker has it on the next timer.
    this.clock.setTimer(0, () => {
      call.worker = this.plugin!.vms.findIndex((v) => v.pendingHttpCalls > 0);
    });
    if (a.kind === "hang") {
      timer = this.clock.setTimer(req.timeoutMs, () =>
        deliver(
          a.asResponse
            ? {
                headers: [[":status", "504"]],
                body: new TextEncoder().encode("upstream request timeout"),
                trailers: [],
              }
            : undefined,
        ),
      );
    } else {
      timer = this.clock.setTimer(5, () =>
        deliver(
          a.kind === "reset"
            ? undefined
            : {
                headers: [[":status", String(a.status)], ...(a.headers ?? [])],
                body: a.body ?? new Uint8Array(0),
                trailers: [],
              },
        ),
      );
    }
    return () => this.clock.clearTimer(timer);
  };
}

/** Serves `current()` with its generation as the ETag, and 304 for a matching If-None-Match. */
function servesSnapshots(current: () => { bytes: Uint8Array; etag: string }) {
  return (req: HttpCallRequest): Answer => {
    const cur = current();
    const inm = req.headers.find(([k]) => k === "if-none-match")?.[1];
    if (inm === cur.etag) return { kind: "response", status: 304, headers: [["etag", cur.etag]] };
    return {
      kind: "response",
      status: 200,
      headers: [
        ["content-type", "application/octet-stream"],
        ["etag", cur.etag],
      ],
      body: cur.bytes,
    };
  };
}

async function start(workers = 4, pull: Record<string, unknown> = {}, extra: Record<string, unknown> = {}) {
  const clock = new VirtualClock(BigInt(T0_MS) * 1_000_000n);
  const proc = new EnvoyProcess({ clock });
  const sidecar = new ScriptedSidecar(clock);
  // The scripted sidecar stands behind proxy_http_call (the host's own HTTP client is replaced).
  (proc as unknown as { services: ProcessServices }).services.httpCall = sidecar.handle;
  // loadPlugin's result is a LoadedPlugin: its VMs and root ids are what the lease tests inspect.
  const plugin = (await proc.loadPlugin(WASM, {
    name: "epp",
    rootId: "epp",
    vmId: "epp",
    workers,
    allowOnHeadersStopIteration: true,
    clusters: { [CLUSTER]: "http://127.0.0.1:9090" },
    configuration: JSON.stringify({
      pool: { namespace: "default", name: POOL },
      destinationMode: "original_dst",
      failureMode: "FailClose",
      staleAfterMs: 5000,
      pull: { cluster: CLUSTER, intervalMs: INTERVAL, timeoutMs: TIMEOUT, ...pull },
      ...extra,
    }),
  })) as LoadedPlugin;
  sidecar.plugin = plugin;
  const now = () => T0_MS + clock.nowMs();
  return { clock, proc, plugin, sidecar, now };
}

/** A GET the filter decides on headers alone: the destination it picks, or the local reply. */
function route(plugin: WasmPlugin, worker: number): { dest?: string; reply?: LocalReply } {
  const out: { dest?: string; reply?: LocalReply } = {};
  const s = plugin.newHttpStream(
    {
      forwardRequestHeaders: (h) => (out.dest = h.find(([k]) => k === DEST)?.[1]),
      forwardRequestData: () => {},
      forwardResponseHeaders: () => {},
      forwardResponseData: () => {},
      localReply: (r) => (out.reply = r),
    },
    { worker },
  );
  s.decodeHeaders(
    [
      [":method", "GET"],
      [":path", "/v1/models"],
      [":authority", "gw"],
      [":scheme", "http"],
    ],
    true,
  );
  s.destroy();
  return out;
}

function everyWorkerRoutesTo(plugin: WasmPlugin, address: string): void {
  for (let w = 0; w < plugin.workers; w++) {
    const r = route(plugin, w);
    assert.equal(r.dest, `${address}:8000`, `worker ${w}: ${r.reply?.status} ${r.reply?.details ?? ""}`);
  }
}

function warnings(plugin: WasmPlugin, text: string): string[] {
  return plugin.logs.filter((e) => e.level === WARN && e.message.includes(text)).map((e) => e.message);
}

test("one worker per Envoy fetches, once per interval, with the configured request; every worker routes", async () => {
  const { clock, plugin, sidecar, now } = await start(4);
  let generation = 1;
  let bytes = snapshot(generation, "10.0.0.1", now());
  sidecar.answer = servesSnapshots(() => ({ bytes, etag: `"${generation}"` }));
  // Before the first tick there is no snapshot.
  assert.equal(route(plugin, 0).reply?.status, 503);
  clock.advance(INTERVAL + 10);
  assert.equal(sidecar.calls.length, 1);
  everyWorkerRoutesTo(plugin, "10.0.0.1");

  // Two seconds of ticks on four workers: one fetch per interval, all from the one lease holder.
  for (let i = 0; i < 20; i++) {
    generation++;
    bytes = snapshot(generation, i % 2 === 0 ? "10.0.0.2" : "10.0.0.1", now());
    clock.advance(INTERVAL);
  }
  assert.equal(sidecar.calls.length, 21);
  assert.equal(sidecar.maxPending, 1, "never two fetches in flight");
  const workers = new Set(sidecar.calls.map((c) => c.worker));
  assert.equal(workers.size, 1, `fetched by workers ${[...workers].join(", ")}`);
  // Each generation above was served in full (the ETag moved every interval) and routes on every worker.
  everyWorkerRoutesTo(plugin, "10.0.0.1");

  const first = sidecar.calls[0]!;
  const header = (c: Call, k: string) => c.headers.find(([n]) => n === k)?.[1];
  assert.equal(header(first, ":method"), "GET");
  assert.equal(header(first, ":path"), `/snapshot?pool=default/${POOL}`);
  assert.equal(header(first, ":authority"), CLUSTER);
  assert.equal(header(first, "if-none-match"), undefined);
  assert.equal(first.timeoutMs, TIMEOUT);
  assert.equal(header(sidecar.calls[1]!, "if-none-match"), '"1"');
  assert.deepEqual(plugin.failedWorkers, []);
});

test("304 keeps the stored snapshot; the ETag of the last stored body is sent back", async () => {
  // staleMode fail, so the snapshot's age shows as a 503 (the default routes on past staleAfterMs).
  const { clock, plugin, sidecar, now } = await start(2, {}, { staleMode: "fail" });
  const bytes = snapshot(7, "10.0.0.7", now());
  sidecar.answer = servesSnapshots(() => ({ bytes, etag: '"7"' }));
  clock.advance(INTERVAL + 10);
  everyWorkerRoutesTo(plugin, "10.0.0.7");
  clock.advance(INTERVAL * 10);
  assert.equal(sidecar.calls.length, 11);
  for (const c of sidecar.calls.slice(1))
    assert.equal(c.headers.find(([k]) => k === "if-none-match")?.[1], '"7"');
  everyWorkerRoutesTo(plugin, "10.0.0.7");
  // A sidecar that keeps answering 304 has nothing newer: the snapshot ages on Envoy's clock as it would
  // without any fetch, and goes stale after staleAfterMs.
  clock.advance(5000);
  assert.equal(route(plugin, 0).reply?.status, 503);
  assert.match(new TextDecoder().decode(route(plugin, 1).reply?.body), /stale/);
  assert.deepEqual(warnings(plugin, "snapshot pull"), []);
});

test("a corrupt or foreign body never replaces a good snapshot, never traps, and is logged once per cause", async () => {
  // Many bad bodies take longer than staleAfterMs: here the good snapshot never goes stale.
  const { clock, plugin, sidecar, now } = await start(3, {}, { staleAfterMs: 0 });
  const good = snapshot(10, "10.0.0.10", now());
  let next: () => Answer = () => ({ kind: "response", status: 200, headers: [["etag", '"10"']], body: good });
  sidecar.answer = () => next();
  clock.advance(INTERVAL + 10);
  everyWorkerRoutesTo(plugin, "10.0.0.10");

  const rng = mulberry32(20);
  const valid = snapshot(11, "10.0.0.11", now());
  const bodies: Uint8Array[] = [new Uint8Array(0), valid.subarray(0, valid.length - 1), valid.subarray(0, 7)];
  for (let i = 0; i < 40; i++) {
    const b = new Uint8Array(valid);
    b[Math.floor(rng() * b.length)]! ^= 1 << Math.floor(rng() * 8);
    bodies.push(b);
  }
  for (let i = 0; i < 40; i++)
    bodies.push(Uint8Array.from({ length: Math.floor(rng() * 300) }, () => rng() * 256));
  for (const [i, body] of bodies.entries()) {
    next = () => ({ kind: "response", status: 200, headers: [["etag", `"bad-${i}"`]], body });
    clock.advance(INTERVAL);
  }
  assert.deepEqual(plugin.failedWorkers, []);
  everyWorkerRoutesTo(plugin, "10.0.0.10");
  // One warning per cause in the log window, not one per bad body.
  assert.equal(warnings(plugin, "invalid snapshot").length, 1, warnings(plugin, "").join("\n"));

  // A well-formed snapshot of another pool, however new, is refused too.
  next = () => ({
    kind: "response",
    status: 200,
    headers: [["etag", '"99"']],
    body: snapshot(99, "10.9.9.9", now(), "other-pool"),
  });
  clock.advance(INTERVAL * 3);
  everyWorkerRoutesTo(plugin, "10.0.0.10");
  const foreign = warnings(plugin, "for pool default/other-pool");
  assert.equal(foreign.length, 1);
  assert.match(foreign[0]!, /this filter serves default\/pulled/);

  // A snapshot dated beyond the allowed clock skew is refused as a pushed one is.
  next = () => ({
    kind: "response",
    status: 200,
    headers: [["etag", '"12"']],
    body: snapshot(12, "10.0.0.12", now() + 3_600_000),
  });
  clock.advance(INTERVAL * 2);
  everyWorkerRoutesTo(plugin, "10.0.0.10");
  assert.equal(warnings(plugin, "ahead of this Envoy's clock").length, 1);

  // An ETag with control characters is never echoed into If-None-Match.
  next = () => ({
    kind: "response",
    status: 200,
    headers: [["etag", '"13"\u0001x']],
    body: snapshot(13, "10.0.0.13", now()),
  });
  clock.advance(INTERVAL);
  everyWorkerRoutesTo(plugin, "10.0.0.13");
  clock.advance(INTERVAL);
  assert.equal(
    sidecar.calls.at(-1)!.headers.find(([k]) => k === "if-none-match"),
    undefined,
  );
  assert.deepEqual(plugin.failedWorkers, []);
});

test("resets, 503s and timeouts are retried each interval, one call at a time, logged once per cause", async () => {
  const { clock, plugin, sidecar, now } = await start(2);
  let mode: "ok" | "reset" | "503" | "hang-reset" | "hang-504" = "reset";
  let generation = 1;
  const serve = servesSnapshots(() => ({
    bytes: snapshot(generation, `10.0.0.${generation}`, now()),
    etag: `"${generation}"`,
  }));
  sidecar.answer = (req) => {
    switch (mode) {
      case "reset":
        return { kind: "reset" };
      case "503":
        // Envoy's async client answers an unreachable cluster with an ordinary 503.
        return { kind: "response", status: 503, body: new TextEncoder().encode("no healthy upstream") };
      case "hang-reset":
        return { kind: "hang", asResponse: false };
      case "hang-504":
        return { kind: "hang", asResponse: true };
      default:
        return serve(req);
    }
  };
  clock.advance(INTERVAL * 20 + 10);
  assert.equal(sidecar.calls.length, 20, "a reset is retried at the next tick");
  assert.equal(warnings(plugin, "no response (connection reset)").length, 1);
  mode = "503";
  clock.advance(INTERVAL * 20);
  assert.equal(sidecar.calls.length, 40);
  assert.equal(warnings(plugin, "answered 503").length, 1);
  assert.equal(route(plugin, 0).reply?.status, 503, "no snapshot yet");

  mode = "ok";
  clock.advance(INTERVAL);
  everyWorkerRoutesTo(plugin, "10.0.0.1");
  assert.ok(plugin.logs.some((e) => /works again after 40 failed attempts/.test(e.message)));

  // A sidecar that does not answer: the next fetch waits for the timeout (one call in flight at a time).
  for (const hang of ["hang-reset", "hang-504"] as const) {
    mode = hang;
    const before = sidecar.calls.length;
    clock.advance(TIMEOUT * 3 + INTERVAL);
    const during = sidecar.calls.length - before;
    assert.ok(during >= 3 && during <= 4, `${hang}: ${during} calls in ${TIMEOUT * 3 + INTERVAL} ms`);
    assert.equal(sidecar.maxPending, 1);
    mode = "ok";
    generation++;
    clock.advance(TIMEOUT + INTERVAL * 2);
    everyWorkerRoutesTo(plugin, `10.0.0.${generation}`);
  }
  assert.equal(warnings(plugin, "answered 504").length, 1);
  // Five seconds later the same causes may be reported again, once.
  mode = "503";
  clock.advance(10_000);
  assert.equal(warnings(plugin, "answered 503").length, 2);
  assert.match(warnings(plugin, "answered 503")[1]!, /more since the last report/);
  assert.deepEqual(plugin.failedWorkers, []);
});

test("the lease moves on when the holder's VM fails, and at once when its plugin stops", async () => {
  const { clock, plugin, sidecar, now } = await start(3);
  let generation = 1;
  sidecar.answer = servesSnapshots(() => ({
    bytes: snapshot(generation, "10.0.0.1", now()),
    etag: `"${generation++}"`,
  }));
  clock.advance(INTERVAL * 5 + 10);
  const holder = sidecar.calls.at(-1)!.worker;
  assert.ok(holder >= 0);
  assert.ok(sidecar.calls.every((c) => c.worker === holder));

  // The holder's VM traps: its ticks stop, and nobody fetches until its lease (3 intervals) runs out.
  const failedAt = clock.nowMs();
  plugin.vms[holder]!.fail("proxy_on_tick", new Error("injected trap"));
  const count = sidecar.calls.length;
  clock.advance(INTERVAL * 6);
  const after = sidecar.calls.slice(count);
  assert.ok(after.length >= 2, `fetching resumed: ${after.length}`);
  const gap = after[0]!.atMs - failedAt;
  assert.ok(gap >= INTERVAL * 2 && gap <= INTERVAL * 4, `first fetch ${gap} ms after the trap`);
  const second = after[0]!.worker;
  assert.notEqual(second, holder);
  assert.ok(after.every((c) => c.worker === second));
  // Routing never stopped on the healthy workers.
  for (let w = 0; w < plugin.workers; w++) if (w !== holder) assert.ok(route(plugin, w).dest);

  // The new holder's plugin is removed from its VM: it frees the lease, the third worker fetches next tick.
  const vm = plugin.vms[second]!;
  await vm.stopRoot(vm.roots.get(plugin.rootContextIds[second]!)!);
  const stoppedAt = clock.nowMs();
  const n = sidecar.calls.length;
  clock.advance(INTERVAL * 2);
  const next = sidecar.calls.slice(n);
  assert.ok(next.length >= 1);
  assert.ok(next[0]!.atMs - stoppedAt <= INTERVAL, "no lease wait after a clean stop");
  assert.ok(next.every((c) => c.worker !== holder && c.worker !== second));
  assert.equal(sidecar.maxPending, 1);
});

test("an unknown cluster is refused by the host (BadArgument): logged once per window, never a trap", async () => {
  const { clock, plugin, sidecar } = await start(2, { cluster: "no-such-cluster" });
  clock.advance(INTERVAL * 30);
  assert.equal(sidecar.calls.length, 0);
  const refused = warnings(plugin, "no-such-cluster was refused");
  assert.equal(refused.length, 1, plugin.logs.map((e) => e.message).join("\n"));
  assert.match(refused[0]!, /check that the cluster exists/);
  assert.deepEqual(plugin.failedWorkers, []);
});
