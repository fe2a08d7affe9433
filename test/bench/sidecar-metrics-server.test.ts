// bench:sidecar's fake model servers: the raw server must answer like the node:http one (same pages, same
// name[] filter), over keep-alive, including two requests that arrive in one packet.
import { test } from "node:test";
import assert from "node:assert/strict";
import { fork } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { connect } from "node:net";
import { createLeanFetcher } from "../../sidecar/collector/lean-http.ts";
import { withDeadline } from "../support/deadline.ts";

const SERVER = new URL("../../bench/sidecar-metrics-server.ts", import.meta.url).pathname;

async function start(kind: string): Promise<{ child: ChildProcess; ports: number[] }> {
  const child = fork(SERVER, ["2", "fixture", kind], {
    execArgv: ["--import", "tsx"],
    stdio: ["ignore", "ignore", "inherit", "ipc"],
  });
  const ports = await withDeadline(
    new Promise<number[]>((resolve, reject) => {
      child.once("message", (m) => resolve((m as { ports: number[] }).ports));
      child.once("exit", (code) => reject(new Error(`server exited with ${code}`)));
    }),
    15_000,
    "the metrics server's ports",
  );
  return { child, ports };
}

function stop(child: ChildProcess): Promise<void> {
  return withDeadline(
    new Promise((resolve) => {
      child.once("exit", () => resolve());
      child.kill();
    }),
    10_000,
    "the metrics server to exit",
  );
}

/** The page with the live gauges' numbers blanked (they change on every response). */
function shape(page: string): string {
  return page.replace(
    /^(vllm:(?:num_requests_waiting|num_requests_running|kv_cache_usage_perc)\S*) \S+$/gm,
    "$1 _",
  );
}

const FILTER = "?name%5B%5D=vllm%3Anum_requests_waiting&name%5B%5D=vllm%3Acache_config_info";

test(
  "the raw server serves the node:http server's pages, filtered by name[] the same way",
  { timeout: 20_000 },
  async () => {
    const raw = await start("raw");
    const http = await start("http");
    const fetcher = createLeanFetcher();
    try {
      const signal = new AbortController().signal;
      for (const q of ["", FILTER]) {
        const a = await fetcher.fetch(`http://127.0.0.1:${raw.ports[1]}/metrics${q}`, signal);
        const b = await fetcher.fetch(`http://127.0.0.1:${http.ports[1]}/metrics${q}`, signal);
        assert.equal(shape(a), shape(b));
      }
      const filtered = await fetcher.fetch(`http://127.0.0.1:${raw.ports[0]}/metrics${FILTER}`, signal);
      const names = filtered
        .split("\n")
        .filter((l) => l !== "" && !l.startsWith("#"))
        .map((l) => l.split(/[{ ]/)[0]);
      assert.deepEqual(names, ["vllm:num_requests_waiting", "vllm:cache_config_info"]);
    } finally {
      await fetcher.close();
      await Promise.all([stop(raw.child), stop(http.child)]);
    }
  },
);

test(
  "the raw server answers two requests written at once, in order, on one connection",
  { timeout: 20_000 },
  async () => {
    const raw = await start("raw");
    try {
      const request = `GET /metrics${FILTER} HTTP/1.1\r\nHost: x\r\n\r\n`;
      const text = await new Promise<string>((resolve, reject) => {
        const sock = connect(raw.ports[0]!, "127.0.0.1");
        let got = "";
        const timer = setTimeout(() => {
          sock.destroy();
          reject(new Error(`no second response within 5 s; got: ${JSON.stringify(got.slice(0, 200))}`));
        }, 5000);
        sock.on("error", reject);
        sock.on("data", (d) => {
          got += d.toString("latin1");
          if (got.split("HTTP/1.1 200 OK").length === 3 && got.endsWith("\n")) {
            clearTimeout(timer);
            sock.destroy();
            resolve(got);
          }
        });
        sock.write(request + request);
      });
      const responses = text.split("HTTP/1.1 200 OK").slice(1);
      assert.equal(responses.length, 2);
      for (const r of responses) {
        const [head, body] = r.split("\r\n\r\n") as [string, string];
        const length = Number(/content-length: (\d+)/i.exec(head)?.[1]);
        assert.equal(Buffer.byteLength(body), length);
      }
    } finally {
      await stop(raw.child);
    }
  },
);
