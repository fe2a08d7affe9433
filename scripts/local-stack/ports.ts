// Port checks before anything is spawned, so a clash names the port and the flag that moves it.
import net from "node:net";
import { readFileSync } from "node:fs";

export async function portIsFree(port: number, host = "127.0.0.1"): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once("error", () => resolve(false));
    srv.listen(port, host, () => srv.close(() => resolve(true)));
  });
}

export async function assertPortsFree(
  ports: Array<{ port: number; flag: string; what: string }>,
): Promise<void> {
  for (const p of ports) {
    if (!(await portIsFree(p.port))) {
      throw new Error(`port ${p.port} (${p.what}) is already in use; pick another with ${p.flag} <port>`);
    }
  }
}

/** A port the OS reports free on 127.0.0.1 right now (for listeners nobody connects to by a fixed number). */
export async function freePort(host = "127.0.0.1"): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once("error", reject);
    srv.listen(0, host, () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

/** `n` distinct ports free on 127.0.0.1 right now (all held open together while they are picked). */
export async function freePorts(n: number, host = "127.0.0.1"): Promise<number[]> {
  const servers = await Promise.all(
    Array.from({ length: n }, async () => {
      const s = net.createServer();
      await new Promise<void>((r) => s.listen(0, host, r));
      return s;
    }),
  );
  const ports = servers.map((s) => (s.address() as net.AddressInfo).port);
  await Promise.all(servers.map((s) => new Promise<void>((r) => s.close(() => r()))));
  return ports;
}

/** First port of the kernel's ephemeral range (Linux: ip_local_port_range; 32768 is its default). */
function ephemeralRangeStart(): number {
  try {
    const low = Number(readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "utf8").trim().split(/\s+/)[0]);
    return Number.isInteger(low) && low > 1024 ? low : 32768;
  } catch {
    return 32768;
  }
}

/**
 * The first of `n` consecutive ports free on 127.0.0.1 right now, for flags that take a base port. They
 * are picked below the kernel's ephemeral range: `listen(0)` and outgoing connections elsewhere (a test
 * running in parallel) are never given those, so the ports stay free until the caller binds them.
 */
export async function freeConsecutivePorts(n: number, host = "127.0.0.1"): Promise<number> {
  const low = 20000;
  const span = Math.max(1, ephemeralRangeStart() - n - low);
  for (let attempt = 0; attempt < 200; attempt++) {
    const base = low + Math.floor(Math.random() * span);
    let free = true;
    for (let i = 0; i < n && free; i++) free = await portIsFree(base + i, host);
    if (free) return base;
  }
  throw new Error(`no ${n} consecutive free ports found between ${low} and ${low + span + n}`);
}
