// `epp-sidecar` as a real child process (node --import tsx sidecar/main.ts) in file mode, for the tests that
// kill and restart things: its pool manifests, its logs, its readiness, and a SIGKILL.
import { spawn, type ChildProcess } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { freeConsecutivePorts } from "../../scripts/local-stack/ports.ts";
import { withDeadline } from "../support/deadline.ts";

const ROOT = new URL("../..", import.meta.url).pathname;

/**
 * default/local-pool with one pod per port, all on 127.0.0.1 (the port from the annotation); every pod is
 * ready unless `ready` says otherwise for its index.
 */
export function poolManifests(ports: number[], ready: readonly boolean[] = []): string {
  const pool = `apiVersion: inference.networking.k8s.io/v1
kind: InferencePool
metadata: { name: local-pool, namespace: default }
spec:
  selector: { matchLabels: { app: sim } }
  targetPorts: [{ number: 8000 }]
  endpointPickerRef: { name: epp, port: { number: 9002 } }
`;
  const pods = ports.map(
    (port, i) => `---
apiVersion: v1
kind: Pod
metadata:
  name: sim-${i}
  namespace: default
  labels: { app: sim }
  annotations: { epp-wasm.io/port: "${port}" }
status:
  podIP: 127.0.0.1
  conditions: [{ type: Ready, status: "${ready[i] === false ? "False" : "True"}" }]
`,
  );
  return pool + pods.join("");
}

export function writePool(dir: string, ports: number[]): void {
  writeFileSync(join(dir, "pool.yaml"), poolManifests(ports));
}

export interface SidecarProcess {
  proc: ChildProcess;
  url: string;
  logs: Array<Record<string, unknown>>;
  /** pino levels: 40 warn, 50 error. */
  logsAtOrAbove(level: number): Array<Record<string, unknown>>;
  readyStatus(): Promise<number>;
  kill(signal?: NodeJS.Signals): Promise<void>;
}

/** Starts `epp-sidecar --manifests DIR --envoy URL…` with the production publisher settings. */
export async function startSidecarProcess(opts: {
  manifestsDir: string;
  envoys: string[];
  token: string;
  /** More flags, e.g. ["--config", FILE]. */
  args?: string[];
  /** What node runs before the flags (default: sidecar/main.ts through tsx), e.g. the esbuild bundle. */
  entry?: string[];
  /** Working directory (default: the repository). */
  cwd?: string;
}): Promise<SidecarProcess> {
  const port = await freeConsecutivePorts(1);
  const proc = spawn(
    process.execPath,
    [
      ...(opts.entry ?? ["--import", "tsx", join(ROOT, "sidecar/main.ts")]),
      ...["--manifests", opts.manifestsDir, "--port", String(port), "--host", "127.0.0.1"],
      ...opts.envoys.flatMap((e) => ["--envoy", e]),
      ...(opts.args ?? []),
    ],
    {
      cwd: opts.cwd ?? ROOT,
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, EPP_CONTROL_TOKEN: opts.token },
    },
  );
  const logs: Array<Record<string, unknown>> = [];
  const other: string[] = [];
  let partial = "";
  proc.stdout!.setEncoding("utf8");
  proc.stdout!.on("data", (chunk: string) => {
    const lines = (partial + chunk).split("\n");
    partial = lines.pop() ?? "";
    for (const line of lines) {
      if (!line.trim()) continue;
      try {
        logs.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        other.push(line);
      }
    }
  });
  proc.stderr!.setEncoding("utf8");
  proc.stderr!.on("data", (c: string) => other.push(c));
  const exited = new Promise<void>((resolve) => proc.once("exit", () => resolve()));
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 30_000;
  while (!logs.some((l) => String(l.msg).startsWith("epp-sidecar started"))) {
    if (proc.exitCode !== null || Date.now() > deadline) {
      proc.kill("SIGKILL");
      throw new Error(`sidecar did not start:\n${other.join("")}\n${JSON.stringify(logs)}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    proc,
    url,
    logs,
    logsAtOrAbove: (level) => logs.filter((l) => Number(l.level) >= level),
    async readyStatus() {
      const res = await fetch(`${url}/readyz`, { signal: AbortSignal.timeout(5000) });
      await res.arrayBuffer();
      return res.status;
    },
    async kill(signal = "SIGKILL") {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
      await withDeadline(exited, 10_000, "the sidecar process to exit");
    },
  };
}
