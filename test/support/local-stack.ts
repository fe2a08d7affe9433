// Runs `npm start` (scripts/start.ts) as a child for the e2e tests. Its ports come from one block of
// consecutive ports below the kernel's ephemeral range (freeConsecutivePorts), so no parallel test's
// listen(0) or outgoing socket is handed one of them; should one still be taken before the stack binds it,
// the stack is started again on a fresh block (it fails naming the port "already in use").
import { spawn, type ChildProcess } from "node:child_process";
import { freeConsecutivePorts } from "../../scripts/local-stack/ports.ts";
import { withDeadline } from "./deadline.ts";

export const repoRoot = new URL("../..", import.meta.url).pathname;

export interface StackPorts {
  port: number;
  controlPort: number;
  sidecarPort: number;
  simBase: number;
}

export interface RunningStack {
  child: ChildProcess;
  ports: StackPorts;
  /** Everything the stack printed so far (stdout and stderr). */
  output(): string;
  /** Ctrl-C, then the exit code (rejects when it has not exited within 30 s). */
  interrupt(): Promise<number | null>;
}

/** The `scripts/start.ts` arguments for these ports: the fast preset at 5x, `pods` simulated pods. */
export function startArgs(ports: StackPorts, pods: number): string[] {
  return [
    "--import",
    "tsx",
    "scripts/start.ts",
    ...["--pods", String(pods), "--port", String(ports.port), "--control-port", String(ports.controlPort)],
    ...["--sidecar-port", String(ports.sidecarPort), "--sim-base-port", String(ports.simBase)],
    ...["--preset", "fast", "--time-scale", "5"],
  ];
}

/** A block of ports for a stack with `pods` simulated pods. */
export async function stackPorts(pods: number): Promise<StackPorts> {
  const base = await freeConsecutivePorts(3 + pods);
  return { port: base, controlPort: base + 1, sidecarPort: base + 2, simBase: base + 3 };
}

/**
 * Starts the stack and waits for "local stack is up" (60 s, or 180 s when it first rebuilds a stale
 * build/filter.wasm, which takes a minute on a busy machine); retries twice on a port clash.
 */
export async function startLocalStack(opts: {
  pods: number;
  extraArgs?: string[];
  env?: NodeJS.ProcessEnv;
}): Promise<RunningStack> {
  for (let attempt = 1; ; attempt++) {
    const ports = await stackPorts(opts.pods);
    const child = spawn(process.execPath, [...startArgs(ports, opts.pods), ...(opts.extraArgs ?? [])], {
      cwd: repoRoot,
      stdio: ["ignore", "pipe", "pipe"],
      env: opts.env ?? process.env,
    });
    let output = "";
    child.stdout.on("data", (c: Buffer) => (output += c.toString()));
    child.stderr.on("data", (c: Buffer) => (output += c.toString()));
    const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
    const stack: RunningStack = {
      child,
      ports,
      output: () => output,
      interrupt: () => {
        if (child.exitCode === null && child.signalCode === null) child.kill("SIGINT");
        return withDeadline(exited, 30_000, `npm start to exit after Ctrl-C; output:\n${output}`);
      },
    };
    const started = Date.now();
    while (!output.includes("local stack is up")) {
      if (child.exitCode !== null || child.signalCode !== null) break;
      const limit = output.includes("building build/filter.wasm") ? 180_000 : 60_000;
      if (Date.now() - started > limit) {
        await stack.interrupt().catch(() => child.kill("SIGKILL"));
        throw new Error(`stack did not come up within ${limit / 1000} s:\n${output}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    if (output.includes("local stack is up")) return stack;
    await withDeadline(exited, 10_000, "the failed stack to exit");
    if (attempt < 3 && /already in use/.test(output)) continue;
    throw new Error(`stack did not come up (exit ${child.exitCode}):\n${output}`);
  }
}
