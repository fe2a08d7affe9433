// The local gateway holds its ground (issue 21): the gateway runs as a child process the way `npm start` runs it
// (override_host bootstrap, build/filter.wasm) and is driven over raw sockets. It closes connections over its
// limit at accept, answers a header slowloris and an idle body with 408 and closes, sheds new connections while
// over its memory ceiling and takes them again once memory falls, and keeps serving ordinary requests while 200
// clients upload 1 MB bodies slowly. Deadlines only bound hangs; the latencies are printed, not asserted.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import net from "node:net";
import { readFileSync } from "node:fs";
import type { AddressInfo } from "node:net";
import { snapshotFor, startGatewayProcess, type GatewayProcess } from "../support/gateway-process.ts";
import { waitFor, withDeadline } from "../support/deadline.ts";

const MB = 1_000_000;

/** A model server: answers once the body is read; a request with x-hold waits until `release()` (from then on, none waits). */
interface Upstream {
  address: string;
  held(): number;
  release(): void;
  close(): Promise<void>;
}

async function startUpstream(): Promise<Upstream> {
  let waiting: Array<() => void> = [];
  let holding = true;
  const server = http.createServer((req, res) => {
    let bytes = 0;
    req.on("data", (c: Buffer) => (bytes += c.length));
    req.on("end", () => {
      const answer = () => {
        if (res.destroyed) return;
        const body = JSON.stringify({ bytes, choices: [{ text: "ok" }] });
        res.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(body) });
        res.end(body);
      };
      if (req.headers["x-hold"] && holding) waiting.push(answer);
      else answer();
    });
  });
  server.keepAliveTimeout = 65_000;
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  const port = (server.address() as AddressInfo).port;
  return {
    address: `127.0.0.1:${port}`,
    held: () => waiting.length,
    release() {
      holding = false;
      const w = waiting;
      waiting = [];
      for (const f of w) f();
    },
    close: () =>
      new Promise<void>((r) => {
        server.close(() => r());
        server.closeAllConnections();
      }),
  };
}

/** A raw client connection that collects what the gateway sends and notices when it closes. */
interface Raw {
  socket: net.Socket;
  data(): string;
  closed: Promise<void>;
  isClosed(): boolean;
}

function connect(port: number): Promise<Raw> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, "127.0.0.1");
    let buf = "";
    let isClosed = false;
    const closed = new Promise<void>((r) =>
      socket.on("close", () => {
        isClosed = true;
        r();
      }),
    );
    socket.on("data", (d: Buffer) => (buf += d.toString("latin1")));
    socket.on("error", () => {});
    socket.once("connect", () => resolve({ socket, data: () => buf, closed, isClosed: () => isClosed }));
    socket.once("error", reject);
  });
}

const completion = (prompt = "hello") => JSON.stringify({ model: "m", prompt });

function requestBytes(body: string, extra = ""): string {
  return (
    `POST /v1/completions HTTP/1.1\r\nhost: gw\r\ncontent-type: application/json\r\n${extra}` +
    `content-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`
  );
}

/** Sends one request on `c` and waits for its complete (content-length framed) response; returns the status. */
async function exchange(c: Raw, what: string): Promise<number> {
  const start = c.data().length;
  c.socket.write(requestBytes(completion()));
  await waitFor(
    what,
    () => {
      const got = c.data().slice(start);
      const head = got.indexOf("\r\n\r\n");
      if (head < 0) return false;
      const len = Number(/content-length: *(\d+)/i.exec(got.slice(0, head))?.[1] ?? 0);
      return got.length >= head + 4 + len;
    },
    10_000,
  );
  return Number(
    c
      .data()
      .slice(start, start + 12)
      .split(" ")[1],
  );
}

