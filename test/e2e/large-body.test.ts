// Prompts of any size (issue 21): a 20 MB chat body goes through the gateway process (override_host bootstrap,
// build/filter.wasm) to the model server as it arrives. The filter routes on the body's head and lets the rest
// stream, so the gateway's memory does not follow the body's size; the model server receives every byte.
import { after, test } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import type { AddressInfo } from "node:net";
import { snapshotFor, startGatewayProcess, type GatewayProcess } from "../support/gateway-process.ts";
import { withDeadline } from "../support/deadline.ts";

const MB = 1024 * 1024;

function rssBytes(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return Number(m?.[1] ?? 0) * 1024;
}

/** A model server that hashes what it receives and answers with the byte count and the hash. */
async function hashingUpstream(): Promise<{ address: string; close(): Promise<void> }> {
  const server = http.createServer((req, res) => {
    const hash = createHash("sha256");
    let bytes = 0;
    req.on("data", (c: Buffer) => {
      bytes += c.length;
      hash.update(c);
    });
    req.on("end", () => {
      const body = JSON.stringify({
        bytes,
        sha256: hash.digest("hex"),
        model: req.headers["x-gateway-model-name"],
      });
      res.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(body) });
      res.end(body);
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  return {
    address: `127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

const cleanup: Array<() => Promise<void>> = [];
after(async () => {
  for (const c of cleanup.reverse()) await c();
});

/** Streams `body` to the gateway in 64 KiB writes that respect back-pressure; resolves with the response. */
function upload(port: number, body: Buffer): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: "127.0.0.1",
        port,
        method: "POST",
        path: "/v1/chat/completions",
        headers: { "content-type": "application/json", "content-length": body.length },
      },
      (res) => {
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (c: string) => (text += c));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, text }));
      },
    );
    req.on("error", reject);
    let off = 0;
    const pump = () => {
      while (off < body.length) {
        const chunk = body.subarray(off, off + 64 * 1024);
        off += chunk.length;
        if (!req.write(chunk)) return void req.once("drain", pump);
      }
      req.end();
    };
    pump();
  });
}

test("a 20 MB chat body reaches the model server whole while the gateway's RSS grows by under 32 MB", async () => {
  const upstream = await hashingUpstream();
  cleanup.push(() => upstream.close());
  const gp: GatewayProcess = await startGatewayProcess({ endpoints: [upstream.address], workers: 1 });
  cleanup.push(() => gp.stop());
  const pushed = await gp.push(snapshotFor(1n, [upstream.address]));
  assert.equal(pushed.status, 204, pushed.body);

  const words = "the quick brown fox jumps over the lazy dog; ";
  const content = words.repeat(Math.ceil((20 * MB) / words.length)).slice(0, 20 * MB);
  const body = Buffer.from(JSON.stringify({ model: "big-model", messages: [{ role: "user", content }] }));
  // Warm the path (JIT, buffers, connection pools), then take the baseline.
  const warm = Buffer.from(
    JSON.stringify({ model: "big-model", messages: [{ role: "user", content: content.slice(0, 2 * MB) }] }),
  );
  for (let i = 0; i < 3; i++) assert.equal((await upload(gp.dataPort, warm)).status, 200);
  const rss0 = rssBytes(gp.proc.pid!);
  let peak = rss0;
  const sampler = setInterval(() => (peak = Math.max(peak, rssBytes(gp.proc.pid!))), 10);
  const res = await withDeadline(upload(gp.dataPort, body), 120_000, "the 20 MB upload");
  clearInterval(sampler);
  peak = Math.max(peak, rssBytes(gp.proc.pid!));

  assert.equal(res.status, 200, res.text);
  const seen = JSON.parse(res.text) as { bytes: number; sha256: string; model: string };
  assert.equal(seen.bytes, body.length);
  assert.equal(seen.sha256, createHash("sha256").update(body).digest("hex"));
  assert.equal(seen.model, "big-model");
  const growth = peak - rss0;
  console.log(
    `20 MB body: gateway RSS ${(rss0 / MB).toFixed(0)} MiB → peak ${(peak / MB).toFixed(0)} MiB (+${(growth / MB).toFixed(1)} MiB)`,
  );
  assert.ok(growth < 32 * 1000 * 1000, `RSS grew by ${(growth / MB).toFixed(1)} MiB`);
});
