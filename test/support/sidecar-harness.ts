// Starts the sidecar in-process (the same Sidecar, Publisher and server that `epp-sidecar` wires up) and a
// push sink that decodes every snapshot it receives, for end-to-end tests.
import http from "node:http";
import type { AddressInfo } from "node:net";
import { Sidecar } from "../../sidecar/sidecar.ts";
import { Publisher } from "../../sidecar/publisher/publisher.ts";
import { staticTargets } from "../../sidecar/publisher/discovery.ts";
import { SidecarMetrics } from "../../sidecar/metrics.ts";
import { createSidecarServer, listen } from "../../sidecar/server.ts";
import { createMetricsFetcher } from "../../sidecar/collector/fetchers.ts";
import { decodeSnapshot } from "../../sidecar/snapshot/decoder.ts";
import type { Snapshot } from "../../sidecar/snapshot/types.ts";
import type { Inventory, Logger } from "../../sidecar/inventory/types.ts";
import type { ConfigRegistry } from "../../sidecar/scheduling-config/registry.ts";

export const silentLogger: Logger = { info() {}, warn() {}, error() {}, debug() {} };

export interface RunningSidecar {
  sidecar: Sidecar;
  metrics: SidecarMetrics;
  url: string;
  stop(): Promise<void>;
}

export async function startSidecar(opts: {
  inventory: Inventory;
  envoys: string[];
  token: string;
  scrapeIntervalMs?: number;
  logger?: Logger;
  /** Pass one when the inventory must report invalid resources into it (see `invalidHook`). */
  metrics?: SidecarMetrics;
  /** The scheduling config registry `epp-sidecar` builds from --config / --profile and pool ConfigMaps. */
  config?: ConfigRegistry;
  /** epp-sidecar's --shared-inflight (default true). */
  sharedInflight?: boolean;
}): Promise<RunningSidecar> {
  const metrics = opts.metrics ?? new SidecarMetrics({ processMetrics: false });
  const fetcher = createMetricsFetcher();
  const holder: { sidecar?: Sidecar } = {};
  const publisher = new Publisher({
    controlPath: "/epp/v1/snapshot",
    token: opts.token,
    initialBackoffMs: 50,
    maxBackoffMs: 400,
    onResult: (r) => holder.sidecar?.recordPush(r),
  });
  publisher.setTargets(staticTargets(opts.envoys));
  const sidecar = new Sidecar({
    inventory: opts.inventory,
    publisher,
    metrics,
    fetch: fetcher.fetch,
    open: fetcher.open,
    logger: opts.logger ?? silentLogger,
    scrapeIntervalMs: opts.scrapeIntervalMs ?? 50,
    ...(opts.config === undefined ? {} : { config: opts.config }),
    ...(opts.sharedInflight === undefined ? {} : { sharedInflight: opts.sharedInflight }),
  });
  holder.sidecar = sidecar;
  const server = createSidecarServer({ state: sidecar, registry: metrics.registry });
  const addr = await listen(server, 0, "127.0.0.1");
  await sidecar.start();
  return {
    sidecar,
    metrics,
    url: `http://127.0.0.1:${addr.port}`,
    async stop() {
      await sidecar.stop();
      await fetcher.close();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}

/** The inventory's onInvalid hook, counted the way `epp-sidecar` counts it. */
export function invalidHook(metrics: SidecarMetrics) {
  return (i: { kind: string; reason: string }) =>
    metrics.invalidResources.inc({ kind: i.kind, reason: i.reason });
}

/** An HTTP server standing in for an Envoy control listener: records every pushed snapshot. */
export async function startPushSink(token: string) {
  const received: Snapshot[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      if (req.headers.authorization !== `Bearer ${token}`) {
        res.writeHead(401).end();
        return;
      }
      received.push(decodeSnapshot(new Uint8Array(Buffer.concat(chunks))));
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    received,
    latest: () => received.at(-1),
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** The polling wait with a deadline (test/support/deadline.ts), re-exported for the sidecar tests. */
export { waitFor } from "./deadline.ts";
