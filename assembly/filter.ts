// Stream glue for the data path and the plugin lifecycle. A data request flows:
//   headers: strip a spoofed destination, check the snapshot, then either decide now (no body, or a
//            path we do not parse) or stop and buffer (OpenAI paths with a body);
//   body:    as soon as the buffered head holds `model` and enough prompt (inference-request.ts), or at
//            the end of the body / its trailers: resolve, schedule (pick.ts), continue; the rest of the
//            body then streams through, watched for a second `model`. Buffering past maxBodyBytes → 413;
//   response headers: x-gateway-destination-endpoint-served = the upstream that answered, plus what the
//            scheduler's plugins set (session affinity's token);
//   log/delete: the dispatch leaves the plugin's in-flight count (inflight.ts).
// Every callback first activates the plugin (root context) its stream belongs to (plugins.ts).

import {
  BUFFER_PLUGIN_CONFIGURATION,
  BUFFER_REQUEST_BODY,
  bufferLength,
  clearRouteCache,
  DATA_CONTINUE,
  DATA_STOP_AND_BUFFER,
  DATA_STOP_AND_WATERMARK,
  continueRequest,
  setEffectiveContext,
  WASM_OK,
  HEADERS_CONTINUE,
  HEADERS_STOP,
  sendLocalReply,
  setBufferBytes,
  TRAILERS_CONTINUE,
  TRAILERS_STOP,
  getBufferBytes,
  getHeader,
  getPropertyEncoded,
  HeaderMap,
  log,
  LogLevel,
  nowNanos,
  randomU64,
  removeHeader,
  replaceHeader,
  setTickPeriod,
} from "./abi/host.ts";
import { parseConfig, STALE_FAIL, tokensFromEnv } from "./config.ts";
import { controlBody, controlHeaders, pathWithoutQuery } from "./control.ts";
import { DESTINATION_HEADER, pick } from "./pick.ts";
import {
  duplicateModel,
  lastRequest,
  MODEL_HEADER,
  routeBodyPrefix,
  routeUnparsed,
} from "./inference-request.ts";
import {
  Decision,
  DECIDE_PASS,
  DECIDE_QUEUE,
  DECIDE_REPLY,
  DECIDE_ROUTE,
  DECIDE_WAIT,
  dialectOfPath,
  DIALECT_OPENAI,
} from "./decision.ts";
import { dialectErrorBody } from "./replies.ts";
import { RequestInfo } from "./scheduling/types.ts";
import { copyRequest } from "./flow-control/held.ts";
import { FLOW_TICK_MS } from "./flow-control/flow.ts";
import { ENQUEUED, FULL_TOTAL } from "./flow-control/queue.ts";
import {
  FLOW_CANCELLED,
  FLOW_DISPATCHED,
  FLOW_EXPIRED,
  FLOW_REJECTED,
  noteLeft,
  notePoolSaturation,
  noteQueued,
  noteRefused,
} from "./flow-control/metrics.ts";
import { informationalHeaderValue } from "./request/header-value.ts";
import { ModelKeyWatch } from "./request/model-key-watch.ts";
import { Dispatch, finishDispatch } from "./inflight.ts";
import { kindFromPath, KIND_AUTO } from "./request/prompt.ts";
import { jsonString } from "./snapshot/to-json.ts";
import { activate, config, configurePlugin, forgetPlugin, Plugin, plugin, pluginOf } from "./plugins.ts";
import { pullTick, releaseLease } from "./pull.ts";
import { noteOutcome } from "./outcome.ts";
import { beginDecision, countDecision, forgetPool } from "./metrics.ts";

export { DESTINATION_HEADER };
export const SERVED_HEADER = "x-gateway-destination-endpoint-served";
/**
 * GIE conformance (plugin config `conformance: true`): the served endpoint under the name the suite's
 * client reads (GIE v1.6.0 conformance/utils/headers/headers.go ConformanceTestResultHeader; GIE's test
 * picker writes it from the gateway's served metadata, pkg/lwepp/handlers/response.go).
 */
