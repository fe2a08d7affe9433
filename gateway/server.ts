// The local gateway: a Node HTTP data plane that runs filter.wasm in the Envoy-faithful host on every
// request and routes on x-gateway-destination-endpoint the way the configured Envoy cluster does (ORIGINAL_DST or
// override_host, see cluster.ts), with Envoy's router semantics for retries and upstream failures (router.ts).
// Request and response bodies stream through (SSE is not buffered); local replies from the filter win.
import http from "node:http";
import { randomUUID } from "node:crypto";
import type { AddressInfo } from "node:net";
import { readFile } from "node:fs/promises";
import {
  EnvoyProcess,
  type HeaderList,
  type HttpStream,
  type LocalReply,
  type WasmPlugin,
} from "../host/index.ts";
import type { WasmVm } from "../host/vm.ts";
import type { GatewayConfig, ListenerConfig } from "./config.ts";
import { createCluster, type Cluster } from "./cluster.ts";
import { H2Sessions } from "./upstream-h2.ts";
import { HOP_BY_HOP, Router } from "./router.ts";
import { fromWire, isFinalStatus, toOutgoing } from "./headers.ts";
import { RateLimitedLog } from "./log-limit.ts";
import { GatewayStats, wasmVmMemory, type WasmVmMemory } from "./stats.ts";
import { OverloadMonitor } from "./overload.ts";

export interface GatewayLogger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

const silentLogger: GatewayLogger = { info() {}, warn() {}, error() {} };

export interface RunningListener {
  name: string;
  address: string;
  port: number;
}

export class Gateway {
  readonly envoy: EnvoyProcess;
  private readonly plugins = new Map<string, WasmPlugin>();
  private readonly servers: http.Server[] = [];
  private readonly agent = new http.Agent({ keepAlive: true, maxSockets: 1024 });
  /** HTTP/2 sessions to the upstreams when the cluster speaks h2c (cluster.http2). */
  private readonly h2: H2Sessions | undefined;
  readonly listeners: RunningListener[] = [];
  /** Envoy-style counters (cluster stats such as original_dst_host_invalid, upstream_rq_retry). */
  readonly stats = new GatewayStats();
  private readonly cluster: Cluster;
  private readonly limitedLog: RateLimitedLog;
  /** The memory ceiling: while over it, new connections are closed and new requests answered 503. */
  readonly overload: OverloadMonitor;

  constructor(
    readonly config: GatewayConfig,
    private readonly log: GatewayLogger = silentLogger,
    envoy?: EnvoyProcess,
  ) {
    this.envoy = envoy ?? new EnvoyProcess();
    this.cluster = createCluster(config.cluster, this.stats, config.defaultUpstreams);
    this.h2 = config.cluster.http2 ? new H2Sessions() : undefined;
    this.limitedLog = new RateLimitedLog(log);
    this.overload = new OverloadMonitor(config.overload, (over, usage) => {
      const fields = { heapBytes: usage, maxHeapBytes: config.overload.maxHeapBytes };
      if (over) log.warn(fields, "overloaded: rejecting new connections and requests");
      else log.info(fields, "overload over: accepting connections again");
    });
  }

