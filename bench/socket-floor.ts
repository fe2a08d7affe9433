// The socket floor for bench:sidecar: what any client pays on this machine for the same traffic — one
// kept-alive TCP connection per endpoint, the same request bytes every interval, the responses read into
// one buffer and thrown away (no HTTP parsing, no metrics, no snapshot). The sidecar's CPU above this
// floor is the cost of its own work; the floor itself is mostly the kernel's loopback TCP path and moves
// with the machine's load, which is why the benchmark measures it in the same run.
import { connect } from "node:net";
import type { Socket } from "node:net";
import { metricsRequest } from "../sidecar/collector/lean-http.ts";

export interface FloorResult {
  cores: number;
  userCores: number;
  systemCores: number;
  responsesPerSecond: number;
}

export async function measureSocketFloor(
  urls: readonly string[],
  intervalMs: number,
  seconds: number,
): Promise<FloorResult> {
  const buffer = Buffer.allocUnsafe(64 * 1024);
  let responses = 0;
  const conns = urls.map((url) => {
    const u = new URL(url);
    const request = metricsRequest(u);
    const c: { socket: Socket; request: Buffer; answered: boolean } = {
      request,
      answered: true,
      socket: connect({
        host: u.hostname,
        port: Number(u.port),
        noDelay: true,
        onread: {
          buffer,
          callback: () => {
            if (!c.answered) responses++;
            c.answered = true;
            return true;
          },
        },
      }),
    };
    c.socket.on("error", () => {});
    return c;
  });
  const round = () => {
    for (const c of conns) {
      if (!c.answered) continue; // one request in flight per connection, as the scraper does
      c.answered = false;
      c.socket.write(c.request);
    }
  };
  const timer = setInterval(round, intervalMs);
  await sleep(1000); // connect and warm up
  const cpu0 = process.cpuUsage();
  const responses0 = responses;
  const wall0 = performance.now();
  await sleep(seconds * 1000);
  const wallS = (performance.now() - wall0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  clearInterval(timer);
  for (const c of conns) c.socket.destroy();
  return {
    cores: (cpu.user + cpu.system) / 1e6 / wallS,
    userCores: cpu.user / 1e6 / wallS,
    systemCores: cpu.system / 1e6 / wallS,
    responsesPerSecond: (responses - responses0) / wallS,
  };
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
