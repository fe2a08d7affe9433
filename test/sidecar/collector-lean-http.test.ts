import { test } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:http";
import { createServer as createTcpServer } from "node:net";
import type { AddressInfo, Server as TcpServer } from "node:net";
import type { Server } from "node:http";
import { createLeanFetcher } from "../../sidecar/collector/lean-http.ts";
import { createMetricsFetcher } from "../../sidecar/collector/fetchers.ts";
import { waitFor } from "../support/deadline.ts";
import { requirePrerequisite, skipUnlessCI } from "../support/prereq.ts";

async function listen<T extends Server | TcpServer>(server: T, host = "127.0.0.1"): Promise<number> {
  await new Promise<void>((r) => server.listen(0, host, r));
  return (server.address() as AddressInfo).port;
}

async function closeHttp(server: Server): Promise<void> {
  server.closeAllConnections();
  await new Promise<void>((r) => server.close(() => r()));
}

const never = new AbortController().signal;

test("lean http: keep-alive reuse, content-length and chunked bodies, errors, Connection: close", async () => {
  let connections = 0;
  const server = createServer((req, res) => {
    if (req.url === "/chunked") {
      res.write("part one\n");
      setImmediate(() => res.end("part two ünïcode\n"));
    } else if (req.url === "/500") {
      res.statusCode = 500;
      res.end("nope");
    } else if (req.url === "/close") {
      res.setHeader("connection", "close");
      res.end("bye");
    } else if (req.url === "/big") {
      res.end("x".repeat(5000));
    } else {
      res.end(`hello ${req.url} ${req.headers.host}`);
    }
  });
  server.on("connection", () => connections++);
  const port = await listen(server);
  const lean = createLeanFetcher({ maxBodyBytes: 4096 });
  const url = (p: string) => `http://127.0.0.1:${port}${p}`;
  try {
    for (let i = 0; i < 5; i++)
      assert.equal(await lean.fetch(url("/metrics"), never), `hello /metrics 127.0.0.1:${port}`);
    assert.equal(connections, 1, "one kept-alive connection for five requests");
    assert.equal(await lean.fetch(url("/chunked"), never), "part one\npart two ünïcode\n");
    await assert.rejects(lean.fetch(url("/500"), never), /HTTP 500/);
    assert.equal(
      await lean.fetch(url("/metrics"), never),
      `hello /metrics 127.0.0.1:${port}`,
      "recovers after an error",
    );
    assert.equal(await lean.fetch(url("/close"), never), "bye");
    assert.equal(
      await lean.fetch(url("/metrics"), never),
      `hello /metrics 127.0.0.1:${port}`,
      "reconnects after close",
    );
    await assert.rejects(lean.fetch(url("/big"), never), /too large/);
    await assert.rejects(lean.fetch("https://127.0.0.1:1/metrics", never), /http only/);
  } finally {
    await lean.close();
    await closeHttp(server);
  }
});

test("lean http: a kept-alive socket the server closed while idle is retried once on a new connection", async () => {
  const server = createServer((_req, res) => res.end("ok"));
  server.keepAliveTimeout = 30;
  let open = 0;
  server.on("connection", (s) => {
    open++;
    s.on("close", () => open--);
  });
  const port = await listen(server);
  const lean = createLeanFetcher();
  try {
    assert.equal(await lean.fetch(`http://127.0.0.1:${port}/`, never), "ok");
    await waitFor("the server to close the idle kept-alive socket", () => open === 0, 10_000);
    assert.equal(await lean.fetch(`http://127.0.0.1:${port}/`, never), "ok");
  } finally {
    await lean.close();
    await closeHttp(server);
  }
});

test("lean http: abort rejects with the reason and the next request gets a fresh connection", async () => {
  let hang = true;
  let received = 0;
  const server = createServer((_req, res) => {
    received++;
    if (!hang) res.end("late but fine");
  });
  const port = await listen(server);
  const lean = createLeanFetcher();
  try {
    const ac = new AbortController();
    const p = lean.fetch(`http://127.0.0.1:${port}/`, ac.signal);
    p.catch(() => {}); // asserted below
    // Abort while the server holds the request (not after a guessed delay).
    await waitFor("the server to receive the request", () => received === 1, 10_000);
    ac.abort(new Error("timed out after 20 ms"));
    await assert.rejects(p, /timed out after 20 ms/);
    hang = false;
    assert.equal(await lean.fetch(`http://127.0.0.1:${port}/`, never), "late but fine");
  } finally {
    await lean.close();
    await closeHttp(server);
  }
});

