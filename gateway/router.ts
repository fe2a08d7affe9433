// Envoy's router filter for one request (source/common/router/router.cc Filter): picks a host per attempt,
// forwards the request, retries resets before the response started under the route retry policy (replaying the
// buffered body), and answers upstream failures with Envoy's local replies.
import http from "node:http";
import type { Socket } from "node:net";
import type { HeaderList, HttpStream } from "../host/index.ts";
import { ResponseFlag } from "../host/types.ts";
import type { Cluster, LbContext, UpstreamHost } from "./cluster.ts";
import type { RetryPolicyConfig } from "./config.ts";
import { RetryState, type ResetReason } from "./retry.ts";
import type { GatewayStats } from "./stats.ts";
import { fromWire, headerProblem, isToken, toOutgoing, toWire } from "./headers.ts";
import { connectFailureText } from "./connect-error.ts";
import { H2Attempt, type H2Sessions } from "./upstream-h2.ts";
import {
  AttemptBase,
  type AttemptEvents,
  type BodySink,
  type Upstream,
  type UpstreamResponse,
} from "./upstream.ts";

// Hop-by-hop headers are never forwarded (RFC 9110 §7.6.1); Envoy drops them too.
export const HOP_BY_HOP = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "transfer-encoding",
  "te",
  "trailer",
  "upgrade",
]);

// router.cc Filter::streamResetReasonToResponseFlag for the reasons an HTTP/1.1 or h2c attempt can end with.
const RESET_FLAG: Record<ResetReason, number> = {
  "local connection failure": ResponseFlag.UpstreamConnectionFailure,
  "remote connection failure": ResponseFlag.UpstreamConnectionFailure,
  "connection timeout": ResponseFlag.UpstreamConnectionFailure,
  "connection termination": ResponseFlag.UpstreamConnectionTermination,
  "local reset": ResponseFlag.LocalReset,
  "protocol error": ResponseFlag.UpstreamProtocolError,
  "remote reset": ResponseFlag.UpstreamRemoteReset,
  "remote refused stream reset": ResponseFlag.UpstreamRemoteReset,
};

// Header conversion and checks live in headers.ts; re-exported for the server and older imports.
export { fromWire, toWire };

export interface RouterOptions {
  cluster: Cluster;
  retryPolicy?: RetryPolicyConfig;
  /** The decoder buffer limit: the most request body kept for a retry (Envoy's retry_shadow_buffer_limit_). */
  bufferLimitBytes: number;
  connectTimeoutMs: number;
  upstreamTimeoutMs: number;
  agent: http.Agent;
  /** Set when the cluster speaks HTTP/2 cleartext to its hosts (cluster.http2): attempts go out on these sessions. */
  h2?: H2Sessions;
  stats: GatewayStats;
  random?: () => number;
  log?: (obj: object, msg: string) => void;
}

/** How the router talks back to the downstream side. */
export interface Downstream {
  stream: HttpStream;
  /** A router local reply (sendLocalReply): it still passes the filter's encode callbacks. */
  localReply(status: number, body: string, details: string): void;
  /** Abort the downstream response (the response already started): no clean end. */
  reset(): void;
  /** Stop / restart reading the request body (the upstream is not taking more yet). */
  pauseRequest?(): void;
  resumeRequest?(): void;
}

/** One upstream attempt over HTTP/1.1 (Envoy's UpstreamRequest). */
class UpstreamAttempt extends AttemptBase<RouterOptions> {
  private readonly req: http.ClientRequest | undefined;

  constructor(
    host: UpstreamHost,
    method: string,
    path: string,
    headers: http.OutgoingHttpHeaders,
    o: RouterOptions,
    ev: AttemptEvents,
  ) {
    super(o, ev);
    if (host.port === 0) {
      // ORIGINAL_DST accepts port 0 (parseInternetAddressAndPortNoThrow); connecting to it is refused. Node would
      // silently use port 80 instead, so fail the attempt as the kernel would.
      setImmediate(() => this.fail("remote connection failure", "delayed connect error: Connection refused"));
      return;
    }
    let req: http.ClientRequest;
    try {
      req = http.request({
        host: host.host,
        port: host.port,
        method,
        path,
        headers,
        agent: o.agent,
        timeout: o.upstreamTimeoutMs,
      });
    } catch (err) {
      // Node refused the request head (e.g. a header value it will not send): nothing left the gateway.
      o.log?.({ err: (err as Error).message }, "upstream request not sent");
      setImmediate(() => this.fail("local reset", ""));
      return;
    }
    this.req = req;
    req.on("socket", (socket: Socket) => {
      if (!socket.connecting) {
        this.connected = true; // a kept-alive connection from the pool
        o.stats.inc("upstream_rq_total");
        return;
      }
      // Cluster.connect_timeout.
      this.connectTimer = setTimeout(() => {
        o.stats.inc("upstream_cx_connect_timeout");
        this.fail("connection timeout", "connect timeout");
        req.destroy();
      }, o.connectTimeoutMs);
      socket.once("connect", () => {
        clearTimeout(this.connectTimer);
        this.connected = true;
        o.stats.inc("upstream_rq_total");
      });
    });
    req.on("response", (res) => {
      if (this.settled) {
        res.resume();
        return;
      }
      this.settled = true;
      ev.onResponse(res);
    });
    // Idle on the upstream socket for upstreamTimeoutMs, also while the response streams.
    req.on("timeout", () => {
      if (this.destroyed) return;
      this.settled = true;
      this.destroy();
      ev.onTimeout();
    });
    req.on("error", (err: NodeJS.ErrnoException) => {
      if (!this.connected) {
        this.fail("remote connection failure", connectFailureText(err));
      } else if (err.code?.startsWith("HPE_")) {
        this.fail("protocol error", "");
      } else {
        // The connection closed or reset after the request was (at least partly) sent, before headers.
        this.fail("connection termination", "");
      }
    });
  }

