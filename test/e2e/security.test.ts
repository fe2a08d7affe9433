// Issue 20's findings over HTTP against real processes: the gateway runs as `npm start` runs it (a child process on
// the override_host bootstrap with npm start's plugin overrides, build/filter.wasm), in front of recording model
// servers that check every request head strictly.
//  (1) model names that used to kill the gateway (Node threw ERR_INVALID_CHAR on x-gateway-model-name): the process
//      stays up; control characters get the filter's 400, other names route with an RFC 8187 ext-value.
//  (4) the control path on the data listener never replaces the routing table, even with the token; two
//      authorization headers on the control listener get 401.
import { test } from "node:test";
import assert from "node:assert/strict";
import net from "node:net";
import { snapshotFor, startGatewayProcess, type GatewayProcess } from "../support/gateway-process.ts";
import {
  startRecordingUpstream,
  type RecordingUpstream,
  type UpstreamRequestView,
} from "../support/recording-upstream.ts";
import { header, WireParser, type WireMessage } from "../support/http-wire.ts";

const MODEL_HEADER = "x-gateway-model-name";

async function withStack(
  body: (s: { gw: GatewayProcess; ups: RecordingUpstream[]; seen: UpstreamRequestView[] }) => Promise<void>,
): Promise<void> {
  const seen: UpstreamRequestView[] = [];
  const ups: RecordingUpstream[] = [];
  let gw: GatewayProcess | undefined;
  try {
    for (let i = 0; i < 2; i++) {
      ups.push(
        await startRecordingUpstream(`pod-${i}`, (r) => {
          seen.push(r);
          return undefined;
        }),
      );
    }
    gw = await startGatewayProcess({ endpoints: ups.map((u) => u.address) });
    const pushed = await gw.push(
      snapshotFor(
        1n,
        ups.map((u) => u.address),
      ),
    );
    assert.equal(pushed.status, 204, pushed.body);
    await body({ gw, ups, seen });
    for (const u of ups) assert.deepEqual(u.violations, [], "every upstream request head was valid HTTP");
    assert.ok(gw.alive(), "the gateway process is still running");
  } finally {
    await gw?.stop();
    for (const u of ups) await u.close();
  }
}

/** One request over a fresh raw socket; the response is parsed strictly. */
function rawRequest(port: number, bytes: string | Buffer, method = "POST"): Promise<WireMessage> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, "127.0.0.1");
    const parser = new WireParser(
      "response",
      (m) => {
        if (m.status! >= 200) {
          resolve(m);
          socket.destroy();
        }
      },
      () => method,
    );
    socket.setTimeout(10_000, () => socket.destroy(new Error("timeout")));
    socket.on("data", (c: Buffer) => {
      try {
        parser.push(c);
      } catch (err) {
        reject(err as Error);
        socket.destroy();
      }
    });
    socket.on("error", reject);
    socket.on("close", () => reject(new Error("closed without a response")));
    socket.write(bytes);
  });
}

function completion(port: number, bodyJson: string, extra = ""): Promise<WireMessage> {
  const body = Buffer.from(bodyJson, "utf8");
  return rawRequest(
    port,
    Buffer.concat([
      Buffer.from(
        `POST /v1/completions HTTP/1.1\r\nhost: gw\r\ncontent-type: application/json\r\n${extra}` +
          `content-length: ${body.length}\r\n\r\n`,
        "latin1",
      ),
      body,
    ]),
  );
}

// The list, as the JSON a client sends (\u escapes where the character is a control or a lone surrogate).
const NAMES: Array<{ label: string; json: string; expect: "400" | string }> = [
  { label: "模", json: '"模"', expect: "UTF-8''%E6%A8%A1" },
  { label: "🚀", json: '"🚀"', expect: "UTF-8''%F0%9F%9A%80" },
  { label: "é", json: '"é"', expect: "UTF-8''%C3%A9" },
  { label: "\\u0000", json: '"a\\u0000b"', expect: "400" },
  { label: "\\n", json: '"a\\nb"', expect: "400" },
  { label: "\\r\\n", json: '"a\\r\\nx-injected: 1"', expect: "400" },
  { label: "\\u007f", json: '"a\\u007fb"', expect: "400" },
  { label: "\\t", json: '"a\\tb"', expect: "400" },
];