export const CONFORMANCE_SERVED_HEADER = "x-conformance-test-served-endpoint";
/** With debugHeaders: whether the pick was made on a fresh snapshot or on a stale one (staleMode route). */
export const SNAPSHOT_STATE_HEADER = "x-epp-snapshot-state";

class Stream {
  control: bool = false;
  /** Waiting for the end of an OpenAI body; `kind` says how to read its prompt. */
  buffering: bool = false;
  kind: i32 = KIND_AUTO;
  /** The error shape its client expects, known from the path (decision.ts DIALECT_*). */
  dialect: i32 = DIALECT_OPENAI;
  /** Buffered bytes at which to look at the body again (each look at least doubles it). */
  nextLook: u32 = 0;
  /** Routed on the body's head: the rest is watched as it streams through. */
  watch: ModelKeyWatch | null = null;
  /** Headers the scheduler's plugins set on the response (null: none). */
  responseNames: string[] | null = null;
  responseValues: string[] | null = null;
  picked: string | null = null;
  /** The pick was made on a snapshot past staleAfterMs. */
  stale: bool = false;
  /** `upstream.address` when the response headers passed (the last attempt's host). */
  served: string | null = null;
  dispatch: Dispatch = new Dispatch();
  /** Flow control: waiting in the plugin's queue, stopped (the tick dispatches or answers it). */
  held: bool = false;
  /** What the dispatch schedules with, and the metric labels of the held decision. */
  heldReq: RequestInfo | null = null;
  heldModel: string | null = null;
  heldTarget: string | null = null;
  heldObjective: string = "";
  constructor(
    /** Its root's plugin; a held stream moves to the next one when the root is reconfigured. */
    public plugin: Plugin,
    readonly id: u32,
  ) {}
}

const streams = new Map<u32, Stream>();

/** The stream of a context id with its plugin activated, or null (not one of our streams). */
function enter(id: u32): Stream | null {
  if (!streams.has(id)) return null;
  const s = streams.get(id);
  activate(s.plugin);
  return s;
}

export function onConfigure(rootId: u32, configSize: u32): bool {
  const bytes = getBufferBytes(BUFFER_PLUGIN_CONFIGURATION, 0, configSize);
  const text = bytes == null ? "" : String.UTF8.decode(bytes);
  const result = parseConfig(text);
  const c = result.config;
  if (c == null) {
    log(LogLevel.Error, result.error);
    return false;
  }
  if (c.controlTokenEnv.length > 0) {
    // WASI environ is readable here (not during _start); Envoy serves vm_config.environment_variables.
    const fromEnv = process.env.has(c.controlTokenEnv) ? process.env.get(c.controlTokenEnv) : "";
    const why = tokensFromEnv(fromEnv, c.controlTokens);
    if (why.length > 0) {
      log(
        LogLevel.Error,
        "invalid plugin configuration: controlTokenEnv names " +
          c.controlTokenEnv +
          ", which " +
          why +
          " in the VM environment",
      );
      return false;
    }
  }
  const before = pluginOf(rootId);
  const wasPulling = before != null && before.config.pullEnabled();
  // The lease holder id tells worker VMs apart, so it is random even when randomSeed pins the scheduler.
  const holder = c.pullEnabled()
    ? randomU64() ^ (nowNanos() * 0x9e3779b97f4a7c15) ^ ((<u64>rootId) << 48)
    : 0;
  if (wasPulling) releaseLease(before!.pull!);
  const after = configurePlugin(rootId, c, c.hasRandomSeed ? c.randomSeed : randomU64(), holder);
  // Pull mode polls on the root's tick (Envoy allows setting it from on_configure); a root that stops
  // pulling stops its tick.
  if (c.pullEnabled()) setTickPeriod(c.pullIntervalMs);
  else if (wasPulling || (before != null && before.flow.ticking)) setTickPeriod(0);
  if (before != null && before.flow.queue.count > 0) carryOver(before, after);
  return true;
}

/**
 * on_configure again on a live root: a listener update that keeps the plugin's name reuses its root
 * context (cpp-host WasmBase::start finds root_contexts_[plugin key], then configure), and the root's tick
 * now serves the new plugin, so the old one's held requests would never be dispatched. For the same pool
 * they move to the new plugin's queue in their order (bands, then arrival), keeping their arrival time
 * (the TTL counts from it) and fairness ids — as Envoy lets in-flight streams finish rather than fail
 * them. A new pool's snapshot never described them: they are answered 503 with Retry-After.
 */