test("lean http: HTTP/1.0 and any Connection: close end the connection; the first Content-Length counts", async () => {
  // A server that keeps every socket open and answers each request by its path, so only the client's
  // reading of the head decides whether a connection is reused.
  const answers: Record<string, string> = {
    "/old": "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 3\r\n\r\nold",
    "/two": "HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nconnection: Close\r\ncontent-length: 3\r\n\r\ntwo",
    "/dup": "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 5\r\n\r\ndup",
    "/bad": "HTTP/1.1 200 OK\r\nContent-Length: 1e3\r\n\r\n",
  };
  let connections = 0;
  const raw = createTcpServer((sock) => {
    connections++;
    sock.on("data", (req) => sock.write(answers[req.toString("latin1").split(" ")[1]!] ?? ""));
    sock.on("error", () => {});
  });
  const port = await listen(raw);
  const lean = createLeanFetcher();
  const url = (p: string) => `http://127.0.0.1:${port}${p}`;
  try {
    assert.equal(await lean.fetch(url("/old"), never), "old");
    assert.equal(await lean.fetch(url("/old"), never), "old");
    assert.equal(connections, 2, "an HTTP/1.0 response is never kept alive");
    assert.equal(await lean.fetch(url("/two"), never), "two");
    assert.equal(await lean.fetch(url("/two"), never), "two");
    assert.equal(connections, 4, "a Connection: close line closes, whatever other lines say");
    assert.equal(await lean.fetch(url("/dup"), never), "dup");
    assert.equal(await lean.fetch(url("/dup"), never), "dup");
    assert.equal(connections, 5, "the body ends at the first Content-Length; the connection is reused");
    await assert.rejects(lean.fetch(url("/bad"), never), /bad Content-Length/);
  } finally {
    await lean.close();
    await new Promise<void>((r) => raw.close(() => r()));
  }
});

test("lean http: refused connection, garbage bytes, HTTP/1.0 read-until-close", async () => {
  const lean = createLeanFetcher();
  const raw = createTcpServer((sock) => {
    sock.once("data", (req) => {
      const path = req.toString("latin1").split(" ")[1];
      if (path === "/garbage") sock.end("SSH-2.0-OpenSSH_9.6\r\n\r\n");
      else sock.end("HTTP/1.0 200 OK\r\ncontent-type: text/plain\r\n\r\nup 1\n");
    });
  });
  const port = await listen(raw);
  const closed = createTcpServer();
  const refusedPort = await listen(closed);
  await new Promise<void>((r) => closed.close(() => r()));
  try {
    await assert.rejects(lean.fetch(`http://127.0.0.1:${refusedPort}/`, never), /ECONNREFUSED/);
    await assert.rejects(lean.fetch(`http://127.0.0.1:${port}/garbage`, never), /not an HTTP/);
    assert.equal(await lean.fetch(`http://127.0.0.1:${port}/old`, never), "up 1\n");
  } finally {
    await lean.close();
    await new Promise<void>((r) => raw.close(() => r()));
  }
});

/** Why ::1 cannot be bound here (a container with IPv6 disabled), or undefined when it can. */
async function noIpv6Loopback(): Promise<string | undefined> {
  const probe = createTcpServer();
  try {
    await new Promise<void>((resolve, reject) => {
      probe.once("error", reject);
      probe.listen(0, "::1", resolve);
    });
    await new Promise<void>((r) => probe.close(() => r()));
    return undefined;
  } catch (err) {
    return `an IPv6 loopback (::1): ${(err as Error).message}`;
  }
}

// Pods may have IPv6 addresses, so the literal form is tested against a real socket. Outside CI a machine
// without ::1 skips it (with the reason); CI machines have IPv6 loopback, so there it fails instead.
const v6Missing = await noIpv6Loopback();
test(
  "lean http: an IPv6 literal URL reaches a server on ::1",
  { skip: skipUnlessCI(v6Missing) },
  async () => {
    requirePrerequisite(v6Missing);
    const lean = createLeanFetcher();
    const v6 = createServer((req, res) => res.end(`v6 ${req.headers.host}`));
    const v6port = await listen(v6, "::1");
    try {
      assert.equal(await lean.fetch(`http://[::1]:${v6port}/metrics`, never), `v6 [::1]:${v6port}`);
    } finally {
      await lean.close();
      await closeHttp(v6);
    }
  },
);

test("lean http: sockets of endpoints no longer scraped are closed after idleCloseMs", async () => {
  let open = 0;
  const server = createServer((_req, res) => res.end("ok"));
  server.on("connection", (s) => {
    open++;
    s.on("close", () => open--);
  });
  const port = await listen(server);
  const lean = createLeanFetcher({ idleCloseMs: 20 });
  try {
    assert.equal(await lean.fetch(`http://127.0.0.1:${port}/`, never), "ok");
    assert.equal(open, 1);
    await waitFor("the sweep to close the idle socket", () => open === 0, 10_000);
    assert.equal(await lean.fetch(`http://127.0.0.1:${port}/`, never), "ok", "and reopened on demand");
  } finally {
    await lean.close();
    await closeHttp(server);
  }
});

