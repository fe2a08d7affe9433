// Plain HTTP upstreams for gateway tests: each answers with its own name and records what it received.
import http from "node:http";
import net from "node:net";
import type { AddressInfo } from "node:net";

export interface SeenRequest {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  body: string;
  /** Request trailers (chunked bodies only). */
  trailers: NodeJS.Dict<string>;
}

export interface TestUpstream {
  name: string;
  port: number;
  address: string; // "127.0.0.1:PORT"
  seen: SeenRequest[];
  close(): Promise<void>;
}

export async function startUpstream(name: string): Promise<TestUpstream> {
  const seen: SeenRequest[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      seen.push({
        method: req.method ?? "",
        url: req.url ?? "",
        headers: req.headers,
        body: Buffer.concat(chunks).toString(),
        trailers: req.trailers,
      });
      res.writeHead(200, { "content-type": "application/json", "x-upstream": name });
      res.end(JSON.stringify({ upstream: name }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    name,
    port,
    address: `127.0.0.1:${port}`,
    seen,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** A loopback port with nothing listening (bound, then closed), so connecting to it is refused. */
export async function refusedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

export interface RawUpstream {
  port: number;
  address: string; // "127.0.0.1:PORT"
  /** Bytes received on each accepted connection so far. */
  received: string[];
  close(): Promise<void>;
}

/**
 * A TCP server that misbehaves on purpose: `onRequest` gets each connection once the first request bytes arrived
 * (e.g. to destroy it before answering, or to send headers and part of a body and then die).
 */
export async function startRawUpstream(
  onRequest: (socket: net.Socket, head: string) => void,
): Promise<RawUpstream> {
  const received: string[] = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    socket.on("error", () => {});
    const i = received.push("") - 1;
    let answered = false;
    socket.on("data", (chunk: Buffer) => {
      received[i] += chunk.toString("latin1");
      if (!answered && received[i]!.includes("\r\n\r\n")) {
        answered = true;
        onRequest(socket, received[i]!);
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    address: `127.0.0.1:${port}`,
    received,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