function carryOver(before: Plugin, after: Plugin): void {
  const q = before.flow.queue;
  const same =
    before.config.poolNamespace == after.config.poolNamespace &&
    before.config.poolName == after.config.poolName;
  const into = after.flow.queue;
  let moved = 0;
  for (let b = 0; b < q.bands.length; b++) {
    let guard = q.count + 1;
    while (guard-- > 0) {
      const i = q.oldestOf(b);
      if (i < 0) break;
      const id = q.streamOf(i);
      if (!same || !streams.has(id)) {
        activate(before);
        exitHeld(i, EXIT_RECONFIGURED);
        continue;
      }
      const priority = q.priorityOf(i);
      const fairness = q.fairnessOf(i);
      const bytes = q.bytesOf(i);
      const at = q.enqueuedAt(i);
      // The queue metrics are process-wide per band: a move between two queues leaves them as they are.
      q.remove(i);
      const s = streams.get(id);
      s.plugin = after;
      // The new queue has no limits until its first snapshot: every moved request fits.
      if (into.enqueue(id, priority, fairness, bytes, at) == ENQUEUED) moved++;
    }
  }
  activate(after);
  if (moved > 0 && !after.flow.ticking) {
    after.flow.ticking = true;
    setTickPeriod(config.pullEnabled() ? min(FLOW_TICK_MS, config.pullIntervalMs) : FLOW_TICK_MS);
  }
}

export function onContextCreate(id: u32, rootId: u32): void {
  if (rootId == 0) return;
  const p = pluginOf(rootId);
  // A root that was never configured has no plugin: its streams pass through untouched.
  if (p != null) streams.set(id, new Stream(p, id));
}

/** The one Decision of this VM: the director fills it, apply() carries it out. */
const decision = new Decision();

function tooLarge(s: Stream): void {
  decision.reset(s.dialect);
  decision.error(
    413,
    "request body is larger than maxBodyBytes (" +
      config.maxBodyBytes.toString() +
      " bytes) and the filter has not found its model yet",
    "invalid_request_error",
    "request_too_large",
  );
  apply(s);
}

/**
 * Carries out `decision` on the stream — the only place the data path answers locally or changes the
 * request. True when the stream may continue (routed, or passed through).
 */
function apply(s: Stream): bool {
  const d = decision;
  // A hold is not an outcome: the request is counted when it is dispatched or answered.
  if (d.decided && !d.probe && d.kind != DECIDE_QUEUE) countDecision(d);
  if (d.kind == DECIDE_REPLY) {
    s.buffering = false;
    d.replyNames.push("content-type");
    d.replyValues.push("application/json");
    const body = d.isError
      ? dialectErrorBody(d.dialect, d.status, d.message, d.errorType, d.code, d.param)
      : d.body;
    sendLocalReply(d.status, d.details, body, d.replyNames, d.replyValues);
    return false;
  }
  if (d.kind == DECIDE_PASS) {
    s.buffering = false;
    return true;
  }
  if (d.kind == DECIDE_QUEUE) return hold(s);
  if (d.kind != DECIDE_ROUTE) return false;
  s.buffering = false;
  s.picked = d.served;
  replaceHeader(HeaderMap.Request, DESTINATION_HEADER, d.destinations);
  const head = d.head;
  if (head != null) setBufferBytes(BUFFER_REQUEST_BODY, 0, <u32>d.headEnd, head);
  if (d.contentLength >= 0) replaceHeader(HeaderMap.Request, "content-length", d.contentLength.toString());
  const target = d.targetModel;
  if (target != null) replaceHeader(HeaderMap.Request, MODEL_HEADER, informationalHeaderValue(target));
  if (d.responseNames.length > 0) {
    s.responseNames = d.responseNames.slice(0);
    s.responseValues = d.responseValues.slice(0);
  }
  clearRouteCache();
  return true;
}

// ---- Flow control (issue 22): hold, dispatch from the root's tick, exits ----

