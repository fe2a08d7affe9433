// One inference request from body to routing decision, made as soon as the body's head allows: scan
// the head for `model` and the prompt's leading blocks, resolve the model (objective → priority, rewrite
// → target), hash, schedule, and — when the target differs — rewrite `model` in the head and fix
// content-length. The rest of the body streams past (model-key-watch.ts). All scratch is per VM.

import {
  BUFFER_REQUEST_BODY,
  getBufferBytes,
  getHeader,
  HeaderMap,
  log,
  logEnabled,
  LogLevel,
} from "./abi/host.ts";
import {
  MAX_DEPTH,
  ScanResult,
  scanErrorMessage,
  scanErrorParam,
  SCAN_INCOMPLETE,
  SCAN_MODEL_DUPLICATE,
  SCAN_MODEL_MISSING,
  STREAM_TRUE,
} from "./request/result.ts";
import {
  scanPrefix,
  scanRequest,
  KEY_INPUT,
  KEY_INSTRUCTIONS,
  KEY_MESSAGES,
  KEY_PROMPT,
  KEY_SYSTEM,
} from "./request/json-scan.ts";
import {
  extractModel,
  extractPrompt,
  DEFAULT_PROMPT_LIMIT,
  KIND_CHAT,
  KIND_COMPLETIONS,
  KIND_EMBEDDINGS,
  KIND_MESSAGES,
  KIND_RESPONSES,
} from "./request/prompt.ts";
import { ByteBuffer } from "./request/bytes.ts";
import { rewrittenHead } from "./request/rewrite.ts";
import { closePrefix } from "./request/body-prefix.ts";
import { ModelKeyWatch } from "./request/model-key-watch.ts";
import { hasControlCharacters } from "./request/header-value.ts";
import { computeBlockHashes, BLOCK_SIZE, DEFAULT_MAX_BLOCKS } from "./prefix/blocks.ts";
import { RequestInfo } from "./scheduling/types.ts";
import { MODEL_NOT_FOUND, Resolution, resolveModel } from "./scheduling/models.ts";
import { pick } from "./pick.ts";
import { Dispatch } from "./inflight.ts";
import { Decision, DECIDE_QUEUE, DECIDE_ROUTE, dialectOf } from "./decision.ts";
import { config, plugin } from "./plugins.ts";

/** The served (target) model, for the upstream and access logs. */
export const MODEL_HEADER = "x-gateway-model-name";
export const OBJECTIVE_HEADER = "x-gateway-inference-objective";
export const REWRITE_HEADER = "x-gateway-model-name-rewrite";
/** llm-d Router's names for the same inputs; GIE's name wins when a request carries both. */
export const LLMD_OBJECTIVE_HEADER = "x-llm-d-inference-objective";
export const LLMD_REWRITE_HEADER = "x-llm-d-model-name-rewrite";
/** GIE conformance: restricts candidates to the listed IPs (only with plugin config conformance: true). */
export const SUBSET_HEADER = "test-epp-endpoint-selection";

/** Model names longer than this are refused (400) rather than copied around. */
const MAX_MODEL_BYTES: i32 = 4096;

const scan = new ScanResult();
const promptText = new ByteBuffer(DEFAULT_PROMPT_LIMIT, 4096);
const modelText = new ByteBuffer(MAX_MODEL_BYTES + 1, 64);
const hashes = new StaticArray<u64>(DEFAULT_MAX_BLOCKS);
const req = new RequestInfo();
const resolution = new Resolution();

function requestHeader(name: string): string {
  const v = getHeader(HeaderMap.Request, name);
  return v == null ? "" : v;
}

/** The first of two header names the request carries, "" when neither. */
function eitherHeader(name: string, alternative: string): string {
  const v = getHeader(HeaderMap.Request, name);
  if (v != null) return v;
  return requestHeader(alternative);
}

/** Reads the request headers the scheduler's plugins ask for into `req` (by index; "" when absent). */
function readPluginHeaders(): void {
  const names = plugin.pool.scheduler.wantedRequestHeaders();
  for (let i = 0; i < names.length; i++) req.pluginHeaderValues.push(requestHeader(unchecked(names[i])));
}

