// Stream glue for the data path and the plugin lifecycle: configuration, control-path dispatch,
// snapshot refresh, endpoint pick and the destination headers.

import {
  BUFFER_PLUGIN_CONFIGURATION,
  clearRouteCache,
  getBufferBytes,
  getHeader,
  HeaderMap,
  addHeader,
  log,
  LogLevel,
  nowNanos,
  randomU64,
  removeHeader,
  replaceHeader,
} from "./abi/host.ts";
import { parseConfig } from "./config.ts";
import {
  controlBody,
  controlHeaders,
  pathWithoutQuery,
  DATA_CONTINUE,
  HEADERS_CONTINUE,
  HEADERS_STOP,
} from "./control.ts";
import { pickLeastLoaded } from "./pick.ts";
import { seedRandom } from "./random.ts";
import { sendError } from "./replies.ts";
import { config, refreshSnapshot, setConfig } from "./vm-state.ts";

export const DESTINATION_HEADER = "x-gateway-destination-endpoint";
export const SERVED_HEADER = "x-gateway-destination-endpoint-served";

class Stream {
  control: bool = false;
  picked: string | null = null;
}

const streams = new Map<u32, Stream>();

function stream(id: u32): Stream {
  if (streams.has(id)) return streams.get(id);
  const s = new Stream();
  streams.set(id, s);
  return s;
}

export function onConfigure(configSize: u32): bool {
  const bytes = getBufferBytes(BUFFER_PLUGIN_CONFIGURATION, 0, configSize);
  const text = bytes == null ? "" : String.UTF8.decode(bytes);
  const result = parseConfig(text);
  const c = result.config;
  if (c == null) {
    log(LogLevel.Error, result.error);
    return false;
  }
  setConfig(c);
  seedRandom(c.hasRandomSeed ? c.randomSeed : randomU64());
  return true;
}

export function onContextCreate(id: u32, rootId: u32): void {
  if (rootId != 0) streams.set(id, new Stream());
}

export function onRequestHeaders(id: u32, endOfStream: bool): u32 {
  const s = stream(id);
  const path = getHeader(HeaderMap.Request, ":path");
  if (path != null && pathWithoutQuery(path) == config.controlPath) {
    s.control = true;
    return controlHeaders(endOfStream);
  }
  // A client-supplied destination must never survive, whatever happens next.
  removeHeader(HeaderMap.Request, DESTINATION_HEADER);

  const snapshot = refreshSnapshot();
  let usable = snapshot != null;
  if (snapshot != null && config.staleAfterMs > 0) {
    const nowMs = nowNanos() / 1_000_000;
    usable = nowMs <= snapshot.createdAtMs || nowMs - snapshot.createdAtMs <= config.staleAfterMs;
  }
  if (snapshot == null || !usable) {
    if (config.failOpen) return HEADERS_CONTINUE;
    const why =
      snapshot == null ? "no endpoint snapshot has been received yet" : "the endpoint snapshot is stale";
    sendError(503, why, "service_unavailable", snapshot == null ? "no_snapshot" : "stale_snapshot");
    return HEADERS_STOP;
  }
  const e = pickLeastLoaded(snapshot.endpoints);
  if (e == null) {
    sendError(
      503,
      "no ready endpoint in pool " + config.poolNamespace + "/" + config.poolName,
      "service_unavailable",
      "no_ready_endpoint",
    );
    return HEADERS_STOP;
  }
  replaceHeader(HeaderMap.Request, DESTINATION_HEADER, e.hostPort);
  clearRouteCache();
  s.picked = e.hostPort;
  return HEADERS_CONTINUE;
}

export function onRequestBody(id: u32, bodySize: u32, endOfStream: bool): u32 {
  if (!streams.has(id)) return DATA_CONTINUE;
  if (streams.get(id).control) return controlBody(bodySize, endOfStream);
  return DATA_CONTINUE;
}

export function onResponseHeaders(id: u32): u32 {
  if (!streams.has(id)) return HEADERS_CONTINUE;
  const picked = streams.get(id).picked;
  if (picked != null) addHeader(HeaderMap.Response, SERVED_HEADER, picked);
  return HEADERS_CONTINUE;
}

export function onDelete(id: u32): void {
  // Root contexts are never in the map; deleting an absent key is a no-op, never a trap.
  streams.delete(id);
}