  /** Loads the module (one plugin per listener, sharing the vm_id, as Envoy does) and starts listening. */
  async start(): Promise<void> {
    const code = await readFile(this.config.wasm);
    const module = await WebAssembly.compile(code);
    this.overload.start();
    this.log.info(
      { heapBytes: this.overload.lastUsage, maxHeapBytes: this.config.overload.maxHeapBytes },
      "overload manager started",
    );
    for (const listener of this.config.listeners) {
      const plugin = await this.envoy.loadPlugin(module, {
        name: listener.pluginName ?? this.config.pluginName,
        rootId: this.config.rootId,
        vmId: this.config.vmId,
        configuration: JSON.stringify(listener.pluginConfig ?? this.config.pluginConfig),
        workers: this.config.workers,
        failOpen: this.config.failOpen,
        bufferLimitBytes: listener.bufferLimitBytes ?? this.config.bufferLimitBytes,
        allowOnHeadersStopIteration: this.config.allowOnHeadersStopIteration,
        // http_call clusters (pull mode's sidecar), for every listener's plugin.
        clusters: this.config.clusters,
      });
      this.plugins.set(listener.name, plugin);
      const server = http.createServer(
        {
          // The HCM's request_headers_timeout: Node answers 408 and closes (_http_server.js onRequestTimeout).
          // Node checks its timers every connectionsCheckingInterval (30 s by default): check often enough that
          // the timeout means what it says.
          headersTimeout: this.config.requestHeadersTimeoutMs,
          connectionsCheckingInterval: Math.max(
            50,
            Math.min(1000, Math.floor(this.config.requestHeadersTimeoutMs / 4)),
          ),
        },
        (req, res) => this.handle(listener, plugin, req, res),
      );
      // The listener's connection limit: Node closes a connection over it at accept and emits 'drop'
      // (source/common/listener_manager/active_tcp_listener.cc ActiveTcpListener::onAccept).
      server.maxConnections = listener.maxConnections ?? this.config.maxConnections;
      server.on("drop", () => this.stats.inc("downstream_cx_overflow"));
      // Overloaded: accept and close at once (envoy.overload_actions.reject_incoming_connections).
      server.on("connection", (socket: import("node:net").Socket) => {
        if (!this.overload.overloaded) return;
        this.stats.inc("downstream_cx_overload_reject");
        socket.destroy();
      });
      // Expect: 100-continue. Node's default writes "100 Continue" straight to the socket at once, even while an
      // earlier pipelined response is still being written (its bytes land inside that response). Envoy's HTTP/1
      // connection manager answers 100 Continue itself (proxy_100_continue unset) and handles one request at a
      // time; so: send it when this response owns the socket.
      server.on("checkContinue", (req: http.IncomingMessage, res: http.ServerResponse) => {
        const send = () => {
          if (!res.headersSent && !res.destroyed) res.writeContinue();
        };
        if (res.socket) send();
        else res.once("socket", send);
        this.handle(listener, plugin, req, res);
      });
      server.keepAliveTimeout = 65_000;
      await listen(server, listener);
      this.servers.push(server);
      const addr = server.address() as AddressInfo;
      this.listeners.push({ name: listener.name, address: addr.address, port: addr.port });
    }
  }

  listener(name: string): RunningListener {
    const l = this.listeners.find((x) => x.name === name);
    if (!l) throw new Error(`no listener named ${name}`);
    return l;
  }

  /** Each worker VM's Wasm memory (the host's plugins expose their VMs; plugins sharing a VM count it once). */
  wasmMemory(): WasmVmMemory[] {
    const vms = [...this.plugins.values()].flatMap((p) => (p as WasmPlugin & { vms?: WasmVm[] }).vms ?? []);
    return wasmVmMemory(vms);
  }

  plugin(name: string): WasmPlugin {
    const p = this.plugins.get(name);
    if (!p) throw new Error(`no plugin on listener ${name}`);
    return p;
  }

  async stop(): Promise<void> {
    await Promise.all(
      this.servers.map(
        (s) =>
          new Promise<void>((resolve) => {
            s.close(() => resolve());
            s.closeAllConnections();
          }),
      ),
    );
    this.agent.destroy();
    this.h2?.close();
    this.overload.stop();
    for (const p of this.plugins.values()) await p.shutdown();
  }