test("finding 1: hostile model names never kill the gateway; controls get 400, the rest an RFC 8187 value", async () => {
  await withStack(async ({ gw, seen }) => {
    for (const n of NAMES) {
      const before = seen.length;
      const res = await completion(gw.dataPort, `{"model":${n.json},"prompt":"hi"}`);
      assert.ok(gw.alive(), `gateway alive after ${n.label}`);
      if (n.expect === "400") {
        assert.equal(res.status, 400, `${n.label}: ${res.body.toString()}`);
        assert.match(res.body.toString(), /invalid_model|control/i, `${n.label}: the 400 says why`);
        assert.equal(seen.length, before, `${n.label}: nothing reached a model server`);
      } else {
        assert.equal(res.status, 200, `${n.label}: ${res.body.toString()}`);
        const up = seen.at(-1)!;
        assert.deepEqual(
          up.headers.filter(([k]) => k === MODEL_HEADER).map(([, v]) => v),
          [n.expect],
          `${n.label}: x-gateway-model-name as an ext-value`,
        );
      }
    }
    // A lone surrogate: not a character at all. Whatever the filter decides, the process lives and nothing
    // invalid reaches the upstream (the upstream's strict parser would have recorded a violation).
    const lone = await completion(gw.dataPort, '{"model":"\\ud800","prompt":"hi"}');
    assert.ok([200, 400].includes(lone.status!), `lone surrogate: ${lone.status} ${lone.body.toString()}`);
    if (lone.status === 200) {
      const value = seen.at(-1)!.headers.find(([k]) => k === MODEL_HEADER)?.[1] ?? "";
      assert.match(value, /^UTF-8''(?:%[0-9A-F]{2}|[A-Za-z0-9!#$&+.^_`|~-])+$/, "an RFC 8187 ext-value");
    }
    const ok = await completion(gw.dataPort, '{"model":"plain","prompt":"hi"}');
    assert.equal(ok.status, 200, "an ordinary request still routes");
  });
});

test("finding 4: the control path on the data listener never replaces the routing table, even with the token", async () => {
  await withStack(async ({ gw, ups, seen }) => {
    const trap = await startRecordingUpstream("trap");
    try {
      // The poisoned table sends everything to `trap`, which is no endpoint of the pool.
      const poisoned = snapshotFor(1n << 40n, [trap.address]);
      const res = await gw.push(poisoned, gw.dataPort);
      assert.notEqual(res.status, 204, `the data listener stored a snapshot: ${res.body}`);
      for (let i = 0; i < 4; i++) {
        const r = await completion(gw.dataPort, `{"model":"m","prompt":"after ${i}"}`);
        assert.equal(r.status, 200);
        assert.ok(
          ups.some((u) => u.name === header(r, "x-upstream")[0]),
          "served by a pool pod",
        );
      }
      assert.equal(trap.count(), 0, "nothing was routed by the pushed table");
      // The control listener still takes a newer table from the token holder (the path works where it belongs).
      const good = await gw.push(snapshotFor(2n, [ups[1]!.address, ups[0]!.address]));
      assert.equal(good.status, 204, good.body);
      const r = await completion(gw.dataPort, '{"model":"m","prompt":"after the push"}');
      assert.equal(header(r, "x-upstream")[0], "pod-1");
      assert.ok(seen.length > 0);
    } finally {
      await trap.close();
    }
  });
});

test("finding 4: two authorization headers on the control listener are refused with 401", async () => {
  await withStack(async ({ gw }) => {
    const body = Buffer.alloc(16);
    const head =
      `POST ${gw.controlPath} HTTP/1.1\r\nhost: gw\r\ncontent-type: application/octet-stream\r\n` +
      `authorization: Bearer ${gw.token}\r\nauthorization: Bearer ${gw.token}\r\n` +
      `content-length: ${body.length}\r\n\r\n`;
    const res = await rawRequest(gw.controlPort, Buffer.concat([Buffer.from(head), body]));
    assert.equal(res.status, 401, res.body.toString());
    // One header with the same token gets past authentication (the body is no snapshot: 400, not 401).
    const single = head.replace(`authorization: Bearer ${gw.token}\r\n`, "");
    const res1 = await rawRequest(gw.controlPort, Buffer.concat([Buffer.from(single), body]));
    assert.equal(res1.status, 400, res1.body.toString());
  });
});