  protected get sink(): BodySink | undefined {
    return this.req;
  }

  /** Ends the request, with trailers if the downstream sent some (chunked encoding carries them). */
  end(trailers?: HeaderList): void {
    if (!this.req || this.req.destroyed || this.req.writableEnded) return;
    // Router.decodeTrailers checked them, so addTrailers does not throw.
    if (trailers && trailers.length > 0) this.req.addTrailers(toOutgoing(trailers).headers);
    this.req.end();
  }

  protected abandon(): void {
    this.req?.destroy();
  }
}

export class Router {
  private readonly ctx: LbContext;
  private readonly method: string;
  private readonly path: string;
  private readonly outgoing: http.OutgoingHttpHeaders = {};
  /** Envoy's upstream codec refuses to encode this request (invalid header name or value). */
  private invalidHeader: string | undefined;
  private retry: RetryState | undefined;
  /** Request body kept for retries until the response starts (Envoy's addDecodedData while retries are possible). */
  private buffered: Uint8Array[] = [];
  private bufferedBytes = 0;
  private requestComplete = false;
  /** Request trailers, kept to replay on a retry (Envoy keeps downstream_trailers_). */
  private trailers: HeaderList | undefined;
  private attempt: Upstream | undefined;
  private backoffTimer: NodeJS.Timeout | undefined;
  private isRetry = false;
  private requestStarted = false;
  private responseStarted = false;
  private done = false;
  /** The client's body is not being read while the attempt's socket buffer is full. */
  private readPaused = false;
  private upstreamResponse: UpstreamResponse | undefined;

  constructor(
    headers: HeaderList,
    endOfStream: boolean,
    private readonly o: RouterOptions,
    private readonly down: Downstream,
  ) {
    this.ctx = { headers };
    let method = "GET";
    let path = "/";
    for (const [k, v] of headers) {
      if (k === ":method") method = v;
      else if (k === ":path") path = toWire(v);
      // No authority (an HTTP/1.0 request without Host): Node writes the upstream's own Host.
      else if (k === ":authority" && v !== "") this.outgoing["host"] = toWire(v);
    }
    const regular = toOutgoing(headers, HOP_BY_HOP);
    Object.assign(this.outgoing, regular.headers);
    // HeaderUtility::checkValidRequestHeaders checks every header, pseudo-headers included. Node adds its own
    // rules for the request line (a method token, a path without SP or controls: _http_client.js
    // INVALID_PATH_REGEX), which would otherwise throw inside http.request.
    this.invalidHeader =
      (isToken(method) ? undefined : `invalid header value for: :method`) ??
      (/^[\x21-\xff]+$/.test(path) ? undefined : `invalid header value for: :path`) ??
      headerProblem("host", String(this.outgoing["host"] ?? "")) ??
      regular.problem;
    // A body without a content-length (the client sent it chunked; transfer-encoding is hop-by-hop) goes chunked
    // upstream, as Envoy's HTTP/1 encoder does (http1/codec_impl.cc StreamEncoderImpl::encodeHeadersBase). Node
    // would otherwise send it unframed for GET, HEAD, DELETE, OPTIONS and TRACE (useChunkedEncodingByDefault is
    // off for them): the body bytes would read as the next request on the upstream connection.
    if (!endOfStream && this.outgoing["content-length"] === undefined) {
      this.outgoing["transfer-encoding"] = "chunked";
    }
    this.method = method;
    this.path = path;
    this.requestComplete = endOfStream;
    if (o.retryPolicy) this.retry = new RetryState(o.retryPolicy, o.stats, o.random);
    this.chooseAndStart();
  }