  private handle(
    listener: ListenerConfig,
    plugin: WasmPlugin,
    req: http.IncomingMessage,
    res: http.ServerResponse,
  ): void {
    req.on("error", () => {});
    res.on("error", () => {});
    // envoy.overload_actions.stop_accepting_requests: the request is answered before any filter runs
    // (source/common/http/conn_manager_impl.cc ActiveStream::decodeHeaders, "envoy overloaded").
    if (this.overload.overloaded) {
      this.stats.inc("downstream_rq_overload_close");
      req.resume();
      plainReply(res, 503, "envoy overloaded\n");
      return;
    }
    let router: Router | undefined;
    let finished = false;

    // The HCM's stream_idle_timeout: any byte either way restarts it (ActiveStream::resetIdleTimer). When it
    // fires: 408 while the request is still arriving, 504 once it is complete (Utility::maybeRequestTimeoutCode),
    // a reset once the response started (ActiveStream::onIdleTimeout).
    const idle = setTimeout(() => {
      this.stats.inc("downstream_rq_idle_timeout");
      router?.abort();
      if (res.headersSent) {
        res.destroy();
        return;
      }
      // A 408 leaves an unread body on the connection: close it, as Envoy's HTTP/1 codec does.
      plainReply(res, req.complete ? 504 : 408, "stream timeout\n", !req.complete);
    }, this.config.streamIdleTimeoutMs);
    const touch = () => idle.refresh();
    let responsePaused = false;

    // (The callbacks below run only after `s` is assigned.)
    const finish = () => {
      if (finished) return;
      finished = true;
      clearTimeout(idle);
      s.destroy();
    };

    // Last line of defence: whatever node:http or the host throws for this request ends this request only
    // (a 503 if nothing was sent yet, else a reset), never the process.
    const guard =
      <A extends unknown[]>(what: string, fn: (...args: A) => void) =>
      (...args: A): void => {
        try {
          fn(...args);
        } catch (err) {
          const e = err as NodeJS.ErrnoException;
          this.warn(
            `exception in ${what}: ${e.code ?? e.message}`,
            { err: e.message, path: req.url },
            "request failed",
          );
          router?.abort();
          plainReply(res, 503, "gateway error\n");
        }
      };

    // Response headers from the upstream or the filter that node:http would refuse: Envoy's HTTP/1 encoder writes
    // them as they are (header splitting); we answer 502 instead (gateway/README.md, differences).
    const refuse = (problem: string, source: string) => {
      this.warn(`${source}: ${problem}`, { path: req.url }, "response not sendable");
      router?.abort();
      plainReply(res, 502, `invalid response header from ${source}\n`);
    };

    // Envoy's router answers upstream failures itself (sendLocalReply); the reply still passes the encoder
    // filters, so it goes through the stream's encode path. Once the response started, only a reset is left.
    const localReply = (status: number, body: string, details: string) => {
      if (details !== "direct_response") {
        this.warn(`${status} ${details}`, { status, details, path: req.url }, "upstream error");
      }
      if (res.headersSent) {
        res.destroy();
        return;
      }
      const payload = Buffer.from(body);
      s.encodeHeaders(
        [
          [":status", String(status)],
          ["content-type", "text/plain"],
          ["content-length", String(payload.length)],
        ],
        false,
      );
      s.encodeData(payload, true);
    };

    const s: HttpStream = plugin.newHttpStream({
      forwardRequestHeaders: guard("forwardRequestHeaders", (headers: HeaderList, endOfStream: boolean) => {
        if (listener.directResponse) {
          // The router answers a direct_response route itself (router.cc Filter::decodeHeaders).
          const { status, body = "" } = listener.directResponse;
          localReply(status, body, "direct_response");
          return;
        }
        router = new Router(
          headers,
          endOfStream,
          {
            cluster: this.cluster,
            retryPolicy: this.config.retryPolicy,
            bufferLimitBytes: listener.bufferLimitBytes ?? this.config.bufferLimitBytes,
            connectTimeoutMs: this.config.cluster.connectTimeoutMs,
            upstreamTimeoutMs: this.config.upstreamTimeoutMs,
            agent: this.agent,
            h2: this.h2,
            stats: this.stats,
            log: (obj, msg) => this.warn(msg, obj, msg),
          },
          {
            stream: s,
            localReply,
            reset: () => res.destroy(),
            // Flow control: a slow upstream stops the reading of the client's body (TCP pushes back on it).
            pauseRequest: () => req.pause(),
            resumeRequest: () => req.resume(),
          },
        );
      }),
      forwardRequestData: guard("forwardRequestData", (data: Uint8Array, endOfStream: boolean) =>
        router?.decodeData(data, endOfStream),
      ),
      forwardRequestTrailers: guard("forwardRequestTrailers", (trailers: HeaderList) =>
        router?.decodeTrailers(trailers),
      ),
      forwardResponseHeaders: guard("forwardResponseHeaders", (headers: HeaderList, endOfStream: boolean) => {
        if (res.headersSent || res.destroyed) return;
        const status = Number(headers.find(([k]) => k === ":status")?.[1] ?? 200);
        if (!isFinalStatus(status)) return refuse(`invalid :status ${status}`, "upstream or filter");
        const out = toOutgoing(headers, HOP_BY_HOP);
        if (out.problem) return refuse(out.problem, "upstream or filter");
        touch();
        res.writeHead(status, out.headers);
        res.flushHeaders();
        if (endOfStream) res.end();
      }),
      forwardResponseData: guard("forwardResponseData", (data: Uint8Array, endOfStream: boolean) => {
        if (res.writableEnded || res.destroyed) return;
        touch();
        // Flow control toward a slow client: stop reading the upstream until the response drains.
        if (data.length > 0 && !res.write(data) && !responsePaused) {
          responsePaused = true;
          router?.pauseResponse();
          res.once("drain", () => {
            responsePaused = false;
            touch();
            router?.resumeResponse();
          });
        }
        if (endOfStream) res.end();
      }),
      localReply: guard("localReply", (reply: LocalReply) => {
        router?.abort();
        if (res.headersSent) {
          res.destroy();
          return;
        }
        if (!isFinalStatus(reply.status)) return refuse(`invalid :status ${reply.status}`, "filter");
        const out = toOutgoing(reply.headers);
        if (out.problem) return refuse(out.problem, "filter");
        out.headers["content-length"] = String(reply.body.length);
        out.headers["content-type"] ??= "text/plain";
        res.writeHead(reply.status, out.headers);
        res.end(reply.body);
      }),
      reset: () => {
        router?.abort();
        res.destroy();
      },
    });

    // (A client that goes away mid-request or mid-response: node:http destroys req/res with an error; the
    // listeners added at the top keep that from becoming an unhandled 'error' event.)
    // A response that ends while flow control holds the request paused: read (and drop) the rest, or the
    // connection's next request is never parsed.
    res.on("finish", () => req.resume());
    res.on("close", () => {
      if (!res.writableFinished) router?.abort();
      finish();
    });

    guard("request", () => {
      const headers = toRequestHeaders(req);
      const hasBody = requestHasBody(req);
      s.decodeHeaders(headers, !hasBody);
      if (hasBody) {
        req.on(
          "data",
          guard("request data", (chunk: Buffer) => {
            touch();
            s.decodeData(chunk, false);
          }),
        );
        req.on(
          "end",
          guard("request end", () => {
            // A chunked body may end in trailers: then the trailers, not an empty last chunk, end the request.
            const trailers = toTrailers(req);
            if (trailers.length > 0) s.decodeTrailers(trailers);
            else s.decodeData(new Uint8Array(0), true);
          }),
        );
      } else {
        req.resume();
      }
    })();
  }

