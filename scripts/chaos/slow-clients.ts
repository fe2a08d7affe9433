// Slow clients against the gateway's data listener, over raw sockets:
// - slow-headers: a request head that never ends (one header line every 500 ms);
// - slow-body: a complete 8 KB request whose body arrives in slices over the hold time (it must be served);
// - abandoned-upload: the first 64 KB of a 1 MB completion body, then silence, then the client goes away.
// Each reports whether the gateway answered or closed first, so their cost to other requests can be read
// next to the steady traffic's numbers.
import net from "node:net";
import type { SlowClientKind } from "./schedule.ts";

export interface SlowClientResult {
  variant: SlowClientKind;
  clients: number;
  holdMs: number;
  /** Responses by status line ("HTTP/1.1 200", "HTTP/1.1 408", …). */
  responses: Record<string, number>;
  /** Connections the gateway closed before the client gave up. */
  closedByGateway: number;
  /** Connections refused or reset before they were established (the gateway was down). */
  refused: number;
  errors: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function head(contentLength: number): string {
  return (
    "POST /v1/completions HTTP/1.1\r\nhost: chaos\r\ncontent-type: application/json\r\n" +
    `content-length: ${contentLength}\r\n\r\n`
  );
}

/** A completion request body of exactly `bytes` bytes. */
function bodyOf(bytes: number, model: string): Buffer {
  const shell = JSON.stringify({ model, prompt: "", max_tokens: 1 });
  return Buffer.from(
    JSON.stringify({ model, prompt: "s".repeat(Math.max(0, bytes - shell.length)), max_tokens: 1 }),
  );
}

async function one(
  port: number,
  variant: SlowClientKind,
  holdMs: number,
  model: string,
): Promise<{ status?: string; closedByGateway: boolean; error: boolean; refused: boolean }> {
  const socket = net.connect(port, "127.0.0.1");
  let connected = false;
  socket.once("connect", () => (connected = true));
  let data = "";
  let closed = false;
  let error = false;
  socket.on("data", (d: Buffer) => (data += d.toString("latin1")));
  socket.on("error", () => (error = true));
  const closedP = new Promise<void>((r) =>
    socket.on("close", () => {
      closed = true;
      r();
    }),
  );
  const write = (s: string | Buffer) => {
    if (!closed && !socket.destroyed) socket.write(s);
  };
  const until = Date.now() + holdMs;
  if (variant === "slow-headers") {
    write("POST /v1/completions HTTP/1.1\r\nhost: chaos\r\n");
    for (let i = 0; Date.now() < until && !closed; i++) {
      write(`x-slow-${i}: ${i}\r\n`);
      await sleep(500);
    }
  } else if (variant === "slow-body") {
    const body = bodyOf(8 * 1024, model);
    write(head(body.length));
    const slices = 20;
    for (let i = 0; i < slices && !closed; i++) {
      write(
        body.subarray(Math.floor((i * body.length) / slices), Math.floor(((i + 1) * body.length) / slices)),
      );
      await sleep(holdMs / slices);
    }
    await Promise.race([closedP, waitForResponse(() => data, 30_000)]);
  } else {
    // A well-formed start (the model, then a long prompt), so the filter routes it and the upload reaches a pod.
    write(head(1_000_000));
    write(`{"model":${JSON.stringify(model)},"prompt":"`);
    write(Buffer.alloc(64 * 1024, 0x61));
    await Promise.race([closedP, sleep(holdMs)]);
  }
  const closedByGateway = closed;
  socket.destroy();
  const status = /^HTTP\/1\.1 \d{3}/.exec(data)?.[0];
  return {
    status,
    closedByGateway: closedByGateway && connected,
    error: error && !status,
    refused: !connected,
  };
}

async function waitForResponse(data: () => string, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end && !/^HTTP\/1\.1 \d{3}[^]*?\r\n\r\n/.test(data())) await sleep(20);
}

export async function runSlowClients(
  port: number,
  variant: SlowClientKind,
  clients: number,
  holdMs: number,
  model: string,
): Promise<SlowClientResult> {
  const results = await Promise.all(Array.from({ length: clients }, () => one(port, variant, holdMs, model)));
  const responses: Record<string, number> = {};
  for (const r of results) if (r.status) responses[r.status] = (responses[r.status] ?? 0) + 1;
  return {
    variant,
    clients,
    holdMs,
    responses,
    closedByGateway: results.filter((r) => r.closedByGateway).length,
    errors: results.filter((r) => r.error && !r.refused).length,
    refused: results.filter((r) => r.refused).length,
  };
}
