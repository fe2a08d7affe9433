// A model-server stand-in on a raw TCP socket that checks every request the gateway sends it with the strict
// parser (http-wire.ts): each head must be valid HTTP (token names, legal value bytes, no CR/LF/NUL smuggled
// through). It answers keep-alive; a request header `x-fuzz-reply` picks a misbehaving reply instead (obs-text
// response headers, chunked, close-delimited, dying mid-body or before answering, 204).
import net from "node:net";
import type { AddressInfo } from "node:net";
import { WireError, WireParser, type WireMessage } from "./http-wire.ts";

export interface UpstreamRequestView {
  upstream: string;
  method: string;
  target: string;
  headers: Array<[string, string]>;
  bodyBytes: number;
}

export interface RecordingUpstream {
  name: string;
  port: number;
  address: string; // "127.0.0.1:PORT"
  /** Requests parsed so far. */
  count(): number;
  /** Protocol violations seen in requests (the head that broke the parser, or what `check` returned). */
  violations: string[];
  close(): Promise<void>;
}

export type ReplyKind = "ok" | "obs" | "chunked" | "close" | "die-mid-body" | "die-before-reply" | "204";

const JSON_BODY = (name: string) => `{"upstream":"${name}","choices":[{"text":"ok"}]}`;

function reply(kind: ReplyKind, name: string, socket: net.Socket, head: boolean): boolean {
  const body = JSON_BODY(name);
  const base = `content-type: application/json\r\nx-upstream: ${name}\r\n`;
  const payload = head ? "" : body;
  switch (kind) {
    case "die-before-reply":
      socket.destroy();
      return false;
    case "die-mid-body":
      socket.write(`HTTP/1.1 200 OK\r\n${base}content-length: ${body.length + 100}\r\n\r\n${body}`);
      socket.destroy();
      return false;
    case "obs":
      // UTF-8 and raw 0xFF bytes in response header values (obs-text: legal, and Node's parser accepts it).
      socket.write(
        Buffer.concat([
          Buffer.from(`HTTP/1.1 200 OK\r\n${base}x-obs: caf`, "latin1"),
          Buffer.from("é 模 🚀", "utf8"),
          Buffer.from(`\r\nx-raw: \xff\xfe\r\ncontent-length: ${body.length}\r\n\r\n${payload}`, "latin1"),
        ]),
      );
      return true;
    case "chunked":
      socket.write(
        `HTTP/1.1 200 OK\r\n${base}transfer-encoding: chunked\r\n\r\n` +
          (head
            ? ""
            : `5\r\n${body.slice(0, 5)}\r\n${(body.length - 5).toString(16)}\r\n${body.slice(5)}\r\n0\r\n\r\n`),
      );
      return true;
    case "close":
      socket.end(`HTTP/1.1 200 OK\r\n${base}connection: close\r\n\r\n${payload}`);
      return false;
    case "204":
      socket.write(`HTTP/1.1 204 No Content\r\nx-upstream: ${name}\r\n\r\n`);
      return true;
    default:
      socket.write(`HTTP/1.1 200 OK\r\n${base}content-length: ${body.length}\r\n\r\n${payload}`);
      return true;
  }
}

/**
 * `check` sees every parsed request and returns a violation text (or undefined): the fuzzer's invariants about
 * what may reach a model server.
 */
export async function startRecordingUpstream(
  name: string,
  check: (r: UpstreamRequestView) => string | undefined = () => undefined,
): Promise<RecordingUpstream> {
  const violations: string[] = [];
  const sockets = new Set<net.Socket>();
  let count = 0;
  let address = "";
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    socket.on("error", () => {});
    let open = true;
    const parser = new WireParser("request", (m: WireMessage) => {
      if (!open) return;
      count++;
      const view: UpstreamRequestView = {
        upstream: address,
        method: m.method!,
        target: m.target!,
        headers: m.headers,
        bodyBytes: m.body.length,
      };
      const v = check(view);
      if (v) violations.push(`${name}: ${v}`);
      const kind = (m.headers.find(([k]) => k === "x-fuzz-reply")?.[1] ?? "ok") as ReplyKind;
      open = reply(kind, name, socket, m.method === "HEAD");
    });
    socket.on("data", (chunk: Buffer) => {
      if (!open) return;
      try {
        parser.push(chunk);
      } catch (err) {
        violations.push(`${name}: ${err instanceof WireError ? err.message : String(err)}`);
        open = false;
        socket.destroy();
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;
  address = `127.0.0.1:${port}`;
  return {
    name,
    port,
    address,
    count: () => count,
    violations,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
