// The publisher toward a target that is down: it probes with bare TCP connects (no snapshot upload per
// attempt) and pushes as soon as the target listens again.
import { test } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import { Publisher, tcpConnects, type PushResult } from "../../sidecar/publisher/publisher.ts";
import { freeConsecutivePorts } from "../../scripts/local-stack/ports.ts";
import { waitFor } from "../support/deadline.ts";

function sink(port: number, onPush: () => void): Promise<http.Server> {
  const server = http.createServer((req, res) => {
    req.resume();
    req.on("end", () => {
      onPush();
      res.writeHead(204, { "x-epp-snapshot-generation": "1" }).end();
    });
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, "127.0.0.1", () => resolve(server));
  });
}

function close(server: http.Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}

test("tcpConnects tells a listening port from a closed one", async () => {
  const port = await freeConsecutivePorts(1);
  assert.equal(await tcpConnects(`http://127.0.0.1:${port}`, 1000), false);
  const s = await sink(port, () => {});
  try {
    assert.equal(await tcpConnects(`http://127.0.0.1:${port}`, 1000), true);
  } finally {
    await close(s);
  }
});

test("an unreachable target is probed, not pushed to, and gets the newest snapshot once it listens", async () => {
  const port = await freeConsecutivePorts(1);
  const results: PushResult[] = [];
  const publisher = new Publisher({
    controlPath: "/epp/v1/snapshot",
    token: "t",
    onResult: (r) => results.push(r),
  });
  let server: http.Server | undefined;
  try {
    publisher.setTargets([{ id: "t", url: `http://127.0.0.1:${port}` }]);
    publisher.publish("ns/pool", new Uint8Array([1]), 1n);
    await waitFor("the first failed push", () => results.length > 0, 5000);
    assert.equal(results[0]!.outcome, "error");
    assert.equal(results[0]!.unreachable, true);
    assert.equal(publisher.status()[0]!.unreachable, true);
    // A second of newer snapshots toward the dead target: probes only, so at most the push that fails
    // after the immediate probe's race, never one per snapshot or per 100 ms.
    for (let g = 2n; g <= 11n; g++) {
      publisher.publish("ns/pool", new Uint8Array([Number(g)]), g);
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.ok(results.length <= 2, `push attempts while down: ${results.length}`);

    let pushes = 0;
    server = await sink(port, () => pushes++);
    const listening = performance.now();
    await waitFor("a push after the target listens", () => pushes > 0, 10_000);
    const delay = performance.now() - listening;
    await waitFor("its result", () => results.at(-1)?.outcome === "ok", 5000);
    // The newest snapshot went, not the one that failed first.
    assert.equal(results.at(-1)!.generation, 11n);
    assert.equal(publisher.status()[0]!.unreachable, undefined);
    console.log(`first push ${delay.toFixed(1)} ms after the target listened`);
  } finally {
    await publisher.close();
    if (server) await close(server);
  }
});

test("a target that answers with an error still backs off exponentially (no probe)", async () => {
  const results: PushResult[] = [];
  const server = http.createServer((req, res) => {
    req.resume();
    req.on("end", () => res.writeHead(503).end("busy"));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  const publisher = new Publisher({
    controlPath: "/epp/v1/snapshot",
    token: "t",
    onResult: (r) => results.push(r),
  });
  try {
    publisher.setTargets([{ id: "t", url: `http://127.0.0.1:${port}` }]);
    publisher.publish("ns/pool", new Uint8Array([1]), 1n);
    await new Promise((r) => setTimeout(r, 1000));
    // 100, 200, 400 ms (±20 %) between attempts: about four in a second, far fewer than ten.
    assert.ok(results.length >= 2 && results.length <= 5, `attempts: ${results.length}`);
    assert.ok(results.every((r) => r.status === 503 && r.unreachable === undefined));
  } finally {
    await publisher.close();
    await close(server);
  }
});