function endpointSubset(): string {
  return config.conformance ? requestHeader(SUBSET_HEADER) : "";
}

/** Decides for a request whose body is not parsed (no body, or a path we do not know): load only. */
export function routeUnparsed(d: Dispatch, out: Decision): void {
  req.reset();
  req.endpointSubset = endpointSubset();
  readPluginHeaders();
  pick(req, d, out);
}

/** The first look at a body: enough for `model` and a full prompt window in the usual field order. */
const FIRST_WINDOW: i32 = 24 * 1024;
/** Past this much JSON, a prompt that still has not filled the hashing limit is routed with what it has. */
const MAX_PROMPT_WINDOW: i32 = 256 * 1024;
/** Bytes read per call while catching the key watcher up with the buffered body. */
const WATCH_SLICE: i32 = 64 * 1024;

/** Closed form of a truncated prefix (body-prefix.ts), for the prompt reader. */
const closed = new ByteBuffer(MAX_PROMPT_WINDOW + 2 * MAX_DEPTH + 2, 4096);
const promptScan = new ScanResult();
/**
 * Closing a cut string adds template text that the real prompt does not have there (at most
 * "\n<|im_end|>\n" after a cut role or content): a closed prompt is trusted to the limit only when it
 * runs this far past it.
 */
const CLOSING_SLACK: i32 = 16;
const closedPrompt = new ByteBuffer(DEFAULT_PROMPT_LIMIT + CLOSING_SLACK, 4096);
// The prompt routeScanned hashes: promptText's bytes for a whole body, closedPrompt's for a cut one.
let promptPtr: usize = 0;
let promptLen: i32 = 0;
const headScan = new ScanResult();

/** The top-level field that carries the prompt of `kind` has fully arrived. */
function promptFieldDone(r: ScanResult, kind: i32): bool {
  const cut = r.cut.topKey;
  if (kind == KIND_CHAT) return r.messages.present && cut != KEY_MESSAGES;
  if (kind == KIND_COMPLETIONS) return r.prompt.present && cut != KEY_PROMPT;
  if (kind == KIND_EMBEDDINGS) return r.input.present && cut != KEY_INPUT;
  if (kind == KIND_MESSAGES) return r.messages.present && cut != KEY_MESSAGES && leadDone(r, kind);
  return r.input.present && cut != KEY_INPUT && leadDone(r, kind);
}

/**
 * The field rendered before the main one has fully arrived: `instructions` for /v1/responses, `system`
 * for /v1/messages. Either may sit anywhere in the body, and absent from the head may still follow:
 * a prefix decision waits for it (or for the window limit), since it would change the first blocks.
 */
function leadDone(r: ScanResult, kind: i32): bool {
  if (kind == KIND_RESPONSES) return r.instructions.present && r.cut.topKey != KEY_INSTRUCTIONS;
  if (kind == KIND_MESSAGES) return r.system.present && r.cut.topKey != KEY_SYSTEM;
  return true;
}

function refuse(out: Decision, code: i32, at: i32): void {
  out.error(400, scanErrorMessage(code, at), "invalid_request_error", "", scanErrorParam(code));
}

/**
 * Decides for an OpenAI-style body of `kind` (request/prompt.ts KIND_*) from what has arrived: `available`
 * bytes are buffered and `complete` says whether that is the whole body. Reads as little as it can: the
 * head up to `model` and the first MAX_PROMPT_WINDOW bytes at most for the prompt. `out` stays DECIDE_WAIT
 * while more of the body is needed. When the decision comes before the whole body has been read,
 * `watchOut[0]` receives the watcher for the rest.
 */