  /** Warnings the client can trigger are rate-limited per cause (log-limit.ts). */
  private warn(cause: string, obj: object, msg: string): void {
    this.limitedLog.warn(cause.length > 120 ? `${cause.slice(0, 120)}…` : cause, obj, msg);
  }
}

/** A reply that bypasses the filter (it may be the filter's own headers that failed), then the request is done. */
function plainReply(res: http.ServerResponse, status: number, body: string, close = false): void {
  if (res.headersSent || res.destroyed) {
    res.destroy();
    return;
  }
  res.writeHead(status, {
    "content-type": "text/plain",
    "content-length": String(Buffer.byteLength(body)),
    ...(close ? { connection: "close" } : {}),
  });
  res.end(body);
}

function listen(server: http.Server, l: ListenerConfig): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException) => {
      if (err.code === "EADDRINUSE") {
        reject(new Error(`port ${l.port} on ${l.address} is already in use (listener "${l.name}")`));
      } else reject(err);
    };
    server.once("error", onError);
    server.listen(l.port, l.address, () => {
      server.off("error", onError);
      resolve();
    });
  });
}

function requestHasBody(req: http.IncomingMessage): boolean {
  if (req.headers["transfer-encoding"] !== undefined) return true;
  const len = req.headers["content-length"];
  return len !== undefined && len !== "0";
}

/** Node request → Envoy-style header list: pseudo-headers first, keys lower-case, Host → :authority. */
function toRequestHeaders(req: http.IncomingMessage): HeaderList {
  const out: HeaderList = [
    [":method", req.method ?? "GET"],
    [":path", req.url ?? "/"],
    [":authority", req.headers.host ?? ""],
    [":scheme", "http"],
  ];
  let hasRequestId = false;
  for (let i = 0; i < req.rawHeaders.length; i += 2) {
    const k = req.rawHeaders[i]!.toLowerCase();
    if (k === "host" || HOP_BY_HOP.has(k)) continue;
    // source/common/http/conn_manager_impl.cc ActiveStream::decodeHeaders: with proxy_100_continue unset, Envoy
    // answers the expectation itself and strips the header before the filters and the upstream see it.
    if (k === "expect" && req.rawHeaders[i + 1]!.toLowerCase() === "100-continue") continue;
    if (k === "x-request-id") hasRequestId = true;
    out.push([k, fromWire(req.rawHeaders[i + 1]!)]);
  }
  // Envoy's connection manager adds these by default.
  if (!hasRequestId) out.push(["x-request-id", randomUUID()]);
  out.push(["x-forwarded-proto", "http"]);
  return out;
}

function toTrailers(req: http.IncomingMessage): HeaderList {
  const out: HeaderList = [];
  for (let i = 0; i < req.rawTrailers.length; i += 2) {
    out.push([req.rawTrailers[i]!.toLowerCase(), fromWire(req.rawTrailers[i + 1]!)]);
  }
  return out;
}
