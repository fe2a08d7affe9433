// Runs child processes as one unit: output prefixed by name, and when one dies or the user presses Ctrl-C,
// every other child is stopped (SIGTERM, then SIGKILL after a grace period).
import { spawn, type ChildProcess } from "node:child_process";

export interface Child {
  name: string;
  proc: ChildProcess;
}

export class Supervisor {
  private readonly children: Child[] = [];
  private stopping = false;
  onUnexpectedExit?: (name: string, code: number | null) => void;

  start(name: string, command: string, args: string[], env: NodeJS.ProcessEnv = {}): Child {
    const proc = spawn(command, args, { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
    const prefix = (stream: NodeJS.ReadableStream, out: NodeJS.WriteStream) => {
      let partial = "";
      stream.setEncoding("utf8");
      stream.on("data", (chunk: string) => {
        const lines = (partial + chunk).split("\n");
        partial = lines.pop() ?? "";
        for (const line of lines) if (line.trim()) out.write(`[${name}] ${line}\n`);
      });
    };
    prefix(proc.stdout!, process.stdout);
    prefix(proc.stderr!, process.stderr);
    proc.on("exit", (code) => {
      if (!this.stopping) this.onUnexpectedExit?.(name, code);
    });
    const child = { name, proc };
    this.children.push(child);
    return child;
  }

  pids(): Array<{ name: string; pid: number | undefined }> {
    return this.children.map((c) => ({ name: c.name, pid: c.proc.pid }));
  }

  async stopAll(graceMs = 3000): Promise<void> {
    this.stopping = true;
    const alive = this.children.filter((c) => c.proc.exitCode === null && c.proc.signalCode === null);
    await Promise.all(
      alive.map(
        (c) =>
          new Promise<void>((resolve) => {
            const timer = setTimeout(() => c.proc.kill("SIGKILL"), graceMs);
            c.proc.once("exit", () => {
              clearTimeout(timer);
              resolve();
            });
            c.proc.kill("SIGTERM");
          }),
      ),
    );
  }
}