export function routeBodyPrefix(
  available: u32,
  complete: bool,
  kind: i32,
  d: Dispatch,
  watchOut: ModelKeyWatch[],
  out: Decision,
): void {
  // The body's API decides the shape of any error this request gets from here on.
  out.dialect = dialectOf(kind);
  const total = <i32>min<u32>(available, <u32>i32.MAX_VALUE);
  let window = FIRST_WINDOW;
  let body: ArrayBuffer | null = null;
  let ptr: usize = 0;
  let n = 0;
  let whole = false;
  // Widen the window until it holds `model`, then until the prompt is long enough or fully seen.
  while (true) {
    n = min(total, window);
    whole = complete && n == total;
    body = getBufferBytes(BUFFER_REQUEST_BODY, 0, <u32>n);
    ptr = body == null ? 0 : changetype<usize>(body);
    n = body == null ? 0 : body.byteLength;
    if (whole) scanRequest(ptr, n, scan);
    else scanPrefix(ptr, n, scan);
    if (!scan.ok && scan.error != SCAN_INCOMPLETE) return refuse(out, scan.error, scan.errorPos);
    if (!scan.model.present) {
      if (n < total) {
        window = n * 2;
        continue;
      }
      return;
    }
    if (scan.model.end - scan.model.start <= 2) return refuse(out, SCAN_MODEL_MISSING, 0);
    if (whole || !scan.cut.truncated) break;
    const short = promptShort(ptr, n, kind);
    if (short || !leadDone(scan, kind)) {
      if (n < total && n < MAX_PROMPT_WINDOW) {
        window = n * 2;
        continue;
      }
      if (!complete && n < MAX_PROMPT_WINDOW) return;
    }
    break;
  }
  let watch: ModelKeyWatch | null = null;
  if (!whole && scan.cut.truncated) {
    // Deciding on a prefix: what has arrived beyond it is checked for a second `model` first.
    watch = ModelKeyWatch.fromCut(scan.cut);
    // The window is already in memory; only what arrived beyond it is read from the buffer.
    const safe = scan.cut.safePos;
    watch.feed(ptr + <usize>safe, n - safe);
    let at = n;
    while (at < total) {
      const slice = getBufferBytes(BUFFER_REQUEST_BODY, <u32>at, <u32>min(WATCH_SLICE, total - at));
      if (slice == null || slice.byteLength == 0) break;
      watch.feed(changetype<usize>(slice), slice.byteLength);
      at += slice.byteLength;
    }
    if (watch.duplicate) return duplicateModel(out);
  }
  routeScanned(ptr, n, kind, d, contentLength(total), out);
  if ((out.kind == DECIDE_ROUTE || out.kind == DECIDE_QUEUE) && watch != null) watchOut[0] = watch;
}

/** A second top-level `model` in the part of the body that followed the decision. */
export function duplicateModel(out: Decision): void {
  refuse(out, SCAN_MODEL_DUPLICATE, 0);
}

/**
 * Reads the prompt of the truncated prefix [ptr, ptr+n) (`scan` holds its prefix scan) into promptText,
 * from at most MAX_PROMPT_WINDOW bytes. True when the prompt is shorter than the hashing limit and its
 * field has not fully arrived: more of the body would add to it.
 */
function promptShort(ptr: usize, n: i32, kind: i32): bool {
  let head = scan;
  const m = min(n, MAX_PROMPT_WINDOW);
  if (m < n) {
    // The window grew past the prompt limit to find `model`: close only its first part.
    scanPrefix(ptr, m, headScan);
    head = headScan;
  }
  closedPrompt.reset();
  promptPtr = closedPrompt.ptr;
  promptLen = 0;
  if (!head.cut.truncated || !closePrefix(ptr, m, head.cut, closed)) return true;
  scanRequest(closed.ptr, closed.len, promptScan);
  if (!promptScan.ok) return true;
  const len = extractPrompt(closed.ptr, closed.len, promptScan, kind, closedPrompt);
  promptLen = min(len, DEFAULT_PROMPT_LIMIT);
  return len < closedPrompt.limit && !promptFieldDone(scan, kind);
}

/** The body's announced length, or what has arrived when it is chunked. */
function contentLength(arrived: i32): i32 {
  const v = getHeader(HeaderMap.Request, "content-length");
  if (v == null || v.length == 0) return arrived;
  const parsed = I32.parseInt(v);
  return parsed > arrived ? parsed : arrived;
}

