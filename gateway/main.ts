#!/usr/bin/env node
// CLI for the local gateway: `node --import tsx gateway/main.ts --config gateway.yaml`.
import { parseArgs } from "node:util";
import { pino } from "pino";
import { loadConfigFile, ConfigError } from "./config.ts";
import { Gateway } from "./server.ts";

const USAGE = `usage: epp-gateway --config FILE [--log-level info]

Runs build/filter.wasm in the proxy-wasm host on every request and routes on
x-gateway-destination-endpoint as the configured Envoy cluster does (cluster.type
ORIGINAL_DST or override_host, with the route's retryPolicy). See gateway/README.md.`;

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      config: { type: "string", short: "c" },
      "log-level": { type: "string", default: process.env.LOG_LEVEL ?? "info" },
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
