// Child process for bench/sidecar.ts: N fake vLLM model servers' /metrics, one listening port each, so
// the scraper sees what it sees in production (one keep-alive connection per endpoint).
// Ports are reported over IPC; "cpu" messages are answered with this process's CPU usage.
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { readFileSync } from "node:fs";

const count = Number(process.argv[2] ?? 1000);
const pageKind = process.argv[3] ?? "vllm";
const fixture = readFileSync(new URL("../test/fixtures/metrics/vllm.txt", import.meta.url), "utf8");

// The fixture's three live gauges are rewritten per response so every scrape carries new numbers.
const [head, tail] = (() => {
  const withoutLive = fixture
    .split("\n")
    .filter((l) => !/^vllm:(num_requests_waiting|num_requests_running|kv_cache_usage_perc)\{/.test(l))
    .join("\n");
  return pageKind === "minimal" ? ["", ""] : [withoutLive, ""];
})();

let counter = 0;
function page(i: number): string {
  counter++;
  const waiting = (counter + i) % 17;
  const running = (counter * 7 + i) % 64;
  const kv = ((counter * 13 + i) % 10000) / 10000;
  return (
    `vllm:num_requests_waiting{engine="0",model_name="m"} ${waiting}\n` +
    `vllm:num_requests_running{engine="0",model_name="m"} ${running}\n` +
    `vllm:kv_cache_usage_perc{engine="0",model_name="m"} ${kv}\n` +
    head +
    tail
  );
}

const ports: number[] = [];
for (let i = 0; i < count; i++) {
  const server = createServer((_req, res) => {
    const body = page(i);
    res.writeHead(200, {
      "content-type": "text/plain; version=0.0.4",
      "content-length": Buffer.byteLength(body),
    });
    res.end(body);
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  ports.push((server.address() as AddressInfo).port);
}
process.send!({ ports, pageBytes: Buffer.byteLength(page(0)) });
process.on("message", (m) => {
  if (m === "cpu") process.send!({ cpu: process.cpuUsage() });
});
process.on("disconnect", () => process.exit(0));
