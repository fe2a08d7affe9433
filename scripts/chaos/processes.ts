// The processes of a chaos run: each one by its role (pod-0, sidecar-a, gateway, …), started with the orphan
// guard preloaded, killed with SIGKILL and started again on the same ports. RSS comes from /proc.
import { spawn, type ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";

const ROOT = new URL("../..", import.meta.url).pathname;
const GUARD = new URL("./orphan-guard.ts", import.meta.url).pathname;

export interface Role {
  name: string;
  /** The script under the repository root, and its arguments. */
  script: string;
  args: string[];
  env?: NodeJS.ProcessEnv;
  /** Resolves when the process serves (an HTTP probe); rejects after `ms`. */
  ready: (ms: number) => Promise<void>;
}

export class ManagedProcess {
  proc: ChildProcess | undefined;
  /** Every pid this role has had, in order. */
  readonly pids: number[] = [];
  private output = "";
  private exited: Promise<void> = Promise.resolve();

  constructor(readonly role: Role) {}

  get pid(): number | undefined {
    return this.alive() ? this.proc?.pid : undefined;
  }

  alive(): boolean {
    return !!this.proc && this.proc.exitCode === null && this.proc.signalCode === null;
  }

  /** The last few KB the process printed (for failures). */
  tail(): string {
    return this.output.slice(-4000);
  }

  /**
   * Starts the process and waits until it serves. A start that does not serve within `ms` (a starved 2-core
   * machine) is killed and tried again, up to `attempts` times; the failed attempts are counted.
   */
  async start(ms = 120_000, attempts = 3): Promise<void> {
    for (let i = 1; ; i++) {
      try {
        await this.startOnce(ms);
        return;
      } catch (err) {
        this.failedStarts++;
        await this.kill();
        if (i >= attempts) throw err;
      }
    }
  }

  /** Starts that did not serve in time. */
  failedStarts = 0;

  private async startOnce(ms: number): Promise<void> {
    const proc = spawn(
      process.execPath,
      ["--import", "tsx", "--import", GUARD, `${ROOT}${this.role.script}`, ...this.role.args],
      { cwd: ROOT, env: { ...process.env, ...this.role.env }, stdio: ["ignore", "pipe", "pipe"] },
    );
    this.proc = proc;
    const keep = (c: Buffer) => {
      this.output = (this.output + c.toString()).slice(-16_000);
    };
    proc.stdout!.on("data", keep);
    proc.stderr!.on("data", keep);
    this.exited = new Promise((resolve) => proc.once("exit", () => resolve()));
    if (proc.pid !== undefined) this.pids.push(proc.pid);
    await this.role.ready(ms);
  }

  /** SIGKILL, and wait for the exit (the port is free again once it returns). */
  async kill(): Promise<void> {
    if (this.alive()) this.proc!.kill("SIGKILL");
    await this.exited;
  }

  /** Synchronous last resort for process exit handlers. */
  killNow(): void {
    if (this.alive()) this.proc!.kill("SIGKILL");
  }
}

/** Resident set size of `pid` in bytes (0 when it is gone). */
export function rssBytes(pid: number | undefined): number {
  if (pid === undefined) return 0;
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return Number(m?.[1] ?? 0) * 1024;
  } catch {
    return 0;
  }
}

/** Polls `url` until it answers `status` (default any 2xx); rejects naming `what` after `ms`. */
export async function waitForHttp(url: string, what: string, ms = 60_000, status?: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
      await res.arrayBuffer();
      if (status === undefined ? res.ok : res.status === status) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out after ${ms} ms waiting for ${what} (${url})`);
}
