// Child process for bench/sidecar.ts: N fake model servers' /metrics, one listening port each, so the
// scraper sees what it sees in production (one keep-alive connection per endpoint).
// Servers: "raw" (default) answers straight from the socket with a pre-built head, the lightweight server
// the benchmark calls for: in production the model servers run on other machines, while here they share
// this machine with the sidecar, and node:http's per-request cost (0.71–0.82 core for 20,000 responses/s on
// a 2-core VM) competes with the process being measured. "http" is node:http, for comparison.
// Pages: "vllm" is the simulator's vLLM page (~18 KB with its histograms, shaped like a real server's);
// "fixture" the 4 KB test fixture; "minimal" only the three live gauges. `?name[]=…` is honoured the way
// prometheus_client (behind vLLM and SGLang) honours it. Ports are reported over IPC; "cpu" messages are
// answered with this process's CPU usage.
import { createServer } from "node:http";
import { createServer as createRawServer } from "node:net";
import type { AddressInfo, Server, Socket } from "node:net";
import { readFileSync } from "node:fs";
import { Engine, presetConfig, VirtualClock } from "../sim/index.ts";
import { requestedNames, restrictToNames } from "../sim/http/name-filter.ts";

const count = Number(process.argv[2] ?? 1000);
const pageKind = process.argv[3] ?? "vllm";
const serverKind = process.argv[4] ?? "raw";
if (serverKind !== "raw" && serverKind !== "http") throw new Error(`unknown server kind ${serverKind}`);

const LIVE = ["vllm:num_requests_waiting", "vllm:num_requests_running", "vllm:kv_cache_usage_perc"];

function basePage(): string {
  if (pageKind === "minimal") return "";
  if (pageKind === "fixture")
    return readFileSync(new URL("../test/fixtures/metrics/vllm.txt", import.meta.url), "utf8");
  // A pod that has served some traffic, so its histograms and LoRA info are populated.
  const clock = new VirtualClock();
  const engine = new Engine({
    config: presetConfig("h100-llama3-8b"),
    clock,
    loraModules: ["sql-lora", "tweet-summary"],
  });
  for (let i = 0; i < 40; i++)
    engine.submit({
      promptTokens: 200 + 50 * i,
      maxTokens: 64,
      ...(i % 3 === 0 ? { lora: "sql-lora" } : {}),
    });
  clock.runUntil(5_000);
  return engine.metricsText();
}

// The live gauges are written per response (new numbers on every scrape); everything else is static.
const staticPart = basePage()
  .split("\n")
  .filter(
    (l) => !LIVE.some((name) => l.startsWith(name) || (/ (HELP|TYPE) /.test(l) && l.split(" ")[2] === name)),
  )
  .join("\n");
const staticByQuery = new Map<string, string>();

let counter = 0;
function page(i: number, url: string): string {
  counter++;
  const names = requestedNames(url);
  let rest = staticPart;
  if (names !== undefined) {
    const q = url.slice(url.indexOf("?"));
    rest = staticByQuery.get(q) ?? restrictToNames(staticPart, names);
    staticByQuery.set(q, rest);
  }
  const live = [(counter + i) % 17, (counter * 7 + i) % 64, ((counter * 13 + i) % 10000) / 10000];
  let out = "";
  for (let k = 0; k < LIVE.length; k++) {
    if (names !== undefined && !names.has(LIVE[k]!)) continue;
    out += `# TYPE ${LIVE[k]} gauge\n${LIVE[k]}{engine="0",model_name="m"} ${live[k]}\n`;
  }
  return out + rest;
}

const HEAD = "HTTP/1.1 200 OK\r\ncontent-type: text/plain; version=0.0.4\r\ncontent-length: ";

/** Keep-alive HTTP/1.1 GETs on one socket: each complete request head is answered in order. */
function serveRaw(i: number, sock: Socket): void {
  let pending = "";
  sock.setNoDelay(true);
  sock.on("error", () => {});
  sock.on("data", (d: Buffer) => {
    pending = pending === "" ? d.toString("latin1") : pending + d.toString("latin1");
    for (let end = pending.indexOf("\r\n\r\n"); end >= 0; end = pending.indexOf("\r\n\r\n")) {
      const lineEnd = pending.indexOf("\r\n");
      const target = pending.slice(pending.indexOf(" ") + 1, pending.lastIndexOf(" ", lineEnd));
      pending = pending.slice(end + 4);
      const body = page(i, target || "/metrics");
      sock.write(`${HEAD}${Buffer.byteLength(body)}\r\n\r\n${body}`);
    }
    if (pending.length > 16384) sock.destroy(); // not a scraper
  });
}

function httpServer(i: number): Server {
  const server = createServer((req, res) => {
    const body = page(i, req.url ?? "/metrics");
    res.writeHead(200, {
      "content-type": "text/plain; version=0.0.4",
      "content-length": Buffer.byteLength(body),
    });
    res.end(body);
  });
  server.keepAliveTimeout = 60_000;
  return server;
}

const ports: number[] = [];
for (let i = 0; i < count; i++) {
  const server = serverKind === "raw" ? createRawServer((sock) => serveRaw(i, sock)) : httpServer(i);
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  ports.push((server.address() as AddressInfo).port);
}
process.send!({ ports, fullPageBytes: Buffer.byteLength(page(0, "/metrics")) });
process.on("message", (m) => {
  if (m === "cpu") process.send!({ cpu: process.cpuUsage() });
});
process.on("disconnect", () => process.exit(0));
