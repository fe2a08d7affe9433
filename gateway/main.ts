#!/usr/bin/env node
// CLI for the local gateway: `node --import tsx gateway/main.ts --config gateway.yaml`.
import http from "node:http";
import { parseArgs } from "node:util";
import { pino } from "pino";
import { loadConfigFile, ConfigError } from "./config.ts";
import { Gateway } from "./server.ts";
import { renderPrometheus } from "../host/prometheus.ts";

const USAGE = `usage: epp-gateway --config FILE [--log-level info] [--admin-port P]

Runs build/filter.wasm in the proxy-wasm host on every request and routes on
x-gateway-destination-endpoint as the configured Envoy cluster does (cluster.type
ORIGINAL_DST or override_host, with the route's retryPolicy). With --admin-port, GET /stats on
127.0.0.1:P answers the counters and each worker VM's Wasm memory as JSON, and GET /stats/prometheus the
filter's metrics as Envoy's admin serves them. See gateway/README.md.`;

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      config: { type: "string", short: "c" },
      "log-level": { type: "string", default: process.env.LOG_LEVEL ?? "info" },
      "admin-port": { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help || !values.config) {
    console.log(USAGE);
    process.exit(values.help ? 0 : 2);
  }
  const log = pino({ name: "gateway", level: values["log-level"] });
  let gateway: Gateway;
  try {
    gateway = new Gateway(loadConfigFile(values.config), log);
    await gateway.start();
  } catch (err) {
    const msg = err instanceof ConfigError ? `invalid config: ${err.message}` : (err as Error).message;
    log.error(msg);
    process.exit(1);
  }
  for (const l of gateway.listeners)
    log.info({ listener: l.name, address: l.address, port: l.port }, "listening");
  if (values["admin-port"] !== undefined) {
    // Envoy's admin /stats, reduced to what we model: counters, and the Wasm memory of each worker VM.
    const admin = http.createServer((req, res) => {
      if (req.method === "GET" && req.url === "/stats/prometheus") {
        // The filter's Wasm stats as Envoy's admin renders them, with the bootstrap's stats_config.
        res.writeHead(200, { "content-type": "text/plain; version=0.0.4; charset=utf-8" });
        res.end(renderPrometheus(gateway.envoy.metrics, gateway.config.statsConfig));
        return;
      }
      const ok = req.method === "GET" && req.url === "/stats";
      res.writeHead(ok ? 200 : 404, { "content-type": "application/json" });
      res.end(
        ok ? JSON.stringify({ counters: gateway.stats.snapshot(), wasmVms: gateway.wasmMemory() }) : "{}",
      );
    });
    await new Promise<void>((resolve) => admin.listen(Number(values["admin-port"]), "127.0.0.1", resolve));
    admin.unref();
    log.info(
      { listener: "admin", port: (admin.address() as import("node:net").AddressInfo).port },
      "listening",
    );
  }
  const shutdown = () => {
    log.info("shutting down");
    gateway.stop().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.once("SIGINT", shutdown);
  process.once("SIGTERM", shutdown);
}

await main();
