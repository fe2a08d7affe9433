// proxy_http_call over real HTTP (envoy-proxy-wasm.md §2 "http_call"). Validation happens in the
// shim; this module only performs the request and reports (headers, body, trailers) or failure.
// Envoy sends the call through its async client and router, so a connect failure or a timeout before
// the response began comes back as the router's own local reply (503 / 504) delivered as an ordinary
// response (router.cc Filter::onUpstreamReset / onResponseTimeout, async_client_impl.cc
// AsyncStreamImpl::sendLocalReply); only a reset after the response began, or a response over the
// buffer limit, is a failure (Context::onHttpCallFailure → token, 0, 0, 0 and status 11 "reset").
import http from "node:http";
import type { Clock } from "./clock.ts";
import type { HeaderList } from "./types.ts";

export interface HttpCallRequest {
  baseUrl: string;
  headers: HeaderList;
  body: Uint8Array;
  trailers: HeaderList;
  /** 0 = no timeout (Envoy semantics). */
  timeoutMs: number;
}

export interface HttpCallResult {
  headers: HeaderList;
  body: Uint8Array;
  trailers: HeaderList;
}

/** Cap on the buffered response; overflowing it is a failure, as Envoy's response-buffer overflow. */
const MAX_RESPONSE_BYTES = 64 << 20;

/** The router's local reply, as the async client hands it to the plugin. */
function localReply(status: number, text: string): HttpCallResult {
  const body = new TextEncoder().encode(text);
  return {
    headers: [
      [":status", String(status)],
      ["content-length", String(body.length)],
      ["content-type", "text/plain"],
    ],
    body,
    trailers: [],
  };
}

/** Starts the call; `done` runs once (undefined on a failure). Returns a cancel function. */
export function performHttpCall(
  clock: Clock,
  req: HttpCallRequest,
  done: (r: HttpCallResult | undefined) => void,
): () => void {
  let finished = false;
  const finish = (r: HttpCallResult | undefined) => {
    if (finished) return;
    finished = true;
    if (timer !== undefined) clock.clearTimer(timer);
    done(r);
  };
  const url = new URL(req.baseUrl);
  const get = (k: string) => req.headers.find(([n]) => n === k)?.[1] ?? "";
  const headers: Record<string, string | string[]> = {};
  for (const [k, v] of req.headers) {
    if (k.startsWith(":")) continue;
    const prev = headers[k];
    headers[k] = prev === undefined ? v : Array.isArray(prev) ? [...prev, v] : [prev, v];
  }
  headers["host"] = get(":authority");
  // A non-empty body sets content-length.
  if (req.body.length > 0) headers["content-length"] = String(req.body.length);
  const r = http.request({
    protocol: url.protocol,
    hostname: url.hostname,
    port: url.port,
    method: get(":method"),
    path: get(":path"),
    headers,
    agent: false,
  });
  let timer: unknown;
  let responseStarted = false;
  if (req.timeoutMs > 0) {
    timer = clock.setTimer(req.timeoutMs, () => {
      r.destroy(new Error("timeout"));
      finish(responseStarted ? undefined : localReply(504, "upstream request timeout"));
    });
  }
  r.on("error", (err: NodeJS.ErrnoException) =>
    finish(
      responseStarted
        ? undefined
        : localReply(
            503,
            "upstream connect error or disconnect/reset before headers. reset reason: " +
              (err.code === "ECONNREFUSED" || err.code === "EHOSTUNREACH" || err.code === "ENETUNREACH"
                ? `remote connection failure, transport failure reason: delayed connect error: ${err.code}`
                : "connection termination"),
          ),
    ),
  );
  r.on("response", (res) => {
    responseStarted = true;
    const chunks: Buffer[] = [];
    let size = 0;
    res.on("data", (c: Buffer) => {
      size += c.length;
      if (size > MAX_RESPONSE_BYTES) {
        res.destroy();
        finish(undefined);
        return;
      }
      chunks.push(c);
    });
    res.on("error", () => finish(undefined));
    res.on("end", () => {
      const h: HeaderList = [[":status", String(res.statusCode ?? 0)]];
      for (let i = 0; i < res.rawHeaders.length; i += 2)
        h.push([res.rawHeaders[i]!.toLowerCase(), res.rawHeaders[i + 1]!]);
      const t: HeaderList = [];
      for (let i = 0; i < res.rawTrailers.length; i += 2)
        t.push([res.rawTrailers[i]!.toLowerCase(), res.rawTrailers[i + 1]!]);
      finish({ headers: h, body: new Uint8Array(Buffer.concat(chunks)), trailers: t });
    });
  });
  r.end(req.body.length > 0 ? req.body : undefined);
  return () => {
    finished = true;
    if (timer !== undefined) clock.clearTimer(timer);
    r.destroy();
  };
}
