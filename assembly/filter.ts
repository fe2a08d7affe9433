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
import { DESTINATION_HEADER } from "./pick.ts";
import { duplicateModel, MODEL_HEADER, routeBodyPrefix, routeUnparsed } from "./inference-request.ts";
import { Decision, DECIDE_PASS, DECIDE_REPLY, DECIDE_ROUTE, DECIDE_WAIT } from "./decision.ts";
import { informationalHeaderValue } from "./request/header-value.ts";
import { ModelKeyWatch } from "./request/model-key-watch.ts";
import { Dispatch, finishDispatch } from "./inflight.ts";
import { kindFromPath, KIND_AUTO } from "./request/prompt.ts";
import { jsonString } from "./snapshot/to-json.ts";
import { activate, config, configurePlugin, forgetPlugin, Plugin, plugin, pluginOf } from "./plugins.ts";
import { releaseLease } from "./pull.ts";
import { noteOutcome } from "./outcome.ts";
import { beginDecision, countDecision, forgetPool } from "./metrics.ts";

export { DESTINATION_HEADER };
export const SERVED_HEADER = "x-gateway-destination-endpoint-served";
/** With debugHeaders: whether the pick was made on a fresh snapshot or on a stale one (staleMode route). */
export const SNAPSHOT_STATE_HEADER = "x-epp-snapshot-state";

class Stream {
  control: bool = false;
  /** Waiting for the end of an OpenAI body; `kind` says how to read its prompt. */
  buffering: bool = false;
  kind: i32 = KIND_AUTO;
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
  constructor(readonly plugin: Plugin) {}
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
  configurePlugin(rootId, c, c.hasRandomSeed ? c.randomSeed : randomU64(), holder);
  // Pull mode polls on the root's tick (Envoy allows setting it from on_configure); a root that stops
  // pulling stops its tick.
  if (c.pullEnabled()) setTickPeriod(c.pullIntervalMs);
  else if (wasPulling) setTickPeriod(0);
  return true;
}

export function onContextCreate(id: u32, rootId: u32): void {
  if (rootId == 0) return;
  const p = pluginOf(rootId);
  // A root that was never configured has no plugin: its streams pass through untouched.
  if (p != null) streams.set(id, new Stream(p));
}

/** The one Decision of this VM: the director fills it, apply() carries it out. */
const decision = new Decision();

function tooLarge(s: Stream): void {
  decision.reset();
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
  if (d.decided && !d.probe) countDecision(d);
  if (d.kind == DECIDE_REPLY) {
    s.buffering = false;
    d.replyNames.push("content-type");
    d.replyValues.push("application/json");
    sendLocalReply(d.status, d.details, d.body, d.replyNames, d.replyValues);
    return false;
  }
  if (d.kind == DECIDE_PASS) {
    s.buffering = false;
    return true;
  }
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

  const snapshot = plugin.snapshots.refresh();
  const stale = snapshot != null && isStale();
  // staleMode fail: past staleAfterMs the snapshot is unusable and the failure mode applies.
  decision.reset();
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
  const kind = path == null ? KIND_AUTO : kindFromPath(path);
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
  decision.reset();
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
  decision.reset();
  duplicateModel(decision);
  apply(s);
  return DATA_STOP_AND_BUFFER;
}

export function onRequestBody(id: u32, bodySize: u32, endOfStream: bool): u32 {
  const s = enter(id);
  if (s == null) return DATA_CONTINUE;
  if (s.control) return controlBody(bodySize, endOfStream);
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
  return routeBuffered(s, bodySize, endOfStream) ? DATA_CONTINUE : DATA_STOP_AND_BUFFER;
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
  replaceHeader(HeaderMap.Response, SERVED_HEADER, served != null ? served : s.picked!);
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
  if (s.picked != null && config.failedConnectWindowMs > 0) noteOutcome(s.picked!, s.served, s.dispatch);
  finishDispatch(s.dispatch);
}

export function onDelete(id: u32): void {
  if (streams.has(id)) {
    finishDispatch(streams.get(id).dispatch);
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