/**
 * Holds the stream in its plugin's queue: any rewrite of the body's head is carried out now (the body
 * buffer is reachable only from this stream's own callbacks), the destination waits for the dispatch.
 * A request past a limit is answered at once. Always false: the stream stays stopped.
 */
function hold(s: Stream): bool {
  const d = decision;
  s.buffering = false;
  const head = d.head;
  if (head != null) setBufferBytes(BUFFER_REQUEST_BODY, 0, <u32>d.headEnd, head);
  if (d.contentLength >= 0) replaceHeader(HeaderMap.Request, "content-length", d.contentLength.toString());
  const target = d.targetModel;
  if (target != null) replaceHeader(HeaderMap.Request, MODEL_HEADER, informationalHeaderValue(target));
  const flow = plugin.flow;
  const bytes = heldBytes();
  const why = flow.queue.enqueue(s.id, d.priority, d.fairnessId, bytes, nowNanos() / 1_000_000);
  if (why != ENQUEUED) {
    const priority = d.priority;
    noteRefused(priority);
    keepLabels(s);
    decision.reset(s.dialect);
    restoreLabels(s);
    exitReply(
      priority,
      why == FULL_TOTAL
        ? "the flow-control queue is full; retry later"
        : "the flow-control queue of this request's priority band is full; retry later",
      "queue_full",
    );
    return apply(s);
  }
  noteQueued(d.priority, bytes);
  keepLabels(s);
  s.held = true;
  s.heldReq = copyRequest(lastRequest());
  if (!flow.ticking) {
    flow.ticking = true;
    setTickPeriod(config.pullEnabled() ? min(FLOW_TICK_MS, config.pullIntervalMs) : FLOW_TICK_MS);
  }
  return false;
}

function keepLabels(s: Stream): void {
  s.heldModel = decision.modelName;
  s.heldTarget = decision.targetName;
  s.heldObjective = decision.objective;
}

function restoreLabels(s: Stream): void {
  decision.modelName = s.heldModel;
  decision.targetName = s.heldTarget;
  decision.objective = s.heldObjective;
}

/** The bytes a held request keeps in Envoy: its announced length, else what has been buffered. */
function heldBytes(): f64 {
  const v = getHeader(HeaderMap.Request, "content-length");
  if (v != null && v.length > 0) {
    const n = I64.parseInt(v);
    if (n > 0) return <f64>n;
  }
  const size = bufferLength(BUFFER_REQUEST_BODY);
  return size > 0 ? <f64>size : 0;
}

/** TTL or limit: 429 for a sheddable request, 503 otherwise, with Retry-After. */
function exitReply(priority: i32, message: string, code: string): void {
  const shed = priority < 0;
  decision.error(shed ? 429 : 503, message, shed ? "rate_limit_exceeded" : "service_unavailable", code);
  decision.withHeader("retry-after", "1");
}

const EXIT_EXPIRED: i32 = 0;
const EXIT_NO_POOL: i32 = 1;
const EXIT_RECONFIGURED: i32 = 2;

/**
 * Takes queue item `i` of the active plugin out with its outcome (FLOW_*): the band's count and the
 * metrics. False when `i` is not queued.
 */
function leave(i: i32, outcome: i32): bool {
  const q = plugin.flow.queue;
  const b = q.bandOf(i);
  const priority = q.priorityOf(i);
  const bytes = q.bytesOf(i);
  const at = q.enqueuedAt(i);
  if (!q.remove(i, outcome == FLOW_DISPATCHED)) return false;
  if (b >= 0 && b < q.bands.length) {
    const band = unchecked(q.bands[b]);
    if (outcome == FLOW_DISPATCHED) band.dispatched++;
    else if (outcome == FLOW_EXPIRED) band.expired++;
    else if (outcome == FLOW_CANCELLED) band.cancelled++;
    else band.rejected++;
  }
  const now = nowNanos() / 1_000_000;
  noteLeft(priority, bytes, outcome, now > at ? now - at : 0);
  return true;
}

