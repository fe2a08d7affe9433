// The local gateway: a Node HTTP data plane that runs filter.wasm in the Envoy-faithful host on every
// request and routes like Envoy's ORIGINAL_DST cluster on x-gateway-destination-endpoint.
// Request and response bodies stream through (SSE is not buffered); local replies from the filter win.
import http from "node:http";
import { randomUUID } from "node:crypto";
import type { AddressInfo } from "node:net";
import { readFile } from "node:fs/promises";
import { EnvoyProcess, type HeaderList, type HttpStream, type WasmPlugin } from "../host/index.ts";
import type { GatewayConfig, ListenerConfig } from "./config.ts";
import { DESTINATION_HEADER, parseDestinationList } from "./destination.ts";

// Hop-by-hop headers are never forwarded (RFC 9110 §7.6.1); Envoy drops them too.
const HOP_BY_HOP = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "transfer-encoding",
  "te",
  "trailer",
  "upgrade",
]);

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
  private nextDefault = 0;
  readonly listeners: RunningListener[] = [];

  constructor(
    readonly config: GatewayConfig,
    private readonly log: GatewayLogger = silentLogger,
    envoy?: EnvoyProcess,
  ) {
    this.envoy = envoy ?? new EnvoyProcess();
  }

  /** Loads the module (one plugin per listener, sharing the vm_id, as Envoy does) and starts listening. */
  async start(): Promise<void> {
    const code = await readFile(this.config.wasm);
    const module = await WebAssembly.compile(code);
    for (const listener of this.config.listeners) {
      const plugin = await this.envoy.loadPlugin(module, {
        name: this.config.pluginName,
        rootId: this.config.rootId,
        vmId: this.config.vmId,
        configuration: JSON.stringify(this.config.pluginConfig),
        workers: this.config.workers,
        failOpen: this.config.failOpen,
        bufferLimitBytes: this.config.bufferLimitBytes,
        allowOnHeadersStopIteration: this.config.allowOnHeadersStopIteration,
      });
      this.plugins.set(listener.name, plugin);
      const server = http.createServer((req, res) => this.handle(plugin, req, res));
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

  private handle(plugin: WasmPlugin, req: http.IncomingMessage, res: http.ServerResponse): void {
    let upstreamReq: http.ClientRequest | undefined;
    let finished = false;

    const finish = () => {
      if (finished) return;
      finished = true;
      stream.destroy();
    };

    const sendUpstreamError = (status: number, body: string, details: string) => {
      this.log.warn({ status, details, path: req.url }, "upstream error");
      // Envoy's router answers upstream failures itself; the reply still passes the encoder filters.
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
        upstreamReq = this.openUpstream(headers, stream, sendUpstreamError);
        if (upstreamReq && endOfStream) upstreamReq.end();
      },
      forwardRequestData: (data, endOfStream) => {
        if (!upstreamReq) return;
        if (data.length > 0) upstreamReq.write(data);
        if (endOfStream) upstreamReq.end();
      },
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
        upstreamReq?.destroy();
        upstreamReq = undefined;
        if (res.headersSent) {
          res.destroy();
          return;
        }
        const headers: http.OutgoingHttpHeaders = {};
        for (const [k, v] of reply.headers) appendHeader(headers, k, v);
        headers["content-length"] = String(reply.body.length);
        headers["content-type"] ??= "text/plain";
        res.writeHead(reply.status, headers);
        res.end(reply.body);
      },
      reset: () => {
        upstreamReq?.destroy();
        res.destroy();
      },
    });

    res.on("close", () => {
      if (!res.writableFinished) upstreamReq?.destroy();
      finish();
    });

    const headers = toRequestHeaders(req);
    const hasBody = requestHasBody(req);
    stream.decodeHeaders(headers, !hasBody);
    if (hasBody) {
      req.on("data", (chunk: Buffer) => stream.decodeData(chunk, false));
      req.on("end", () => stream.decodeData(new Uint8Array(0), true));
    } else {
      req.resume();
    }
  }

  /** ORIGINAL_DST: first entry of the destination header, else the default upstreams, else 503. */
  private openUpstream(
    headers: HeaderList,
    stream: HttpStream,
    fail: (status: number, body: string, details: string) => void,
  ): http.ClientRequest | undefined {
    const destValue = headers.find(([k]) => k === DESTINATION_HEADER)?.[1];
    let target: { host: string; port: number } | undefined;
    if (destValue !== undefined) {
      target = parseDestinationList(destValue)[0];
      if (!target) {
        this.log.warn({ destination: destValue }, "destination header is not an ip:port literal");
        fail(503, "no healthy upstream", "original_dst_host_invalid");
        return undefined;
      }
    } else if (this.config.defaultUpstreams.length > 0) {
      const url = new URL(
        this.config.defaultUpstreams[this.nextDefault++ % this.config.defaultUpstreams.length]!,
      );
      target = { host: url.hostname.replace(/^\[|\]$/g, ""), port: Number(url.port || 80) };
    } else {
      fail(503, "no healthy upstream", "no_healthy_upstream");
      return undefined;
    }

    let method = "GET";
    let path = "/";
    const outgoing: http.OutgoingHttpHeaders = {};
    for (const [k, v] of headers) {
      if (k === ":method") method = v;
      else if (k === ":path") path = v;
      else if (k === ":authority") outgoing["host"] = v;
      else if (k.startsWith(":") || HOP_BY_HOP.has(k)) continue;
      else appendHeader(outgoing, k, v);
    }
    const upstream = http.request({
      host: target.host,
      port: target.port,
      method,
      path,
      headers: outgoing,
      agent: this.agent,
      timeout: this.config.upstreamTimeoutMs,
    });
    upstream.on("response", (up) => {
      const respHeaders: HeaderList = [[":status", String(up.statusCode ?? 502)]];
      for (let i = 0; i < up.rawHeaders.length; i += 2) {
        const k = up.rawHeaders[i]!.toLowerCase();
        if (!HOP_BY_HOP.has(k)) respHeaders.push([k, up.rawHeaders[i + 1]!]);
      }
      const noBody = method === "HEAD" || up.statusCode === 204 || up.statusCode === 304;
      stream.encodeHeaders(respHeaders, noBody);
      if (noBody) {
        up.resume();
        return;
      }
      up.on("data", (chunk: Buffer) => stream.encodeData(chunk, false));
      up.on("end", () => stream.encodeData(new Uint8Array(0), true));
      up.on("error", () => stream.encodeData(new Uint8Array(0), true));
    });
    upstream.on("timeout", () => upstream.destroy(new Error("upstream timeout")));
    upstream.on("error", (err) => {
      this.log.warn({ upstream: `${target!.host}:${target!.port}`, err: err.message }, "upstream failed");
      fail(
        503,
        `upstream connect error or disconnect/reset before headers. reset reason: ${err.message}`,
        "upstream_reset_before_response_started",
      );
    });
    return upstream;
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
    out.push([k, req.rawHeaders[i + 1]!]);
  }
  // Envoy's connection manager adds these by default.
  if (!hasRequestId) out.push(["x-request-id", randomUUID()]);
  out.push(["x-forwarded-proto", "http"]);
  return out;
}

function toResponseHeaders(headers: HeaderList): { status: number; outgoing: http.OutgoingHttpHeaders } {
  let status = 200;
  const outgoing: http.OutgoingHttpHeaders = {};
  for (const [k, v] of headers) {
    if (k === ":status") status = Number(v);
    else if (!k.startsWith(":")) appendHeader(outgoing, k, v);
  }
  return { status, outgoing };
}

function appendHeader(headers: http.OutgoingHttpHeaders, key: string, value: string): void {
  const prev = headers[key];
  if (prev === undefined) headers[key] = value;
  else if (Array.isArray(prev)) prev.push(value);
  else headers[key] = [String(prev), value];
}
