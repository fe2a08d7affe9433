// The sidecar's own HTTP endpoints: Prometheus metrics, liveness, readiness, a JSON view of the current
// snapshot, the pull endpoint for filters that fetch snapshots instead of receiving pushes, and the live
// status page (`/`, fed by `/status.json`).
import http from "node:http";
import type { AddressInfo } from "node:net";
import type { Registry } from "prom-client";
import { snapshotToJson } from "./snapshot/decoder.ts";
import type { SidecarState } from "./state.ts";
import { statusPage } from "./status/page.ts";
import { statusView } from "./status/status-json.ts";
import { StatusHistory } from "./status/history.ts";
import { pushCountsFrom } from "./status/push-counts.ts";
import type { EnvoyStatsReader } from "./status/envoy-stats.ts";

export interface SidecarServerOptions {
  state: SidecarState;
  registry: Registry;
  /** Reads the filter's decision counters from the Envoys' admin stats (--envoy-admin); absent → none. */
  envoyStats?: EnvoyStatsReader;
}

export function createSidecarServer(opts: SidecarServerOptions): http.Server {
  // The status page's history lives as long as the server: sampling starts now and stops on close.
  const stats = opts.envoyStats;
  const history = new StatusHistory({
    state: opts.state,
    pushCounts: pushCountsFrom(opts.registry),
    // Read only while an Envoy admin is configured (discovery may add some later).
    decisions: () =>
      stats?.configured()
        ? stats.read()
        : Promise.resolve({ requests: new Map(), picks: new Map(), answered: 0, envoys: 0 }),
  });
  history.start();
  const server = http.createServer((req, res) => {
    handle(opts, history, req, res).catch((err: Error) => {
      if (!res.headersSent) sendJson(res, 500, { error: err.message });
      else res.destroy();
    });
  });
  server.on("close", () => history.stop());
  return server;
}

export function listen(server: http.Server, port: number, host: string): Promise<AddressInfo> {
  return new Promise((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException) =>
      reject(err.code === "EADDRINUSE" ? new Error(`port ${port} on ${host} is already in use`) : err);
    server.once("error", onError);
    server.listen(port, host, () => {
      server.off("error", onError);
      resolve(server.address() as AddressInfo);
    });
  });
}

async function handle(
  opts: SidecarServerOptions,
  history: StatusHistory,
  req: http.IncomingMessage,
  res: http.ServerResponse,
) {
  const url = new URL(req.url ?? "/", "http://sidecar");
  switch (url.pathname) {
    case "/metrics": {
      const body = await opts.registry.metrics();
      res.writeHead(200, { "content-type": opts.registry.contentType });
      res.end(body);
      return;
    }
    case "/healthz":
      sendJson(res, 200, { status: "ok" });
      return;
    case "/readyz": {
      // A refused config leaves the last good one routing, so it does not make the sidecar unready; the body
      // names it so a probe log or `curl /readyz` shows it.
      const r = opts.state.readiness();
      const configRejections = opts.state
        .configStatus()
        .flatMap((c) => (c.rejection === null ? [] : [c.rejection.message]));
      sendJson(res, r.ready ? 200 : 503, { ready: r.ready, reasons: r.reasons, configRejections });
      return;
    }
    case "/debug/snapshot": {
      const key = poolParam(opts.state, url);
      if (typeof key !== "string") return sendJson(res, key.status, { error: key.error });
      const cur = opts.state.latest(key)!;
      sendJson(res, 200, {
        bytes: cur.bytes.length,
        snapshot: snapshotToJson(cur.snapshot),
        pushes: opts.state.pushStatus().filter((p) => p.pool === key),
      });
      return;
    }
    case "/snapshot": {
      // Pull mode: the filter polls with If-None-Match and gets 304 until the generation moves.
      const key = poolParam(opts.state, url);
      if (typeof key !== "string") return sendJson(res, key.status, { error: key.error });
      const cur = opts.state.latest(key)!;
      const etag = `"${cur.snapshot.generation.toString()}"`;
      if (req.method !== "GET" && req.method !== "HEAD") {
        res.writeHead(405, { allow: "GET, HEAD" });
        res.end();
        return;
      }
      if (noneMatchHits(req.headers["if-none-match"], etag)) {
        res.writeHead(304, { etag, "cache-control": "no-cache" });
        res.end();
        return;
      }
      res.writeHead(200, {
        "content-type": "application/octet-stream",
        "content-length": cur.bytes.length,
        "cache-control": "no-cache",
        etag,
      });
      res.end(cur.bytes);
      return;
    }
    case "/": {
      const page = await statusPage();
      res.writeHead(200, { "content-type": "text/html; charset=utf-8", "cache-control": "no-store" });
      res.end(page);
      return;
    }
    case "/status.json": {
      // ?since=MS: only the history steps that ended after MS (the page polls with it).
      const since = Number(url.searchParams.get("since") ?? NaN);
      sendJson(
        res,
        200,
        statusView(
          opts.state,
          Date.now(),
          history,
          Number.isFinite(since) ? since : undefined,
          opts.envoyStats?.status() ?? [],
          opts.envoyStats?.flowControl() ?? [],
        ),
      );
      return;
    }
    default:
      sendJson(res, 404, { error: `no such endpoint: ${url.pathname}` });
  }
}

/** RFC 9110 §13.1.2: `*`, or any listed tag equal to ours under the weak comparison. */
export function noneMatchHits(header: string | undefined, etag: string): boolean {
  if (header === undefined) return false;
  if (header.trim() === "*") return true;
  return header.split(",").some((t) => t.trim().replace(/^W\//, "") === etag);
}

function poolParam(state: SidecarState, url: URL): string | { status: number; error: string } {
  const keys = state.poolKeys();
  const pool = url.searchParams.get("pool") ?? (keys.length === 1 ? keys[0] : undefined);
  if (!pool)
    return { status: 400, error: `pool=namespace/name is required; known pools: ${keys.join(", ")}` };
  if (!state.latest(pool)) return { status: 404, error: `no snapshot for pool ${pool}` };
  return pool;
}

function sendJson(res: http.ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body, null, 2);
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text) });
  res.end(text);
}
