// One upstream attempt over HTTP/2 cleartext with prior knowledge, for clusters configured with
// HttpProtocolOptions explicit_http_config.http2_protocol_options (an InferencePool's appProtocol kubernetes.io/h2c).
// Envoy's HTTP/2 connection pool multiplexes a host's requests on one connection
// (source/common/http/http2/conn_pool.cc); here: one node:http2 session per upstream host, reused until it closes.
import http2 from "node:http2";
import { EventEmitter } from "node:events";
import type { OutgoingHttpHeaders } from "node:http";
import type { HeaderList } from "../host/index.ts";
import type { UpstreamHost } from "./cluster.ts";
import { connectFailureText } from "./connect-error.ts";
import type { ResetReason } from "./retry.ts";
import { toOutgoing } from "./headers.ts";
import {
  AttemptBase,
  type AttemptEvents,
  type AttemptOptions,
  type BodySink,
  type UpstreamResponse,
} from "./upstream.ts";

// Connection-specific headers HTTP/2 forbids (RFC 9113 §8.2.2); Node refuses to send them.
const NOT_IN_H2 = new Set([
  "host",
  "transfer-encoding",
  "connection",
  "keep-alive",
  "proxy-connection",
  "upgrade",
]);

/** The gateway's HTTP/2 sessions, one per upstream host key. */
export class H2Sessions {
  private readonly sessions = new Map<string, http2.ClientHttp2Session>();

  get(host: UpstreamHost): http2.ClientHttp2Session {
    const known = this.sessions.get(host.key);
    if (known && !known.closed && !known.destroyed) return known;
    const session = http2.connect(`http://${host.key}`);
    session.setMaxListeners(0); // every attempt waiting for the connect listens on it
    const forget = () => {
      if (this.sessions.get(host.key) === session) this.sessions.delete(host.key);
    };
    // Errors reach the streams as well; the session only has to leave the pool. GOAWAY: new requests go to a new
    // connection while the streams already open finish (Envoy drains the old one).
    session.on("error", forget);
    session.on("goaway", forget);
    session.on("close", forget);
    this.sessions.set(host.key, session);
    return session;
  }

  close(): void {
    for (const s of this.sessions.values()) s.destroy();
    this.sessions.clear();
  }
}

/** An HTTP/2 response as the router reads it (the shape of http.IncomingMessage it uses). */
class H2Response extends EventEmitter implements UpstreamResponse {
  readonly statusCode: number;
  readonly rawHeaders: string[] = [];
  complete = false;

  constructor(
    private readonly stream: http2.ClientHttp2Stream,
    headers: http2.IncomingHttpHeaders,
  ) {
    super();
    this.statusCode = Number(headers[":status"]);
    for (const [k, v] of Object.entries(headers)) {
      if (k.startsWith(":") || v === undefined) continue;
      for (const one of Array.isArray(v) ? v : [v]) this.rawHeaders.push(k, one);
    }
    // Forwarded in the same tick the router subscribes, so no chunk is emitted before it listens.
    stream.on("data", (chunk: Buffer) => this.emit("data", chunk));
    stream.on("end", () => {
      this.complete = true;
      this.emit("end");
    });
    stream.on("error", (err: Error) => this.emit("error", err));
    stream.on("close", () => this.emit("close"));
  }

  pause(): this {
    this.stream.pause();
    return this;
  }

  resume(): this {
    this.stream.resume();
    return this;
  }
}

/** One upstream attempt on an HTTP/2 stream: the same events and failure reasons as the HTTP/1.1 attempt. */
export class H2Attempt extends AttemptBase<AttemptOptions> {
  private readonly stream: http2.ClientHttp2Stream | undefined;
  private trailers: HeaderList | undefined;