/** One ordinary request over a fresh connection (fetch-free, no pooling surprises). */
function ordinary(port: number, agent?: http.Agent): Promise<{ status: number; ms: number }> {
  const t0 = performance.now();
  return withDeadline(
    new Promise((resolve, reject) => {
      const body = completion();
      const req = http.request(
        {
          host: "127.0.0.1",
          port,
          method: "POST",
          path: "/v1/completions",
          agent,
          headers: { "content-type": "application/json", "content-length": Buffer.byteLength(body) },
        },
        (res) => {
          res.resume();
          res.on("end", () => resolve({ status: res.statusCode ?? 0, ms: performance.now() - t0 }));
        },
      );
      req.on("error", reject);
      req.end(body);
    }),
    30_000,
    "an ordinary request",
  );
}

function rssBytes(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return Number(m?.[1] ?? 0) * 1024;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let upstream: Upstream;
const gateways: GatewayProcess[] = [];

async function gateway(settings: Record<string, unknown>): Promise<GatewayProcess> {
  const gp = await startGatewayProcess({ endpoints: [upstream.address], settings });
  gateways.push(gp);
  const pushed = await gp.push(snapshotFor(1n, [upstream.address]));
  assert.equal(pushed.status, 204, pushed.body);
  return gp;
}

before(async () => {
  upstream = await startUpstream();
});

after(async () => {
  for (const g of gateways) await g.stop();
  await upstream.close();
});

test("over maxConnections a new connection is closed at accept; the open ones keep working", async () => {
  const gp = await gateway({ maxConnections: 3 });
  const open = [await connect(gp.dataPort), await connect(gp.dataPort), await connect(gp.dataPort)];
  for (const c of open) assert.equal(await exchange(c, "a response on an open connection"), 200);
  const extra = await connect(gp.dataPort);
  extra.socket.write(requestBytes(completion()));
  await withDeadline(extra.closed, 10_000, "the connection over the limit to close");
  assert.equal(extra.data(), "", "the connection over the limit got no response");
  for (const c of open) assert.equal(await exchange(c, "a second response on an open connection"), 200);
  // A slot frees when a connection closes.
  open[0]!.socket.destroy();
  await waitFor(
    "a new connection to be served after one closed",
    async () => {
      const c = await connect(gp.dataPort);
      c.socket.write(requestBytes(completion()));
      await Promise.race([c.closed, sleep(300)]);
      const ok = c.data().startsWith("HTTP/1.1 200");
      c.socket.destroy();
      return ok;
    },
    10_000,
  );
  for (const c of open) c.socket.destroy();
  assert.ok(gp.alive());
});

test("a client that does not finish its headers gets 408 and is closed; others are served meanwhile", async () => {
  const gp = await gateway({ requestHeadersTimeoutMs: 400 });
  const slow = await connect(gp.dataPort);
  slow.socket.write("POST /v1/completions HTTP/1.1\r\nhost: gw\r\n");
  let n = 0;
  const drip = setInterval(() => {
    if (!slow.isClosed()) slow.socket.write(`x-drip-${n++}: 1\r\n`);
  }, 50);
  try {
    assert.equal((await ordinary(gp.dataPort)).status, 200);
    await withDeadline(slow.closed, 15_000, "the header slowloris to be closed");
  } finally {
    clearInterval(drip);
  }
  assert.match(slow.data(), /^HTTP\/1\.1 408 /);
  assert.ok(gp.alive());
});

test("a body stream with no bytes either way for streamIdleTimeoutMs is answered 408 and closed", async () => {
  const gp = await gateway({ streamIdleTimeoutMs: 400 });
  const c = await connect(gp.dataPort);
  const body = completion("x".repeat(1000));
  c.socket.write(
    `POST /v1/completions HTTP/1.1\r\nhost: gw\r\ncontent-type: application/json\r\n` +
      `content-length: ${body.length}\r\n\r\n${body.slice(0, 100)}`,
  );
  await withDeadline(c.closed, 15_000, "the idle body stream to be cut");
  assert.match(c.data(), /^HTTP\/1\.1 408 /);
  assert.match(c.data(), /stream timeout/);
  // An ordinary request is not cut (its bytes keep flowing).
  assert.equal((await ordinary(gp.dataPort)).status, 200);
  assert.ok(gp.alive());
});

test("over the memory ceiling new connections are refused, open ones get 503, and it recovers", async () => {
  // A ceiling of one byte: overloaded from the first sample; the log gives the idle usage.
  const tiny = await startGatewayProcess({
    endpoints: [upstream.address],
    settings: { overload: { maxHeapBytes: 1 } },
  });
  gateways.push(tiny);
  const c = await connect(tiny.dataPort);
  c.socket.write(requestBytes(completion()));
  await withDeadline(c.closed, 10_000, "a connection to the overloaded gateway to close");
  assert.equal(c.data(), "");
  const started = tiny.logs.find((l) => l.msg === "overload manager started");
  const idleUsage = Number(started?.heapBytes);
  assert.ok(idleUsage > 0, JSON.stringify(started));
  await tiny.stop();

  // 96 MB above idle; 150 held requests keep a 1 MB retry buffer each (the route retry policy's replay buffer).
  const gp = await gateway({ overload: { maxHeapBytes: idleUsage + 96 * MB } });
  const keep = await connect(gp.dataPort);
  assert.equal(await exchange(keep, "a response before the overload"), 200);
  const agent = new http.Agent({ keepAlive: false, maxSockets: Infinity });
  const bigBody = completion("y".repeat(MB - 40));
  const held = Array.from(
    { length: 150 },
    () =>
      new Promise<number>((resolve) => {
        const req = http.request(
          {
            host: "127.0.0.1",
            port: gp.dataPort,
            method: "POST",
            path: "/v1/completions",
            agent,
            headers: { "content-type": "application/json", "x-hold": "1" },
          },
          (res) => {
            res.resume();
            res.on("end", () => resolve(res.statusCode ?? 0));
          },
        );
        req.on("error", () => resolve(-1));
        req.end(bigBody);
      }),
  );
  await waitFor(
    "the gateway to report overload",
    () => gp.logs.some((l) => l.msg?.toString().startsWith("overloaded")),
    60_000,
  );
  const refused = await connect(gp.dataPort);
  refused.socket.write(requestBytes(completion()));
  await withDeadline(refused.closed, 10_000, "a new connection to be refused while overloaded");
  assert.equal(refused.data(), "");
  assert.equal(await exchange(keep, "a 503 on an open connection while overloaded"), 503);
  assert.match(keep.data(), /envoy overloaded/);

  upstream.release();
  const statuses = await withDeadline(Promise.all(held), 60_000, "the held requests to finish");
  await waitFor(
    "the gateway to leave overload",
    () => gp.logs.some((l) => l.msg === "overload over: accepting connections again"),
    30_000,
  );
  // A binary threshold (as Envoy's) can trip again on the next sample while freed buffers wait for a collection:
  // recovery means an ordinary request is served soon after, not necessarily by the first connection.
  let recovered = 0;
  await waitFor(
    "an ordinary request to be served after the overload",
    async () => (recovered = (await ordinary(gp.dataPort).catch(() => ({ status: -1 }))).status) === 200,
    20_000,
  );
  assert.equal(recovered, 200);
  console.log(
    `overload: idle usage ${(idleUsage / MB).toFixed(1)} MB, ceiling +96 MB; held requests: ` +
      `${statuses.filter((s) => s === 200).length} × 200, ${statuses.filter((s) => s !== 200).length} other`,
  );
  keep.socket.destroy();
  agent.destroy();
  assert.ok(gp.alive());
});

test("200 concurrent slow 1 MB uploads do not stop ordinary requests; RSS growth stays bounded", async () => {
  const gp = await gateway({});
  const pid = gp.proc.pid!;
  // Warm up, then take the baseline.
  for (let i = 0; i < 20; i++) await ordinary(gp.dataPort);
  const rss0 = rssBytes(pid);
  let peak = rss0;
  const sampler = setInterval(() => (peak = Math.max(peak, rssBytes(pid))), 50);

  // Each client sends all but the last byte of a 1 MB body in 16 KB pieces every 100 ms, then holds it unfinished
  // until every client got that far (the "200 clients each holding 1 MB of unfinished body").
  const CHUNK = 16 * 1024;
  const UPLOADS = 200;
  const body = Buffer.from(completion("z".repeat(MB - 40)));
  let holding = 0;
  let finishAll!: () => void;
  const finishGate = new Promise<void>((r) => (finishAll = r));
  const uploads = Array.from({ length: UPLOADS }, async (_, i) => {
    const c = await connect(gp.dataPort);
    c.socket.write(
      `POST /v1/completions HTTP/1.1\r\nhost: gw\r\ncontent-type: application/json\r\n` +
        `connection: close\r\ncontent-length: ${body.length}\r\n\r\n`,
    );
    await sleep(i % 100);
    const last = body.length - 1;
    for (let off = 0; off < last && !c.isClosed(); off += CHUNK) {
      c.socket.write(body.subarray(off, Math.min(off + CHUNK, last)));
      await sleep(100);
    }
    if (++holding === UPLOADS) finishAll();
    await withDeadline(finishGate, 120_000, "every upload to hold its unfinished body");
    c.socket.write(body.subarray(last));
    await withDeadline(c.closed, 120_000, "a slow upload to be answered");
    return Number(c.data().slice(0, 12).split(" ")[1]);
  });

  const latencies: number[] = [];
  let heldPeak = 0;
  const all = Promise.all(uploads);
  let done = false;
  void finishGate.then(async () => {
    // Measure a little longer while every body is held, then let them finish.
    await sleep(1000);
    heldPeak = peak;
    done = true;
  });
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  while (!done) {
    const r = await ordinary(gp.dataPort, agent);
    assert.equal(r.status, 200);
    latencies.push(r.ms);
    await sleep(10);
  }
  const statuses = await all;
  clearInterval(sampler);
  agent.destroy();
  latencies.sort((a, b) => a - b);
  const pct = (p: number) =>
    latencies[Math.min(latencies.length - 1, Math.floor((p / 100) * latencies.length))]!;
  const growth = peak - rss0;
  console.log(
    `slow uploads: ${statuses.filter((s) => s === 200).length}/200 answered 200; gateway RSS ` +
      `${(rss0 / MB).toFixed(0)} MB → peak while held ${(heldPeak / MB).toFixed(0)} MB (+` +
      `${((heldPeak - rss0) / MB).toFixed(0)} MB), overall peak ${(peak / MB).toFixed(0)} MB (+${(growth / MB).toFixed(0)} MB); ` +
      `${latencies.length} ordinary requests meanwhile: p50 ${pct(50).toFixed(1)} ms, p90 ${pct(90).toFixed(1)} ms, ` +
      `p99 ${pct(99).toFixed(1)} ms, max ${latencies[latencies.length - 1]!.toFixed(1)} ms`,
  );
  assert.ok(latencies.length > 0);
  assert.ok(
    statuses.every((s) => s === 200),
    `upload statuses: ${statuses.join(",")}`,
  );
  // The bound the design gives, not the target: the filter routes on the body's head and lets the rest
  // stream, so a held request costs the router's replay buffer (at most bufferLimitBytes, 1 MiB, while a retry is
  // still possible) plus the head the filter held; three copies of 1 MiB bound that with room. Nothing else of the
  // client's bytes is kept (flow control pauses the client when the upstream is slow). Slack for garbage and VMs.
  const bound = UPLOADS * 3 * 1024 * 1024 + 150 * MB;
  assert.ok(
    growth < bound,
    `RSS grew by ${(growth / MB).toFixed(0)} MB (bound ${(bound / MB).toFixed(0)} MB)`,
  );
  assert.ok(gp.alive());
});