/**
 * Routes from the scanned window [ptr, ptr+n): resolve the model, hash the prompt (already in
 * promptText when the window was truncated), schedule, and rewrite the head when the target differs.
 */
function routeScanned(ptr: usize, n: i32, kind: i32, d: Dispatch, bodyBytes: i32, out: Decision): void {
  extractModel(ptr, n, scan, modelText);
  if (modelText.len > MAX_MODEL_BYTES) {
    out.error(400, '"model" is too long', "invalid_request_error", "invalid_model");
    return;
  }
  const requested = String.UTF8.decodeUnsafe(modelText.ptr, <usize>modelText.len);
  if (hasControlCharacters(requested)) {
    out.error(
      400,
      '"model" must not contain control characters (U+0000-U+001F, U+007F)',
      "invalid_request_error",
      "invalid_model",
    );
    return;
  }
  const objective = eitherHeader(OBJECTIVE_HEADER, LLMD_OBJECTIVE_HEADER);
  out.modelName = requested;
  out.objective = objective;
  const found = resolveModel(
    plugin.pool.models,
    requested,
    objective,
    eitherHeader(REWRITE_HEADER, LLMD_REWRITE_HEADER),
    plugin.modelRng,
    resolution,
  );
  if (found == MODEL_NOT_FOUND) {
    out.error(
      404,
      "The model `" + requested + "` does not exist in pool " + config.poolNamespace + "/" + config.poolName,
      "invalid_request_error",
      "model_not_found",
    );
    return;
  }
  const target = resolution.targetModel;
  out.targetName = target;
  req.reset();
  req.targetModel = target;
  // A LoRA adapter is served under its own model name; for base models the LoRA scorer is neutral.
  req.adapter = target;
  req.priority = resolution.priority;
  req.criticality = resolution.criticality;
  req.stream = scan.stream == STREAM_TRUE;
  req.endpointSubset = endpointSubset();
  readPluginHeaders();

  // A truncated window's prompt was read from its closed form (promptShort); a whole one is read here.
  const cut = scan.cut.truncated;
  if (!cut) {
    promptLen = extractPrompt(ptr, n, scan, kind, promptText);
    promptPtr = promptText.ptr;
  }
  req.promptBytes = promptLen;
  // A prompt cut at the hashing limit undercounts: the body's length is the better size estimate then.
  req.promptTokens = (cut || promptText.truncated ? bodyBytes : promptLen) / 4;
  if (promptLen >= BLOCK_SIZE) {
    // Blocks are chained from the model the server sees, so rewrites to one target share a cache.
    const targetBytes = resolution.rewritten ? String.UTF8.encode(target) : null;
    const mPtr = targetBytes != null ? changetype<usize>(targetBytes) : modelText.ptr;
    const mLen = targetBytes != null ? targetBytes.byteLength : modelText.len;
    req.hashCount = computeBlockHashes(promptPtr, promptLen, mPtr, mLen, hashes);
    req.hashes = hashes;
  }

  pick(req, d, out);
  // A held request gets its rewrite now: the body is reachable only from its own callbacks.
  if (out.kind != DECIDE_ROUTE && out.kind != DECIDE_QUEUE) return;
  out.targetModel = target;
  if (resolution.rewritten) {
    const head = rewrittenHead(ptr, scan, target);
    out.head = head;
    out.headEnd = scan.model.end;
    // Chunked requests carry no content-length; Envoy re-frames them, so only fix one that exists.
    const length = getHeader(HeaderMap.Request, "content-length");
    if (length != null && length.length > 0)
      out.contentLength = I64.parseInt(length) + <i64>(head.byteLength - scan.model.end);
  }
  if (logEnabled(LogLevel.Debug))
    log(LogLevel.Debug, "model " + requested + " served as " + target + " by " + out.served);
}

/** The request the director last scheduled (a held request keeps a copy for its dispatch). */
export function lastRequest(): RequestInfo {
  return req;
}