/** Answers queue item `i` (already known to be live) and takes it out. */
function exitHeld(i: i32, why: i32): void {
  const q = plugin.flow.queue;
  const id = q.streamOf(i);
  const priority = q.priorityOf(i);
  if (!leave(i, why == EXIT_EXPIRED ? FLOW_EXPIRED : FLOW_REJECTED)) return;
  if (!streams.has(id)) return;
  const s = streams.get(id);
  s.held = false;
  s.heldReq = null;
  if (setEffectiveContext(id) != WASM_OK) return;
  decision.reset(s.dialect);
  restoreLabels(s);
  if (why == EXIT_EXPIRED)
    exitReply(priority, "the request waited in the flow-control queue past its TTL", "queue_timeout");
  else if (why == EXIT_RECONFIGURED) {
    decision.error(
      503,
      "the filter was reconfigured for another pool while this request waited; retry",
      "service_unavailable",
      "reconfigured",
    );
    decision.withHeader("retry-after", "1");
  } else {
    // A lost pool is no capacity decision: every band gets 503, sheddable ones too.
    decision.error(
      503,
      "no ready endpoint left in pool " + config.poolNamespace + "/" + config.poolName,
      "service_unavailable",
      "no_ready_endpoint",
    );
    decision.withHeader("retry-after", "1");
  }
  apply(s);
}

/** Dispatches queue item `i`: scheduled against the pool as it is now, then resumed. */
function dispatchHeld(i: i32): void {
  const id = plugin.flow.queue.streamOf(i);
  if (!leave(i, FLOW_DISPATCHED)) return;
  if (!streams.has(id)) return;
  const s = streams.get(id);
  const req = s.heldReq;
  s.held = false;
  s.heldReq = null;
  if (req == null || setEffectiveContext(id) != WASM_OK) return;
  beginDecision();
  decision.reset(s.dialect);
  restoreLabels(s);
  pick(req, s.dispatch, decision, true);
  if (apply(s)) continueRequest();
}

/** Any ready endpoint in the pool view? */
function anyReady(): bool {
  const eps = plugin.pool.endpoints;
  for (let i = 0; i < eps.length; i++) if (unchecked(eps[i]).ready) return true;
  return false;
}

/**
 * The root's tick: pull mode's poll when due, then the flow-control queue — expiries, a pool gone (503
 * at once), and dispatches for the room the snapshot and this worker's completions show (flow.ts).
 */
export function onTick(rootId: u32): void {
  const p = pluginOf(rootId);
  if (p == null) return;
  activate(p);
  const flow = p.flow;
  const now = nowNanos() / 1_000_000;
  if (p.pull != null && (!flow.ticking || now >= flow.pullDueMs)) {
    flow.pullDueMs = now + <u64>p.config.pullIntervalMs;
    pullTick(rootId);
    activate(p);
  }
  if (flow.ticking) flowTick(now);
}

function flowTick(now: u64): void {
  const flow = plugin.flow;
  const q = flow.queue;
  if (q.count > 0) {
    const snapshot = plugin.snapshots.refresh();
    let usable = snapshot != null;
    if (snapshot != null) {
      const stale = isStale();
      if (stale && config.staleMode == STALE_FAIL) usable = false;
      plugin.pool.sync(snapshot, stale);
      flow.follow(snapshot);
    }
    // Each loop takes one item out, so none runs more than the queue's length.
    let guard = q.count + 1;
    while (guard-- > 0) {
      const i = q.expired(now);
      if (i < 0) break;
      exitHeld(i, EXIT_EXPIRED);
    }
    if (!usable || !anyReady()) {
      guard = q.count + 1;
      while (guard-- > 0 && q.count > 0) exitHeld(q.next(), EXIT_NO_POOL);
    }
    const want = q.count;
    let grant = want;
    if (flow.on && !plugin.pool.staleFigures) {
      const pool = plugin.pool;
      const headroom = pool.scheduler.built.detector.roomLeft(pool.endpoints);
      notePoolSaturation(headroom <= 0);
      grant = flow.reserve(headroom, want);
    }
    for (let k = 0; k < grant; k++) {
      const i = q.next();
      if (i < 0) break;
      dispatchHeld(i);
    }
  }
  if (q.count == 0) {
    flow.ticking = false;
    setTickPeriod(config.pullEnabled() ? config.pullIntervalMs : 0);
  }
}