test("createMetricsFetcher: http goes through the lean client, undici on request", async () => {
  const agents: string[] = [];
  const server = createServer((req, res) => {
    agents.push(String(req.headers["user-agent"]));
    res.end("ok");
  });
  const port = await listen(server);
  const auto = createMetricsFetcher();
  const undici = createMetricsFetcher({ client: "undici" });
  try {
    assert.equal(await auto.fetch(`http://127.0.0.1:${port}/metrics`, never), "ok");
    assert.equal(await undici.fetch(`http://127.0.0.1:${port}/metrics`, never), "ok");
    assert.equal(agents[0], "epp-sidecar");
    assert.notEqual(agents[1], "epp-sidecar");
  } finally {
    await auto.close();
    await undici.close();
    await closeHttp(server);
  }
});

test("lean http: responses split across reads stay intact while other sockets reuse the read buffer", async () => {
  // Raw TCP servers that dribble a response out in pieces (head split mid-line, body split mid-character),
  // so every piece sits in the shared read buffer while the other endpoint's reads overwrite it.
  const bodies = ["alpha ".repeat(300) + "ünï", "beta ".repeat(500) + "çødé"];
  const servers = bodies.map((body) =>
    createTcpServer((sock) => {
      sock.on("data", () => {
        const bytes = Buffer.from(
          `HTTP/1.1 200 OK\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
        );
        const cuts = [0, 17, 40, bytes.length - 3, bytes.length - 1, bytes.length];
        cuts.slice(1).forEach((end, k) => setTimeout(() => sock.write(bytes.subarray(cuts[k], end)), 5 * k));
      });
    }),
  );
  const ports = await Promise.all(servers.map((s) => listen(s)));
  const lean = createLeanFetcher();
  try {
    for (let round = 0; round < 3; round++) {
      const got = await Promise.all(ports.map((p) => lean.fetch(`http://127.0.0.1:${p}/metrics`, never)));
      assert.deepEqual(got, bodies);
    }
  } finally {
    await lean.close();
    for (const s of servers) await new Promise<void>((r) => s.close(() => r()));
  }
});

test("lean http channels: one GET at a time, done once and never synchronously, cancel ends only its own GET", async () => {
  let hold = false;
  const held: (() => void)[] = [];
  const server = createServer((req, res) => {
    const answer = () => res.end(`page ${req.url}`);
    if (hold) held.push(answer);
    else answer();
  });
  const port = await listen(server);
  const lean = createLeanFetcher();
  const get = (ch: ReturnType<typeof lean.open>) =>
    new Promise<{ error?: Error; body?: string; sync: boolean; calls: number }>((resolve) => {
      let returned = false;
      let calls = 0;
      ch.get((error, body) => {
        calls++;
        const out = {
          sync: !returned,
          calls,
          ...(error ? { error } : {}),
          ...(body !== undefined ? { body } : {}),
        };
        setTimeout(() => resolve({ ...out, calls }), 30); // later extra calls would show in `calls`
      });
      returned = true;
    });
  try {
    const a = lean.open(`http://127.0.0.1:${port}/a`);
    for (let i = 0; i < 3; i++) {
      const r = await get(a);
      assert.deepEqual(r, { body: "page /a", sync: false, calls: 1 });
    }
    // Cancel in flight: done gets the reason once (not the body the server sends later).
    hold = true;
    const pending = get(a);
    await waitFor("the server to hold the GET", () => held.length === 1, 10_000);
    a.cancel(new Error("timed out after 20 ms"));
    held.shift()?.();
    const cancelled = await pending;
    assert.equal(cancelled.error?.message, "timed out after 20 ms");
    assert.equal(cancelled.body, undefined);
    assert.equal(cancelled.calls, 1);
    // A second channel to the same host:port shares the connection; a stale cancel of the first
    // channel (its GET already settled) must not end the second's GET.
    hold = false;
    const b = lean.open(`http://127.0.0.1:${port}/b`);
    const r = get(b);
    a.cancel(new Error("stale cancel"));
    assert.deepEqual(await r, { body: "page /b", sync: false, calls: 1 });
    assert.throws(() => lean.open("https://127.0.0.1:1/metrics"), /http only/);
  } finally {
    for (const h of held) h();
    await lean.close();
    await closeHttp(server);
  }
});