  constructor(
    sessions: H2Sessions,
    host: UpstreamHost,
    method: string,
    path: string,
    headers: OutgoingHttpHeaders,
    o: AttemptOptions,
    ev: AttemptEvents,
  ) {
    super(o, ev);
    if (host.port === 0) {
      // As in the HTTP/1.1 attempt: port 0 parses but is refused by the kernel.
      setImmediate(() => this.fail("remote connection failure", "delayed connect error: Connection refused"));
      return;
    }
    const session = sessions.get(host);
    const h2headers: http2.OutgoingHttpHeaders = {
      ":method": method,
      ":path": path,
      ":scheme": "http",
      // Envoy's HTTP/2 codec sends the request's Host as :authority.
      ":authority": String(headers["host"] ?? host.key),
    };
    for (const [k, v] of Object.entries(headers)) if (!NOT_IN_H2.has(k) && v !== undefined) h2headers[k] = v;
    let stream: http2.ClientHttp2Stream;
    try {
      // waitForTrailers: the request ends with trailers when the downstream sent some (sendTrailers({}) ends the
      // stream with an empty DATA frame otherwise).
      stream = session.request(h2headers, { endStream: false, waitForTrailers: true });
    } catch (err) {
      o.log?.({ err: (err as Error).message }, "upstream request not sent");
      setImmediate(() => this.fail("local reset", ""));
      return;
    }
    this.stream = stream;
    if (session.connecting) {
      this.connectTimer = setTimeout(() => {
        o.stats.inc("upstream_cx_connect_timeout");
        this.fail("connection timeout", "connect timeout");
        session.destroy();
      }, o.connectTimeoutMs);
      session.once("connect", () => this.onConnected());
    } else {
      setImmediate(() => this.onConnected()); // a connection already up: the stream goes out now
    }
    stream.on("wantTrailers", () =>
      stream.sendTrailers(this.trailers ? toOutgoing(this.trailers).headers : {}),
    );
    stream.on("response", (res) => {
      if (this.settled) {
        stream.resume();
        return;
      }
      this.settled = true;
      clearTimeout(this.connectTimer);
      ev.onResponse(new H2Response(stream, res));
    });
    stream.setTimeout(o.upstreamTimeoutMs, () => {
      if (this.destroyed) return;
      this.settled = true;
      this.destroy();
      ev.onTimeout();
    });
    stream.on("error", (err: NodeJS.ErrnoException) => {
      const cause = (err.cause as NodeJS.ErrnoException | undefined) ?? err;
      if (!this.connected) this.fail("remote connection failure", connectFailureText(cause));
      else if (err.code === "ERR_HTTP2_SESSION_ERROR" || err.code === "ERR_HTTP2_ERROR")
        this.fail("protocol error", "");
      // A peer's RST_STREAM before the response headers, by its error code as Envoy's HTTP/2 codec maps it
      // (source/common/http/http2/codec_impl.cc errorCodeToResetReason).
      else if (err.code === "ERR_HTTP2_STREAM_ERROR") this.fail(resetReasonOf(stream.rstCode), "");
      else this.fail("connection termination", "");
    });
    // Closed cleanly (RST_STREAM NO_ERROR, GOAWAY) before any response.
    stream.on("close", () => this.fail("connection termination", ""));
  }

  private onConnected(): void {
    if (this.connected || this.settled) return;
    clearTimeout(this.connectTimer);
    this.connected = true;
    this.o.stats.inc("upstream_rq_total");
  }

  protected get sink(): BodySink | undefined {
    return this.stream;
  }

  end(trailers?: HeaderList): void {
    if (!this.stream || this.stream.destroyed || this.stream.writableEnded) return;
    if (trailers && trailers.length > 0) this.trailers = trailers;
    this.stream.end();
  }

  protected abandon(): void {
    // Envoy resets an abandoned upstream HTTP/2 stream with CANCEL; the session stays for other requests.
    if (this.stream && !this.stream.closed) this.stream.close(http2.constants.NGHTTP2_CANCEL);
  }
}

/** RST_STREAM error code → Envoy's reset reason: REFUSED_STREAM and PROTOCOL_ERROR by name, the rest remote reset. */
function resetReasonOf(code: number | undefined): ResetReason {
  if (code === http2.constants.NGHTTP2_REFUSED_STREAM) return "remote refused stream reset";
  if (code === http2.constants.NGHTTP2_PROTOCOL_ERROR) return "protocol error";
  return "remote reset";
}