/** A held stream's client left (on_log / on_delete): its place and bytes are freed at once. */
function cancelHeld(s: Stream): void {
  if (!s.held) return;
  s.held = false;
  s.heldReq = null;
  activate(s.plugin);
  leave(s.plugin.flow.queue.itemOf(s.id), FLOW_CANCELLED);
}

/** A chunk arriving while held: watched for a second `model` like any routed body, and kept stopped. */
function heldChunk(s: Stream, chunkSize: u32): u32 {
  const w = s.watch;
  if (w != null) {
    const bytes = getBufferBytes(BUFFER_REQUEST_BODY, 0, chunkSize);
    if (bytes != null) w.feed(changetype<usize>(bytes), bytes.byteLength);
    if (w.duplicate) {
      s.watch = null;
      cancelHeld(s);
      decision.reset(s.dialect);
      duplicateModel(decision);
      apply(s);
      return DATA_STOP_AND_BUFFER;
    }
  }
  // StopIterationAndWatermark: Envoy keeps buffering with back-pressure instead of the buffer
  // limit's 413 (filter_manager.cc ActiveStreamDecoderFilter::requestDataTooLarge).
  return DATA_STOP_AND_WATERMARK;
}

/** JSON media types: application/json and application/*+json, any parameters. */
function isJsonContentType(v: string): bool {
  const semi = v.indexOf(";");
  const t = (semi < 0 ? v : v.substring(0, semi)).trim().toLowerCase();
  return t == "application/json" || (t.startsWith("application/") && t.endsWith("+json"));
}

export function onRequestHeaders(id: u32, endOfStream: bool): u32 {
  const s = enter(id);
  if (s == null) return HEADERS_CONTINUE;
  const path = getHeader(HeaderMap.Request, ":path");
  // The path without its query, computed once and only when this plugin answers a path itself.
  const control = config.controlEnabled();
  const health = config.healthPath.length > 0;
  const bare = path != null && (control || health) ? pathWithoutQuery(path) : "";
  if (control && path != null && bare == config.controlPath) {
    s.control = true;
    return controlHeaders(endOfStream);
  }
  if (health && path != null && bare == config.healthPath) {
    answerHealth();
    apply(s);
    return HEADERS_STOP;
  }
  // A client-supplied destination must never survive, whatever happens next.
  removeHeader(HeaderMap.Request, DESTINATION_HEADER);

  const kind = path == null ? KIND_AUTO : kindFromPath(path);
  // The path already says which API the client speaks: every reply from here on is in its shape.
  s.dialect = path == null ? DIALECT_OPENAI : dialectOfPath(path, kind);
  const snapshot = plugin.snapshots.refresh();
  const stale = snapshot != null && isStale();
  // staleMode fail: past staleAfterMs the snapshot is unusable and the failure mode applies.
  decision.reset(s.dialect);
  if (snapshot == null || (stale && config.staleMode == STALE_FAIL)) {
    if (config.failOpen) decision.pass();
    else {
      const why =
        snapshot == null ? "no endpoint snapshot has been received yet" : "the endpoint snapshot is stale";
      decision.error(503, why, "service_unavailable", snapshot == null ? "no_snapshot" : "stale_snapshot");
    }
    return apply(s) ? HEADERS_CONTINUE : HEADERS_STOP;
  }
  s.stale = stale;
  // No body, or a path we do not parse (documented): decide on load alone, without buffering.
  if (endOfStream || kind == KIND_AUTO) {
    beginDecision();
    plugin.pool.sync(snapshot, stale);
    routeUnparsed(s.dispatch, decision);
    return apply(s) ? HEADERS_CONTINUE : HEADERS_STOP;
  }
  const type = getHeader(HeaderMap.Request, "content-type");
  if (type != null && !isJsonContentType(type)) {
    decision.error(
      400,
      "content-type must be application/json for " + pathWithoutQuery(path!),
      "invalid_request_error",
      "invalid_content_type",
    );
    apply(s);
    return HEADERS_STOP;
  }
  s.buffering = true;
  s.kind = kind;
  // With allow_on_headers_stop_iteration Envoy holds the headers and delivers the body to us.
  return HEADERS_STOP;
}

