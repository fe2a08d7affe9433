// One inference request from buffered body to routing decision: scan the JSON once, resolve the model
// (objective → priority, rewrite → target), hash the prompt's leading blocks, schedule, and — when the
// target differs — rewrite the body's `model` and fix content-length. All scratch is per VM and reused.

import {
  BUFFER_REQUEST_BODY,
  getBufferBytes,
  getHeader,
  HeaderMap,
  log,
  logEnabled,
  LogLevel,
  replaceHeader,
  setBufferBytes,
} from "./abi/host.ts";
import { ScanResult, scanErrorBody, STREAM_TRUE } from "./request/result.ts";
import { scanRequest } from "./request/json-scan.ts";
import { extractModel, extractPrompt, DEFAULT_PROMPT_LIMIT } from "./request/prompt.ts";
import { ByteBuffer } from "./request/bytes.ts";
import { rewriteModel } from "./request/rewrite.ts";
import { hasControlCharacters, informationalHeaderValue } from "./request/header-value.ts";
import { computeBlockHashes, BLOCK_SIZE, DEFAULT_MAX_BLOCKS } from "./prefix/blocks.ts";
import { RequestInfo } from "./scheduling/types.ts";
import { MODEL_NOT_FOUND, Resolution, resolveModel } from "./scheduling/models.ts";
import { pickAndRoute } from "./pick.ts";
import { Dispatch } from "./inflight.ts";
import { sendError, sendJsonReply } from "./replies.ts";
import { config, plugin } from "./plugins.ts";

/** The served (target) model, for the upstream and access logs. */
export const MODEL_HEADER = "x-gateway-model-name";
export const OBJECTIVE_HEADER = "x-gateway-inference-objective";
export const REWRITE_HEADER = "x-gateway-model-name-rewrite";
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

function endpointSubset(): string {
  return config.conformance ? requestHeader(SUBSET_HEADER) : "";
}

/** Routes a request whose body is not parsed (no body, or a path we do not know): load only. */
export function routeUnparsed(d: Dispatch): string | null {
  req.reset();
  req.endpointSubset = endpointSubset();
  return pickAndRoute(req, d);
}

/** Routes a buffered OpenAI-style body of `kind` (request/prompt.ts KIND_*). Null = replied locally. */
export function routeBody(bodySize: u32, kind: i32, d: Dispatch): string | null {
  const body = getBufferBytes(BUFFER_REQUEST_BODY, 0, bodySize);
  const ptr: usize = body == null ? 0 : changetype<usize>(body);
  const len = body == null ? 0 : body.byteLength;
  scanRequest(ptr, len, scan);
  if (!scan.ok) {
    sendJsonReply(400, "epp_invalid_request", scanErrorBody(scan.error, scan.errorPos));
    return null;
  }
  extractModel(ptr, len, scan, modelText);
  if (modelText.len > MAX_MODEL_BYTES) {
    sendError(400, '"model" is too long', "invalid_request_error", "invalid_model");
    return null;
  }
  const requested = String.UTF8.decodeUnsafe(modelText.ptr, <usize>modelText.len);
  if (hasControlCharacters(requested)) {
    sendError(
      400,
      '"model" must not contain control characters (U+0000-U+001F, U+007F)',
      "invalid_request_error",
      "invalid_model",
    );
    return null;
  }
  const found = resolveModel(
    plugin.pool.models,
    requested,
    requestHeader(OBJECTIVE_HEADER),
    requestHeader(REWRITE_HEADER),
    plugin.modelRng,
    resolution,
  );
  if (found == MODEL_NOT_FOUND) {
    sendError(
      404,
      "The model `" + requested + "` does not exist in pool " + config.poolNamespace + "/" + config.poolName,
      "invalid_request_error",
      "model_not_found",
    );
    return null;
  }
  const target = resolution.targetModel;
  req.reset();
  req.targetModel = target;
  // A LoRA adapter is served under its own model name; for base models the LoRA scorer is neutral.
  req.adapter = target;
  req.priority = resolution.priority;
  req.criticality = resolution.criticality;
  req.stream = scan.stream == STREAM_TRUE;
  req.endpointSubset = endpointSubset();

  const promptLen = extractPrompt(ptr, len, scan, kind, promptText);
  req.promptBytes = promptLen;
  // A truncated prompt undercounts: the body length is the better size estimate then.
  req.promptTokens = (promptText.truncated ? len : promptLen) / 4;
  if (promptLen >= BLOCK_SIZE) {
    // Blocks are chained from the model the server sees, so rewrites to one target share a cache.
    const targetBytes = resolution.rewritten ? String.UTF8.encode(target) : null;
    const mPtr = targetBytes != null ? changetype<usize>(targetBytes) : modelText.ptr;
    const mLen = targetBytes != null ? targetBytes.byteLength : modelText.len;
    req.hashCount = computeBlockHashes(promptText.ptr, promptLen, mPtr, mLen, hashes);
    req.hashes = hashes;
  }

  const served = pickAndRoute(req, d);
  if (served == null) return null;
  if (resolution.rewritten) {
    const out = rewriteModel(ptr, len, scan, target);
    setBufferBytes(BUFFER_REQUEST_BODY, 0, <u32>len, out);
    // Chunked requests carry no content-length; Envoy re-frames them, so only fix one that exists.
    if (getHeader(HeaderMap.Request, "content-length") != null)
      replaceHeader(HeaderMap.Request, "content-length", out.byteLength.toString());
  }
  replaceHeader(HeaderMap.Request, MODEL_HEADER, informationalHeaderValue(target));
  if (logEnabled(LogLevel.Debug))
    log(LogLevel.Debug, "model " + requested + " served as " + target + " by " + served);
  return served;
}