  /** Filter::decodeData: buffer for retries (bounded by the buffer limit) and stream to the current attempt. */
  decodeData(data: Uint8Array, endOfStream: boolean): void {
    if (this.done) return;
    if (endOfStream) this.requestComplete = true;
    if (this.retry && !this.responseStarted) {
      if (this.bufferedBytes + data.length > this.o.bufferLimitBytes) {
        // Give up on retries (retry_or_shadow_abandoned). Waiting for a back-off: nothing left to send to → 507.
        this.o.stats.inc("retry_or_shadow_abandoned");
        this.retry = undefined;
        this.buffered = [];
        this.bufferedBytes = 0;
        if (!this.attempt) {
          this.finish();
          this.down.localReply(
            507,
            "exceeded request buffer limit while retrying upstream",
            "request_payload_exceeded_retry_buffer_limit",
          );
          return;
        }
      } else {
        // A copy (the caller reuses its buffer); slice() is a memcpy, Uint8Array.from walks the iterator.
        this.buffered.push(data.slice());
        this.bufferedBytes += data.length;
      }
    }
    if (this.attempt) {
      if (data.length > 0 && !this.attempt.write(data)) this.waitForDrain(this.attempt);
      if (endOfStream) this.attempt.end();
    } else if (!this.retry) {
      this.finish();
      this.down.localReply(
        503,
        "upstream is closed prematurely during decoding data from downstream",
        "early_upstream_reset",
      );
    }
  }

  /** Filter::decodeTrailers: the trailers end the request. */
  decodeTrailers(trailers: HeaderList): void {
    if (this.done) return;
    const problem = toOutgoing(trailers).problem;
    if (problem) {
      // Node would throw in addTrailers. Envoy's HTTP/1 encoder writes trailers unchecked; refusing the request
      // (a local reply, or a reset once the response started) is our deliberate difference.
      this.o.log?.({ problem }, "request trailer not sendable");
      this.finish();
      this.down.localReply(503, `invalid trailer: ${problem}`, "invalid_request_trailer");
      return;
    }
    this.requestComplete = true;
    this.trailers = trailers;
    this.attempt?.end(trailers);
  }

  /**
   * Flow control toward the upstream (Envoy's onDecoderFilterAboveWriteBufferHighWatermark): while the attempt's
   * socket buffer is full, the client's body is not read, so a slow upstream costs no memory here.
   */
  private waitForDrain(attempt: Upstream): void {
    if (this.readPaused) return;
    this.readPaused = true;
    this.down.pauseRequest?.();
    attempt.onDrain(() => this.resumeReading());
  }

  private resumeReading(): void {
    if (!this.readPaused) return;
    this.readPaused = false;
    this.down.resumeRequest?.();
  }

  /** The client is not taking the response as fast as it comes: stop reading the upstream until it drains. */
  pauseResponse(): void {
    this.upstreamResponse?.pause();
  }

  resumeResponse(): void {
    this.upstreamResponse?.resume();
  }

  /** The downstream went away or the filter replied locally: stop everything upstream. */
  abort(): void {
    this.finish();
  }

  private finish(): void {
    this.done = true;
    clearTimeout(this.backoffTimer);
    this.attempt?.destroy();
    this.attempt = undefined;
    this.buffered = [];
    this.resumeReading();
  }

  /** Filter::decodeHeaders / doRetry: ask the cluster for this attempt's host, then send. */
  private chooseAndStart(): void {
    const host = this.o.cluster.chooseHost(this.ctx);
    if (!host) {
      // Filter::sendNoHealthyUpstreamResponse.
      this.finish();
      this.down.stream.setResponseInfo({
        flags: ResponseFlag.NoHealthyUpstream,
        details: "no_healthy_upstream",
      });
      this.down.localReply(503, "no healthy upstream", "no_healthy_upstream");
      return;
    }
    // The served host for upstream.* properties, per attempt, before any response reaches the filter.
    this.down.stream.setUpstreamHost(host.host, host.port);
    if (this.invalidHeader) {
      // source/common/router/upstream_codec_filter.cc UpstreamCodecFilter::decodeHeaders: the request encoder's
      // HeaderUtility::checkValidRequestHeaders failed → a local reply, not a retriable reset.
      this.finish();
      const details = `filter_removed_required_request_headers{${this.invalidHeader.replace(/\s/g, "_")}}`;
      this.down.localReply(503, this.invalidHeader, details);
      return;
    }
    const events: AttemptEvents = {
      onResponse: (res) => this.onResponse(attempt, res),
      onFailure: (reason, transport, started) => this.onFailure(attempt, host, reason, transport, started),
      onTimeout: () => this.onTimeout(attempt),
    };
    const attempt: Upstream = this.o.h2
      ? new H2Attempt(this.o.h2, host, this.method, this.path, this.outgoing, this.o, events)
      : new UpstreamAttempt(host, this.method, this.path, this.outgoing, this.o, events);
    this.attempt = attempt;
    let full = false;
    for (const chunk of this.buffered) full = !attempt.write(chunk) || full;
    if (full) this.waitForDrain(attempt);
    if (this.requestComplete) attempt.end(this.trailers);
  }