/**
 * Whether the cached snapshot is past staleAfterMs, judged on this Envoy's clock (snapshot-cache.ts):
 * a snapshot dated in the future cannot stay fresh.
 */
function isStale(): bool {
  return config.staleAfterMs > 0 && plugin.snapshots.ageMs(nowNanos() / 1_000_000) > config.staleAfterMs;
}

/** The health path: 200 while this plugin holds a snapshot it routes on, else 503 naming why. */
function answerHealth(): void {
  decision.reset();
  decision.probe = true;
  const snapshot = plugin.snapshots.refresh();
  const pool = jsonString(config.poolNamespace + "/" + config.poolName);
  if (snapshot == null) {
    decision.reply(
      503,
      "epp_not_ready",
      '{"status":"not_ready","reason":"no_snapshot","pool":' +
        pool +
        ',"message":"no endpoint snapshot has been received yet"}',
    );
    return;
  }
  const stale = isStale();
  if (stale && config.staleMode == STALE_FAIL) {
    decision.reply(
      503,
      "epp_not_ready",
      '{"status":"not_ready","reason":"stale_snapshot","pool":' +
        pool +
        ',"message":"the endpoint snapshot is older than staleAfterMs and staleMode is fail"}',
    );
    return;
  }
  decision.reply(
    200,
    "epp_ready",
    '{"status":"ready","snapshot":' +
      (stale ? '"stale"' : '"fresh"') +
      ',"pool":' +
      pool +
      ',"generation":"' +
      snapshot.generation.toString() +
      '"}',
  );
}

/** The first look at a body waits for this much of it (or its end): the director's first window. */
const FIRST_LOOK_BYTES: u32 = 24 * 1024;

/** The one slot routeBodyPrefix fills with the watcher for the rest of a body routed on its head. */
const watchSlot: ModelKeyWatch[] = [new ModelKeyWatch()];

/**
 * Routes from the buffered body when it can: `bodySize` bytes are buffered, `complete` when that is all
 * of it. True when the stream may continue; false while buffering or after a local reply.
 */
function routeBuffered(s: Stream, bodySize: u32, complete: bool): bool {
  // The snapshot may have moved on while the body arrived; the cached one never goes back to null.
  // staleMode fail routes a body whose headers were let through on the snapshot's figures, as before.
  beginDecision();
  const snapshot = plugin.snapshots.refresh();
  if (snapshot != null) {
    s.stale = isStale();
    plugin.pool.sync(snapshot, s.stale && config.staleMode != STALE_FAIL);
  }
  const placeholder = watchSlot[0];
  decision.reset(s.dialect);
  routeBodyPrefix(bodySize, complete, s.kind, s.dispatch, watchSlot, decision);
  if (decision.kind == DECIDE_WAIT) {
    s.nextLook = max(bodySize * 2, FIRST_LOOK_BYTES);
    return false;
  }
  if (watchSlot[0] !== placeholder) {
    s.watch = watchSlot[0];
    watchSlot[0] = placeholder;
  }
  return apply(s);
}

/** A chunk of a body routed on its head: watch it for a second `model` (then 400) and let it pass. */
function watchChunk(s: Stream, chunkSize: u32): u32 {
  const w = s.watch!;
  const bytes = getBufferBytes(BUFFER_REQUEST_BODY, 0, chunkSize);
  if (bytes != null) w.feed(changetype<usize>(bytes), bytes.byteLength);
  if (!w.duplicate) return DATA_CONTINUE;
  s.watch = null;
  decision.reset(s.dialect);
  duplicateModel(decision);
  apply(s);
  return DATA_STOP_AND_BUFFER;
}

