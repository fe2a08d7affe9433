// `epp-sidecar`: watches InferencePools and their pods (Kubernetes or manifest files), scrapes the model
// servers' metrics, and pushes snapshots to every Envoy running the epp-wasm filter (or, with no push
// target, only serves them at GET /snapshot for filters in pull mode).
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { pino } from "pino";
import { createInventory, loadKubeConfig } from "./inventory/index.ts";
import { createMetricsFetcher } from "./collector/fetchers.ts";
import { engineFromName } from "./collector/engines.ts";
import { Publisher } from "./publisher/publisher.ts";
import { PodTargetDiscovery, staticTargets } from "./publisher/discovery.ts";
import { SidecarMetrics } from "./metrics.ts";
import { createSidecarServer, listen } from "./server.ts";
import { Sidecar } from "./sidecar.ts";
import { FileSource } from "./scheduling-config/file-source.ts";
import { ConfigRegistry } from "./scheduling-config/registry.ts";
import { shippedConfigPath } from "./scheduling-config/shipped.ts";
import { EnvoyStatsReader } from "./status/envoy-stats.ts";

const FLAGS = {
  manifests: {
    type: "string",
    help: "file mode: read InferencePool/Model/Objective/Rewrite and Pod YAML from DIR (watched)",
  },
  kubeconfig: {
    type: "string",
    help: "Kubernetes mode: kubeconfig path (default: in-cluster, then ~/.kube/config)",
  },
  "pool-namespace": { type: "string", help: "serve pools in this namespace only (default: all namespaces)" },
  "pool-name": { type: "string", help: "serve only the pool with this name" },
  envoy: {
    type: "string",
    multiple: true,
    help: "push target URL of an Envoy control listener (repeatable); none and no --envoy-selector: pull mode only",
  },
  "envoy-selector": {
    type: "string",
    help: "push to every ready pod matching this label selector (a=b,c=d)",
  },
  "envoy-namespace": { type: "string", help: "namespace of the Envoy pods (default: --pool-namespace)" },
  "envoy-port": { type: "string", help: "port of the listener carrying the control path on those pods" },
  "envoy-admin": {
    type: "string",
    multiple: true,
    help: "an Envoy admin (or its /stats/prometheus URL) whose filter decision counters the status page shows (repeatable; env: comma-separated)",
  },
  "envoy-admin-port": {
    type: "string",
    help: "with --envoy-selector: read the filter's decision counters at http://<pod IP>:PORT/stats/prometheus of every Envoy pod",
  },
  "control-path": { type: "string", default: "/epp/v1/snapshot", help: "the filter's control path" },
  "token-file": { type: "string", help: "file holding the control token (or set EPP_CONTROL_TOKEN)" },
  "scrape-interval-ms": { type: "string", default: "50", help: "metrics scrape interval" },
  "scrape-timeout-ms": { type: "string", default: "1000", help: "per-scrape timeout" },
  "stale-after-failures": {
    type: "string",
    default: "3",
    help: "mark an endpoint stale after N failed scrapes",
  },
  "max-metrics-age-ms": { type: "string", default: "1000", help: "…or when its last good scrape is older" },
  engine: {
    type: "string",
    default: "vllm",
    help: "default engine: vllm, sglang, trtllm-serve, triton-trtllm",
  },
  "metrics-name-filter": {
    type: "string",
    default: "true",
    help: "scrape with ?name[]=<the metrics read> (vLLM/SGLang then send about 1.3 KB instead of 18 KB or more); false: whole page",
  },
  "shared-inflight": {
    type: "string",
    default: "true",
    help: "Envoy's worker VMs share their in-flight counts through shared data (docs/benchmarks.md); false: each worker sees only its own",
  },
  config: {
    type: "string",
    help: "scheduling config: an EndpointPickerConfig YAML file, watched (a pool's epp-wasm.io/config ConfigMap overrides it)",
  },
  profile: {
    type: "string",
    default: "default",
    help: "shorthand for --config config/scheduling/NAME.yaml: default, gie-default, legacy, flow-control",
  },
  port: { type: "string", default: "9090", help: "port for /metrics, /healthz, /readyz and the status page" },
  host: { type: "string", default: "0.0.0.0", help: "address to bind" },
  "log-level": { type: "string", default: "info", help: "trace, debug, info, warn, error" },
  help: { type: "boolean", short: "h", help: "show this help" },
} as const;

