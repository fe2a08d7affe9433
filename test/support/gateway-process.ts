// The local gateway as `npm start` runs it: a child process (`node --import tsx gateway/main.ts --config …`) whose
// configuration is derived from a shipped Envoy bootstrap by scripts/local-stack/gateway-config.ts, with npm
// start's plugin overrides (pool default/local-pool, a random control token on the control listener only,
// FailClose). Tests push snapshots through the real control listener and watch the process stay up.
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  gatewayConfigFromEnvoy,
  OVERRIDE_HOST_BOOTSTRAP,
  readShippedEnvoy,
} from "../../scripts/local-stack/gateway-config.ts";
import { encodeSnapshot } from "../../sidecar/snapshot/encoder.ts";
import type { Snapshot } from "../../sidecar/snapshot/types.ts";
import { snapshotWith } from "./snapshot-fixture.ts";

const ROOT = new URL("../..", import.meta.url).pathname;
export const LOCAL_POOL = { namespace: "default", name: "local-pool" };

export interface GatewayProcess {
  proc: ChildProcess;
  dataPort: number;
  controlPort: number;
  /** With `admin`: the admin port (GET /stats, /stats/prometheus). */
  adminPort?: number;
  controlPath: string;
  token: string;
  /** Every JSON log line the gateway printed so far. */
  logs: Array<Record<string, unknown>>;
  /** Anything on stdout/stderr that was not a JSON log line. */
  otherOutput: string[];
  alive(): boolean;
  /** POSTs a snapshot to the control listener (or to `port`); returns the status and body. */
  push(s: Snapshot, port?: number): Promise<{ status: number; body: string }>;
  stop(): Promise<void>;
}

/** A routable snapshot for `pool` whose endpoints are `addresses` ("ip:port"), the first the least loaded. */
export function snapshotFor(generation: bigint, addresses: string[], models: string[] = []): Snapshot {
  return snapshotWith({
    generation,
    // The gateway judges freshness by its wall clock.
    createdAtMs: Date.now(),
    pool: LOCAL_POOL,
    endpoints: addresses.map((a, i) => ({
      address: a.slice(0, a.lastIndexOf(":")),
      port: Number(a.slice(a.lastIndexOf(":") + 1)),
      waiting: i,
      running: i,
      kvUsage: 0.1 + i * 0.1,
      kvBlockCount: 1000,
    })),
    models: models.map((name) => ({ name, criticality: "Critical" as const, targets: [] })),
    // Metrics stay fresh for a minute, so a slow test never routes on stale ones.
    scheduler: { metricsStalenessMs: 60_000 },
  });
}

/** Starts the gateway process on the override_host bootstrap with `endpoints` as the cluster's endpoint set. */
export async function startGatewayProcess(opts: {
  endpoints: string[];
  bootstrap?: string;
  workers?: number;
  /** Fixed listener ports (a restart on the same ports); 0 or absent: any free port. */
  ports?: { data: number; control: number };
  /** The control token (a restarted gateway keeps its sidecar's); default random. */
  token?: string;
  /** Top-level gateway settings over the derived ones (maxConnections, streamIdleTimeoutMs, overload, …). */
  settings?: Record<string, unknown>;
  /** Serve the admin (`--admin-port`) on a free port: GatewayProcess.adminPort. */
  admin?: boolean;
}): Promise<GatewayProcess> {
  const bootstrap = opts.bootstrap ?? OVERRIDE_HOST_BOOTSTRAP;
  const token = opts.token ?? randomBytes(24).toString("hex");
  const dir = mkdtempSync(join(tmpdir(), "epp-gateway-proc-"));
  const configFile = join(dir, "gateway.json");
  const control = readShippedEnvoy(bootstrap).listeners.find((l) => l.name === "control");
  const controlPath = String((control?.pluginConfig as { controlPath?: string }).controlPath);
  writeFileSync(
    configFile,
    JSON.stringify({
      ...gatewayConfigFromEnvoy(bootstrap, {
        listeners: { data: { port: opts.ports?.data ?? 0 }, control: { port: opts.ports?.control ?? 0 } },
        wasm: join(ROOT, "build/filter.wasm"),
        workers: opts.workers ?? 2,
        endpoints: opts.endpoints,
        pluginConfig: { pool: LOCAL_POOL, controlToken: token, failureMode: "FailClose" },
      }),
      ...opts.settings,
    }),
  );
  const proc = spawn(
    process.execPath,
    [
      "--import",
      "tsx",
      join(ROOT, "gateway/main.ts"),
      "--config",
      configFile,
      "--log-level",
      "info",
      ...(opts.admin ? ["--admin-port", "0"] : []),
    ],
    { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] },
  );
  const logs: Array<Record<string, unknown>> = [];
  const otherOutput: string[] = [];
  const ports = new Map<string, number>();
  const collect = (stream: NodeJS.ReadableStream) => {
    let partial = "";
    stream.setEncoding("utf8");
    stream.on("data", (chunk: string) => {
      const lines = (partial + chunk).split("\n");
      partial = lines.pop() ?? "";
      for (const line of lines) {
        if (!line.trim()) continue;
        try {
          const obj = JSON.parse(line) as Record<string, unknown>;
          logs.push(obj);
          if (obj.msg === "listening") ports.set(String(obj.listener), Number(obj.port));
        } catch {
          otherOutput.push(line);
        }
      }
    });
  };
  collect(proc.stdout!);
  collect(proc.stderr!);
  const exited = new Promise<void>((resolve) => proc.once("exit", () => resolve()));
  const alive = () => proc.exitCode === null && proc.signalCode === null;
  const deadline = Date.now() + 30_000;
  while (!(ports.has("data") && ports.has("control") && (!opts.admin || ports.has("admin")))) {
    if (!alive() || Date.now() > deadline) {
      proc.kill("SIGKILL");
      rmSync(dir, { recursive: true, force: true });
      throw new Error(`gateway did not start:\n${otherOutput.join("\n")}\n${JSON.stringify(logs)}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  const controlPort = ports.get("control")!;
  return {
    proc,
    dataPort: ports.get("data")!,
    controlPort,
    adminPort: ports.get("admin"),
    controlPath,
    token,
    logs,
    otherOutput,
    alive,
    async push(s, port = controlPort) {
      const res = await fetch(`http://127.0.0.1:${port}${controlPath}`, {
        method: "POST",
        headers: { authorization: `Bearer ${token}`, "content-type": "application/octet-stream" },
        body: new Uint8Array(encodeSnapshot(s)),
        signal: AbortSignal.timeout(10_000),
      });
      return { status: res.status, body: await res.text() };
    },
    async stop() {
      if (alive()) {
        proc.kill("SIGTERM");
        const timer = setTimeout(() => proc.kill("SIGKILL"), 3000);
        await exited;
        clearTimeout(timer);
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