  /** Filter::onUpstreamReset → maybeRetryReset, else onUpstreamAbort with Envoy's reply text. */
  private onFailure(
    attempt: Upstream,
    host: UpstreamHost,
    reason: ResetReason,
    transportFailure: string,
    requestStarted: boolean,
  ): void {
    if (this.done || attempt !== this.attempt) return;
    this.attempt = undefined;
    // The replay buffer (bounded by the buffer limit) takes the body while no attempt is running.
    this.resumeReading();
    this.o.log?.({ upstream: host.key, reason, transportFailure }, "upstream attempt failed");
    // Filter::maybeRetryReset: upstream_request_started_ is sticky across attempts.
    this.requestStarted ||= requestStarted;
    const delay = this.retry?.shouldRetryReset(reason, this.requestStarted);
    if (delay !== undefined) {
      this.isRetry = true;
      this.backoffTimer = setTimeout(() => {
        if (!this.done) this.chooseAndStart();
      }, delay);
      return;
    }
    this.finish();
    const status = reason === "protocol error" ? 502 : 503;
    const body =
      "upstream connect error or disconnect/reset before headers. " +
      (this.isRetry ? "retried and the latest " : "") +
      `reset reason: ${reason}` +
      (transportFailure ? `, transport failure reason: ${transportFailure}` : "");
    const details = `upstream_reset_before_response_started{${reason}${transportFailure ? `|${transportFailure}` : ""}}`;
    // router.cc maybeRetryReset (URX when out of retries), onUpstreamReset → streamResetReasonToResponseFlag.
    const flags =
      (this.retry?.limitExceeded ? ResponseFlag.UpstreamRetryLimitExceeded : 0) | RESET_FLAG[reason];
    this.down.stream.setResponseInfo({ flags, details: details.replace(/\s/g, "_") });
    this.down.localReply(status, body, details.replace(/\s/g, "_"));
  }

  /** Filter::onResponseTimeout: 504 before the response started, else reset. */
  private onTimeout(attempt: Upstream): void {
    if (this.done || attempt !== this.attempt) return;
    this.o.stats.inc("upstream_rq_timeout");
    this.finish();
    if (this.responseStarted) this.down.reset();
    else {
      // Filter::onResponseTimeout: UT.
      this.down.stream.setResponseInfo({
        flags: ResponseFlag.UpstreamRequestTimeout,
        details: "response_timeout",
      });
      this.down.localReply(504, "upstream request timeout", "response_timeout");
    }
  }

  private onResponse(attempt: Upstream, up: UpstreamResponse): void {
    if (this.done || attempt !== this.attempt) {
      up.resume();
      return;
    }
    this.responseStarted = true;
    this.upstreamResponse = up;
    this.retry?.onResponseHeaders();
    this.down.stream.setResponseInfo({ details: "via_upstream" }); // Filter::onUpstreamHeaders
    // No retry is possible any more: the replay buffer can go.
    this.buffered = [];
    this.bufferedBytes = 0;
    const respHeaders: HeaderList = [[":status", String(up.statusCode ?? 502)]];
    for (let i = 0; i < up.rawHeaders.length; i += 2) {
      const k = up.rawHeaders[i]!.toLowerCase();
      if (!HOP_BY_HOP.has(k)) respHeaders.push([k, fromWire(up.rawHeaders[i + 1]!)]);
    }
    const noBody = this.method === "HEAD" || up.statusCode === 204 || up.statusCode === 304;
    const stream = this.down.stream;
    up.on("error", () => {}); // "aborted": handled on close
    up.on("close", () => {
      if (this.done) return;
      if (!up.complete) {
        // The upstream died mid-response: Envoy resets the downstream stream (onUpstreamAbort after
        // downstream_response_started_), so the client never sees a clean end.
        this.finish();
        this.down.reset();
      }
    });
    stream.encodeHeaders(respHeaders, noBody);
    if (noBody) {
      attempt.complete();
      this.o.stats.inc("upstream_rq_completed");
      up.resume();
      return;
    }
    up.on("data", (chunk: Buffer) => {
      if (!this.done) stream.encodeData(chunk, false);
    });
    up.on("end", () => {
      if (this.done) return;
      attempt.complete();
      this.o.stats.inc("upstream_rq_completed");
      stream.encodeData(new Uint8Array(0), true);
    });
  }
}