function usage(): string {
  const lines = Object.entries(FLAGS).map(([name, f]) => {
    const env = `EPP_${name.toUpperCase().replace(/-/g, "_")}`;
    const dflt = "default" in f ? ` (default ${f.default})` : "";
    return `  --${name.padEnd(22)} ${f.help}${dflt}\n  ${"".padEnd(24)} env ${env}`;
  });
  return `usage: epp-sidecar [flags]\n\nEvery flag can also be set by the environment variable shown under it.\n\n${lines.join("\n")}\n`;
}

/** Flags from the command line, falling back to EPP_* environment variables. */
function readFlags() {
  const { values } = parseArgs({
    options: Object.fromEntries(
      Object.entries(FLAGS).map(([k, f]) => [
        k,
        {
          type: f.type,
          ...("multiple" in f ? { multiple: true } : {}),
          ...("short" in f ? { short: f.short } : {}),
        },
      ]),
    ) as never,
  });
  const v = values as Record<string, string | string[] | boolean | undefined>;
  const get = (name: keyof typeof FLAGS): string | undefined => {
    const cli = v[name];
    if (typeof cli === "string") return cli;
    const env = process.env[`EPP_${name.toUpperCase().replace(/-/g, "_")}`];
    if (env !== undefined && env !== "") return env;
    const f = FLAGS[name];
    return "default" in f ? String(f.default) : undefined;
  };
  const list = (name: "envoy" | "envoy-admin") =>
    (v[name] as string[] | undefined) ??
    process.env[`EPP_${name.toUpperCase().replace(/-/g, "_")}`]?.split(",").filter(Boolean) ??
    [];
  return { get, envoys: list("envoy"), envoyAdmins: list("envoy-admin"), help: v.help === true };
}

class UsageError extends Error {}

function intFlag(get: (n: keyof typeof FLAGS) => string | undefined, name: keyof typeof FLAGS): number {
  const raw = get(name);
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0)
    throw new UsageError(`--${name} must be a non-negative integer, got ${raw}`);
  return n;
}

function boolFlag(get: (n: keyof typeof FLAGS) => string | undefined, name: keyof typeof FLAGS): boolean {
  const raw = get(name);
  if (raw !== "true" && raw !== "false") throw new UsageError(`--${name} must be true or false, got ${raw}`);
  return raw === "true";
}

function readToken(tokenFile: string | undefined): string {
  const fromEnv = process.env.EPP_CONTROL_TOKEN;
  if (tokenFile) {
    try {
      const t = readFileSync(tokenFile, "utf8").trim();
      if (t) return t;
    } catch (err) {
      throw new UsageError(`cannot read --token-file ${tokenFile}: ${(err as Error).message}`);
    }
    throw new UsageError(`--token-file ${tokenFile} is empty`);
  }
  if (fromEnv) return fromEnv.trim();
  throw new UsageError(
    "no control token: pass --token-file FILE or set EPP_CONTROL_TOKEN (the filter's controlToken)",
  );
}