export function onRequestBody(id: u32, bodySize: u32, endOfStream: bool): u32 {
  const s = enter(id);
  if (s == null) return DATA_CONTINUE;
  if (s.control) return controlBody(bodySize, endOfStream);
  if (s.held) return heldChunk(s, bodySize);
  if (s.watch != null) return watchChunk(s, bodySize);
  if (!s.buffering) return DATA_CONTINUE;
  if (bodySize > config.maxBodyBytes) {
    tooLarge(s);
    return DATA_STOP_AND_BUFFER;
  }
  // Each look re-reads the head, so looks are spaced geometrically: O(body) work in all.
  if (!endOfStream && bodySize < s.nextLook) return DATA_STOP_AND_BUFFER;
  if (!endOfStream && bodySize < FIRST_LOOK_BYTES) {
    s.nextLook = FIRST_LOOK_BYTES;
    return DATA_STOP_AND_BUFFER;
  }
  if (routeBuffered(s, bodySize, endOfStream)) return DATA_CONTINUE;
  return s.held ? DATA_STOP_AND_WATERMARK : DATA_STOP_AND_BUFFER;
}

/**
 * Trailers after a body: on_request_body never saw end_of_stream, and Envoy continues the stream
 * from here (envoy-proxy-wasm.md "Trailers"), so the decision is made now, over the buffered body.
 */
export function onRequestTrailers(id: u32): u32 {
  const s = enter(id);
  if (s == null) return TRAILERS_CONTINUE;
  const size = bufferLength(BUFFER_REQUEST_BODY);
  const bodySize: u32 = size < 0 ? 0 : <u32>min<i64>(size, <i64>u32.MAX_VALUE);
  if (s.control) return controlBody(bodySize, true) == DATA_CONTINUE ? TRAILERS_CONTINUE : TRAILERS_STOP;
  if (s.held) return TRAILERS_STOP;
  if (!s.buffering) return TRAILERS_CONTINUE;
  if (bodySize > config.maxBodyBytes) {
    tooLarge(s);
    return TRAILERS_STOP;
  }
  return routeBuffered(s, bodySize, true) ? TRAILERS_CONTINUE : TRAILERS_STOP;
}

/** `upstream.address` as Envoy serves it: the host of the attempt that answered. */
const UPSTREAM_ADDRESS = String.UTF8.encode("upstream\0address");

function servedBy(): string | null {
  const v = getPropertyEncoded(UPSTREAM_ADDRESS);
  return v == null || v.byteLength == 0 ? null : String.UTF8.decode(v);
}

export function onResponseHeaders(id: u32): u32 {
  const s = enter(id);
  if (s == null || s.picked == null) return HEADERS_CONTINUE;
  // Replace, never add: an upstream's own copy must not survive next to ours.
  const served = servedBy();
  s.served = served;
  const value = served != null ? served : s.picked!;
  replaceHeader(HeaderMap.Response, SERVED_HEADER, value);
  if (config.conformance) replaceHeader(HeaderMap.Response, CONFORMANCE_SERVED_HEADER, value);
  if (config.debugHeaders)
    replaceHeader(HeaderMap.Response, SNAPSHOT_STATE_HEADER, s.stale ? "stale" : "fresh");
  const names = s.responseNames;
  if (names != null) {
    const values = s.responseValues!;
    for (let k = 0; k < names.length; k++) replaceHeader(HeaderMap.Response, names[k], values[k]);
  }
  return HEADERS_CONTINUE;
}

/** on_log: the request is over; its outcome updates the connect-failure marks, its dispatch leaves in-flight. */
export function onLog(id: u32): void {
  const s = enter(id);
  if (s == null) return;
  cancelHeld(s);
  if (s.picked != null && config.failedConnectWindowMs > 0) noteOutcome(s.picked!, s.served, s.dispatch);
  if (s.picked != null && plugin.flow.on) plugin.flow.noteCompleted();
  finishDispatch(s.dispatch);
}

export function onDelete(id: u32): void {
  if (streams.has(id)) {
    const s = streams.get(id);
    cancelHeld(s);
    finishDispatch(s.dispatch);
    streams.delete(id);
    return;
  }
  // A root context going away takes its plugin state with it; absent ids are a no-op, never a trap.
  // A pulling root frees its lease first, so another worker takes over at its next tick.
  const p = pluginOf(id);
  if (p != null) forgetPool(p.pool);
  if (p != null && p.pull != null) {
    activate(p);
    releaseLease(p.pull!);
  }
  forgetPlugin(id);
}
