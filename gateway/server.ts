// The local gateway: a Node HTTP data plane that runs filter.wasm in the Envoy-faithful host on every
// request and routes on x-gateway-destination-endpoint the way the configured Envoy cluster does (ORIGINAL_DST or
// override_host, see cluster.ts), with Envoy's router semantics for retries and upstream failures (router.ts).
// Request and response bodies stream through (SSE is not buffered); local replies from the filter win.
import http from "node:http";
import { randomUUID } from "node:crypto";
import type { AddressInfo } from "node:net";
import { readFile } from "node:fs/promises";
import { EnvoyProcess, type HeaderList, type HttpStream, type WasmPlugin } from "../host/index.ts";
import type { GatewayConfig, ListenerConfig } from "./config.ts";
import { createCluster, type Cluster } from "./cluster.ts";
import { appendHeader, fromWire, HOP_BY_HOP, Router, toWire } from "./router.ts";
import { GatewayStats } from "./stats.ts";

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
  readonly listeners: RunningListener[] = [];
  /** Envoy-style counters (cluster stats such as original_dst_host_invalid, upstream_rq_retry). */
  readonly stats = new GatewayStats();
  private readonly cluster: Cluster;

  constructor(
    readonly config: GatewayConfig,
    private readonly log: GatewayLogger = silentLogger,
    envoy?: EnvoyProcess,
  ) {
    this.envoy = envoy ?? new EnvoyProcess();
    this.cluster = createCluster(config.cluster, this.stats, config.defaultUpstreams);
  }

  /** Loads the module (one plugin per listener, sharing the vm_id, as Envoy does) and starts listening. */
  async start(): Promise<void> {
    const code = await readFile(this.config.wasm);
    const module = await WebAssembly.compile(code);
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
      });
      this.plugins.set(listener.name, plugin);
      const server = http.createServer((req, res) => this.handle(listener, plugin, req, res));
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
    for (const p of this.plugins.values()) await p.shutdown();
  }

  private handle(
    listener: ListenerConfig,
    plugin: WasmPlugin,
    req: http.IncomingMessage,
    res: http.ServerResponse,
  ): void {
    let router: Router | undefined;
    let finished = false;

    const finish = () => {
      if (finished) return;
      finished = true;
      stream.destroy();
    };

    // Envoy's router answers upstream failures itself (sendLocalReply); the reply still passes the encoder
    // filters, so it goes through the stream's encode path. Once the response started, only a reset is left.
    const localReply = (status: number, body: string, details: string) => {
      if (details !== "direct_response") this.log.warn({ status, details, path: req.url }, "upstream error");
      if (res.headersSent) {
        res.destroy();
        return;
      }
      const payload = Buffer.from(body);
      stream.encodeHeaders(
        [
          [":status", String(status)],
          ["content-type", "text/plain"],
          ["content-length", String(payload.length)],
        ],
        false,
      );
      stream.encodeData(payload, true);
    };

    const stream: HttpStream = plugin.newHttpStream({
      forwardRequestHeaders: (headers, endOfStream) => {
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
            stats: this.stats,
            log: (obj, msg) => this.log.warn(obj, msg),
          },
          { stream, localReply, reset: () => res.destroy() },
        );
      },
      forwardRequestData: (data, endOfStream) => router?.decodeData(data, endOfStream),
      forwardRequestTrailers: (trailers) => router?.decodeTrailers(trailers),
      forwardResponseHeaders: (headers, endOfStream) => {
        const { status, outgoing } = toResponseHeaders(headers);
        res.writeHead(status, outgoing);
        res.flushHeaders();
        if (endOfStream) res.end();
      },
      forwardResponseData: (data, endOfStream) => {
        if (data.length > 0) res.write(data);
        if (endOfStream) res.end();
      },
      localReply: (reply) => {
        router?.abort();
        if (res.headersSent) {
          res.destroy();
          return;
        }
        const headers: http.OutgoingHttpHeaders = {};
        for (const [k, v] of reply.headers) appendHeader(headers, k, toWire(v));
        headers["content-length"] = String(reply.body.length);
        headers["content-type"] ??= "text/plain";
        res.writeHead(reply.status, headers);
        res.end(reply.body);
      },
      reset: () => {
        router?.abort();
        res.destroy();
      },
    });

    res.on("close", () => {
      if (!res.writableFinished) router?.abort();
      finish();
    });

    const headers = toRequestHeaders(req);
    const hasBody = requestHasBody(req);
    stream.decodeHeaders(headers, !hasBody);
    if (hasBody) {
      req.on("data", (chunk: Buffer) => stream.decodeData(chunk, false));
      req.on("end", () => {
        // A chunked body may end in trailers: then the trailers, not an empty last chunk, end the request.
        const trailers = toTrailers(req);
        if (trailers.length > 0) stream.decodeTrailers(trailers);
        else stream.decodeData(new Uint8Array(0), true);
      });
    } else {
      req.resume();
    }
  }
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

function toResponseHeaders(headers: HeaderList): { status: number; outgoing: http.OutgoingHttpHeaders } {
  let status = 200;
  const outgoing: http.OutgoingHttpHeaders = {};
  for (const [k, v] of headers) {
    if (k === ":status") status = Number(v);
    else if (!k.startsWith(":")) appendHeader(outgoing, k, toWire(v));
  }
  return { status, outgoing };
}