async function main(): Promise<void> {
  const { get, envoys, envoyAdmins, help } = readFlags();
  if (help) {
    process.stdout.write(usage());
    return;
  }
  const log = pino({ name: "epp-sidecar", level: get("log-level") });
  // No push target is pull mode: the filters fetch GET /snapshot themselves, and no token is needed.
  const pullOnly = envoys.length === 0 && !get("envoy-selector");
  const token = pullOnly ? "" : readToken(get("token-file"));
  const engine = engineFromName(get("engine")!);
  if (!engine)
    throw new UsageError(`--engine ${get("engine")} is not one of vllm, sglang, trtllm-serve, triton-trtllm`);

  const metrics = new SidecarMetrics();
  // Scheduling config: --config wins over --profile. A refused --config at startup stops the sidecar (as
  // upstream's EPP does); later refusals keep the last good config. A shipped profile file that cannot be
  // loaded only logs: the profile name alone still selects the filter's built-in profile.
  const configFlag = get("config");
  const profile = get("profile")!;
  let configFile: FileSource | undefined;
  try {
    configFile = new FileSource({
      path: configFlag ?? shippedConfigPath(profile),
      ...(configFlag === undefined ? { displayName: profile } : {}),
      onChange: (f) => {
        registry.fileChanged();
        if (f.rejection !== undefined)
          log.error(
            { reason: f.rejection.reason },
            `scheduling config refused, the last good one stays: ${f.rejection.message}`,
          );
        else
          log.info(
            { config: f.active?.source, hash: f.active?.hash, notes: f.active?.notes },
            "scheduling config loaded",
          );
        // `sidecar` exists once start() has run; the first load happens before.
        if (started) sidecar.configChanged();
      },
    });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  let started = false;
  const registry = new ConfigRegistry({
    file: configFile,
    fallbackProfile: profile,
    onReject: (source, r) => metrics.configRejected.inc({ source, reason: r.reason }),
  });
  await configFile.start();
  if (configFlag !== undefined && configFile.rejection !== undefined)
    throw new UsageError(configFile.rejection.message);
  const manifests = get("manifests");
  const inventory = createInventory({
    ...(manifests ? { manifestsDir: manifests } : { kubeconfig: get("kubeconfig") }),
    namespace: get("pool-namespace"),
    poolName: get("pool-name"),
    logger: log,
    onInvalid: (i) => metrics.invalidResources.inc({ kind: i.kind, reason: i.reason }),
  });
  const fetcher = createMetricsFetcher();
  const publisher = new Publisher({
    controlPath: get("control-path")!,
    token,
    // Called only after `sidecar` below exists: pushes start once the sidecar runs.
    onResult: (r) => sidecar.recordPush(r),
  });
  const sidecar = new Sidecar({
    inventory,
    publisher,
    metrics,
    fetch: fetcher.fetch,
    open: fetcher.open,
    logger: log,
    profile,
    config: registry,
    defaultEngine: engine,
    metricsNameFilter: boolFlag(get, "metrics-name-filter"),
    sharedInflight: boolFlag(get, "shared-inflight"),
    scrapeIntervalMs: intFlag(get, "scrape-interval-ms"),
    scrapeTimeoutMs: intFlag(get, "scrape-timeout-ms"),
    staleAfterFailures: intFlag(get, "stale-after-failures"),
    maxMetricsAgeMs: intFlag(get, "max-metrics-age-ms"),
    pullOnly,
  });

  // The status page's view of the filter's decisions: the admins given, plus each discovered Envoy pod's.
  let envoyStats: EnvoyStatsReader;
  try {
    envoyStats = new EnvoyStatsReader({ urls: envoyAdmins });
  } catch (err) {
    throw new UsageError(`--envoy-admin: ${(err as Error).message}`);
  }
  const adminPort = get("envoy-admin-port") === undefined ? 0 : intFlag(get, "envoy-admin-port");
  if (adminPort > 0 && !get("envoy-selector"))
    throw new UsageError("--envoy-admin-port needs --envoy-selector (or give each admin with --envoy-admin)");

  let discovery: PodTargetDiscovery | undefined;
  if (envoys.length > 0) publisher.setTargets(staticTargets(envoys));
  const selector = get("envoy-selector");
  if (selector) {
    const namespace = get("envoy-namespace") ?? get("pool-namespace");
    if (!namespace) throw new UsageError("--envoy-selector needs --envoy-namespace (or --pool-namespace)");
    const port = intFlag(get, "envoy-port");
    if (port === 0) throw new UsageError("--envoy-selector needs --envoy-port");
    discovery = new PodTargetDiscovery({
      kubeConfig: loadKubeConfig(get("kubeconfig")),
      namespace,
      selector,
      port,
      logger: log,
      onTargets: (t) => {
        publisher.setTargets([...staticTargets(envoys), ...t]);
        if (adminPort > 0) envoyStats.setUrls([...envoyAdmins, ...t.map((x) => withPort(x.url, adminPort))]);
      },
    });
  }

  const server = createSidecarServer({ state: sidecar, registry: metrics.registry, envoyStats });
  const port = intFlag(get, "port");
  try {
    await listen(server, port, get("host")!);
  } catch (err) {
    throw new UsageError(`${(err as Error).message}; choose another with --port`);
  }
  await sidecar.start();
  started = true;
  await discovery?.start();
  log.info(
    { port, mode: manifests ? `files:${manifests}` : "kubernetes", envoys, selector },
    pullOnly
      ? "epp-sidecar started with no push target (pull mode: filters fetch GET /snapshot; pass --envoy or --envoy-selector to push)"
      : "epp-sidecar started",
  );

  const shutdown = async () => {
    log.info("shutting down");
    server.close();
    configFile?.stop();
    await discovery?.stop();
    await sidecar.stop();
    await fetcher.close();
    process.exit(0);
  };
  process.once("SIGINT", () => void shutdown());
  process.once("SIGTERM", () => void shutdown());
}

/** `url` (an origin) at another port. */
function withPort(url: string, port: number): string {
  const u = new URL(url);
  u.port = String(port);
  return u.origin;
}

main().catch((err: Error) => {
  process.stderr.write(`epp-sidecar: ${err.message}\n`);
  if (err instanceof UsageError) process.stderr.write("run with --help for every flag\n");
  process.exit(err instanceof UsageError ? 2 : 1);
});
