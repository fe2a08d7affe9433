// A minimal HTTP/1.1 GET client for scraping metrics at high rates. At 1000 endpoints × 20 scrapes/s a
// general-purpose client (undici) costs ~50 µs of CPU per request, over the whole CPU budget; this one
// keeps one persistent socket per endpoint, writes a pre-built request and parses only what a metrics
// response needs (status, Content-Length or chunked, Connection: close). Plain http only; https URLs
// should use the undici fetcher (createHttpFetcher).
import { connect } from "node:net";
import type { Socket } from "node:net";
import type { HttpFetcher, MetricsCallback, MetricsChannel, MetricsFetcher } from "./fetch-metrics.ts";

export interface LeanFetcherOptions {
  maxBodyBytes?: number;
  /** Sockets of endpoints not scraped for this long are closed (endpoints come and go with pods). */
  idleCloseMs?: number;
}

interface Target {
  host: string;
  port: number;
  request: Buffer;
  key: string;
}

/** What readResponseHead takes from a response head. */
export interface ResponseHead {
  status: number;
  /** -1 when there is no Content-Length header. */
  contentLength: number;
  chunked: boolean;
  /** The connection ends with this response (HTTP/1.0, or a Connection header naming close). */
  close: boolean;
}

interface Pending extends ResponseHead {
  done: MetricsCallback;
  buf: Buffer | undefined;
  headerEnd: number;
  receivedAny: boolean;
  reused: boolean;
  retried: boolean;
  target: Target;
}

const CRLFCRLF = Buffer.from("\r\n\r\n");
/** Every socket reads into this buffer; onData runs synchronously per read, so one is enough. */
const READ_BUFFER = Buffer.allocUnsafe(64 * 1024);
const CHUNKED_END = Buffer.from("0\r\n\r\n");

class Connection {
  socket?: Socket;
  pending?: Pending;
  lastUsedMs = 0;
  /** Closed by the fetcher (idle sweep or close()); a channel holding it must look up a new one. */
  closed = false;
  /** The scraper reuses one signal per endpoint, so the listener stays attached across requests. */
  private signal?: AbortSignal;
  private readonly onAbort = () => {
    const r: unknown = this.signal?.reason;
    this.cancel(r instanceof Error ? r : new Error(String(r)));
  };
  constructor(private readonly maxBody: number) {}

  private watch(signal: AbortSignal): void {
    if (signal === this.signal) return;
    this.signal?.removeEventListener("abort", this.onAbort);
    this.signal = signal;
    signal.addEventListener("abort", this.onAbort, { once: true });
  }

  get(target: Target, signal: AbortSignal): Promise<string> {
    if (signal.aborted) return Promise.reject(signal.reason as Error);
    return new Promise<string>((resolve, reject) => {
      this.watch(signal);
      this.request(target, (e, body) => (e === undefined ? resolve(body!) : reject(e)));
    });
  }

  request(target: Target, done: MetricsCallback): void {
    if (this.pending) {
      queueMicrotask(() => done(new Error("a scrape of this endpoint is already in flight"), undefined));
      return;
    }
    const p: Pending = {
      done,
      buf: undefined,
      headerEnd: -1,
      status: 0,
      contentLength: -1,
      chunked: false,
      close: false,
      receivedAny: false,
      reused: false,
      retried: false,
      target,
    };
    this.pending = p;
    this.send(p);
  }

  /**
   * Ends the request in flight with `reason`, after the caller's current task (as a rejection would).
   * With `only`, just if that request is the one in flight (the connection may serve another channel).
   */
  cancel(reason: Error, only?: MetricsCallback): void {
    const p = this.pending;
    if (!p || (only !== undefined && p.done !== only)) return;
    this.pending = undefined;
    const s = this.socket;
    this.socket = undefined;
    s?.destroy();
    queueMicrotask(() => p.done(reason, undefined));
  }

  private send(p: Pending): void {
    const s = this.socket;
    if (s && !s.destroyed) {
      p.reused = true;
      s.write(p.target.request);
      return;
    }
    p.reused = false;
    // `onread` reads into one shared buffer instead of a fresh Buffer per read pushed through a Readable
    // stream (less allocation and stream machinery per scrape). Bytes are consumed, or copied, before the
    // callback returns.
    const sock: Socket = connect({
      host: p.target.host,
      port: p.target.port,
      noDelay: true,
      onread: {
        buffer: READ_BUFFER,
        callback: (n: number, buf: Uint8Array) => {
          if (this.socket === sock) this.onData(Buffer.from(buf.buffer, buf.byteOffset, n));
          return true;
        },
      },
    });
    this.socket = sock;
    sock.on("error", (e) => this.onClosed(sock, e));
    sock.on("close", () => this.onClosed(sock));
    sock.write(p.target.request);
  }

  private onClosed(sock: Socket, e?: Error): void {
    if (this.socket !== sock) return; // an old socket we already replaced or gave up on
    this.socket = undefined;
    const p = this.pending;
    if (!p) return;
    // Read-until-close body.
    if (!e && p.headerEnd >= 0 && p.contentLength < 0 && !p.chunked)
      return this.finish(p.buf!.subarray(p.headerEnd));
    // A kept-alive socket the server closed while idle: retry once on a fresh connection.
    if (p.reused && !p.receivedAny && !p.retried) {
      p.retried = true;
      sock.destroy();
      this.send(p);
      return;
    }
    this.fail(e ?? new Error("connection closed before the response was complete"), false);
  }

  private onData(chunk: Buffer): void {
    const p = this.pending;
    if (!p) {
      this.socket?.destroy(); // unsolicited bytes: the connection is out of sync
      return;
    }
    p.receivedAny = true;
    // `chunk` lives in the shared read buffer: use it now, or copy it before waiting for more bytes.
    const b = p.buf === undefined ? chunk : Buffer.concat([p.buf, chunk]);
    p.buf = undefined;
    if (b.length > this.maxBody + 16384)
      return this.fail(new Error(`metrics page larger than ${this.maxBody} bytes`), true);
    if (p.headerEnd < 0) {
      const end = b.indexOf(CRLFCRLF);
      if (end < 0) {
        if (b.length > 16384) this.fail(new Error("response header too large"), true);
        else this.keep(p, b, chunk);
        return;
      }
      if (!this.parseHead(p, b, end)) return;
      p.headerEnd = end + 4;
    }
    const bodyLen = b.length - p.headerEnd;
    if (p.contentLength >= 0) {
      if (bodyLen < p.contentLength) return this.keep(p, b, chunk);
      if (bodyLen > p.contentLength) return this.fail(new Error("more bytes than Content-Length"), true);
      this.finish(b.subarray(p.headerEnd));
    } else if (p.chunked) {
      if (
        bodyLen >= 5 &&
        b.indexOf(CHUNKED_END, b.length - 5) === b.length - 5 &&
        (bodyLen === 5 || b[b.length - 6] === 10)
      ) {
        const body = dechunk(b.subarray(p.headerEnd));
        if (body === undefined) return this.fail(new Error("malformed chunked body"), true);
        this.finish(body);
      } else this.keep(p, b, chunk);
    } else this.keep(p, b, chunk); // read until the server closes
  }

  /** Keeps the bytes so far until more arrive, copying them out of the shared read buffer. */
  private keep(p: Pending, b: Buffer, chunk: Buffer): void {
    p.buf = b === chunk ? Buffer.from(chunk) : b;
  }

  /** Returns false (after failing the request) when the head is unusable. */
  private parseHead(p: Pending, b: Buffer, end: number): boolean {
    const error = readResponseHead(b, end, p);
    if (error !== undefined) {
      this.fail(new Error(error), true);
      return false;
    }
    if (p.status !== 200) {
      this.fail(new Error(`HTTP ${p.status}`), true);
      return false;
    }
    if (p.contentLength > this.maxBody) {
      this.fail(new Error(`metrics page too large (${p.contentLength} bytes)`), true);
      return false;
    }
    return true;
  }

  private finish(body: Buffer): void {
    const p = this.pending!;
    this.pending = undefined;
    if (p.close) this.socket?.destroy();
    p.done(undefined, body.toString("utf8"));
  }

  private fail(e: Error, destroy: boolean): void {
    const p = this.pending;
    if (!p) return;
    this.pending = undefined;
    if (destroy) {
      const s = this.socket;
      this.socket = undefined;
      s?.destroy();
    }
    p.done(e, undefined);
  }

  close(): void {
    this.closed = true;
    this.signal?.removeEventListener("abort", this.onAbort);
    this.signal = undefined;
    this.cancel(new Error("fetcher closed"));
    this.socket?.destroy();
    this.socket = undefined;
  }
}

const HTTP_1 = codes("HTTP/1.");
const CONTENT_LENGTH = codes("content-length");
const TRANSFER_ENCODING = codes("transfer-encoding");
const CONNECTION = codes("connection");
const CHUNKED = codes("chunked");
const CLOSE = codes("close");

function codes(s: string): number[] {
  return [...s].map((c) => c.charCodeAt(0));
}

/** ASCII upper case to lower case; other bytes unchanged (as case-insensitive matching of ASCII names). */
function lower(c: number): number {
  return c >= 65 && c <= 90 ? c + 32 : c;
}

/** b[at, at + word.length) is `word` (lower-case ASCII), ignoring ASCII case. */
function wordAt(b: Uint8Array, at: number, word: number[]): boolean {
  for (let k = 0; k < word.length; k++) if (lower(b[at + k]!) !== word[k]) return false;
  return true;
}

/** `word` occurs in b[from, to), ignoring ASCII case. */
function contains(b: Uint8Array, from: number, to: number, word: number[]): boolean {
  for (let i = from; i + word.length <= to; i++) if (wordAt(b, i, word)) return true;
  return false;
}

/** The blanks String.prototype.trim removes, in the Latin-1 range (the head is read as Latin-1). */
function isTrimmed(c: number): boolean {
  return c === 32 || (c >= 9 && c <= 13) || c === 0xa0;
}

/**
 * Reads the response head in b[0, end) (end: where its CRLFCRLF begins) into `out`, straight from the bytes:
 * a scrape answer is read 20,000 times a second at 1000 endpoints, so no string is made for it. Returns an
 * error message, or undefined. Only the status and three headers matter: any Connection line naming close
 * or Transfer-Encoding line naming chunked counts, the first Content-Length wins, and an HTTP/1.0 response
 * always ends its connection. Header names match without regard to ASCII case; lines end at CRLF.
 */
export function readResponseHead(b: Uint8Array, end: number, out: ResponseHead): string | undefined {
  // "HTTP/1.x NNN …": bytes past `end` are body, so the status digits count only if the head holds them.
  if (end < 7) return "not an HTTP/1.x response";
  for (let k = 0; k < 7; k++) if (b[k] !== HTTP_1[k]) return "not an HTTP/1.x response";
  const d0 = (b[9] ?? 0) - 48;
  const d1 = (b[10] ?? 0) - 48;
  const d2 = (b[11] ?? 0) - 48;
  out.status =
    end >= 12 && d0 >= 0 && d0 <= 9 && d1 >= 0 && d1 <= 9 && d2 >= 0 && d2 <= 9
      ? d0 * 100 + d1 * 10 + d2
      : Number(Buffer.from(b.buffer, b.byteOffset, end).toString("latin1", 9, 12)); // for the error text
  out.close = end > 7 && b[7] === 48;
  out.contentLength = -1;
  out.chunked = false;
  // Header lines: each starts after a CRLF and runs to the next CRLF (or the end of the head).
  let lineStart = -1;
  for (let i = 0; i + 1 < end; i++)
    if (b[i] === 13 && b[i + 1] === 10) {
      lineStart = i + 2;
      break;
    }
  while (lineStart >= 0) {
    let lineEnd = end;
    let colon = -1;
    for (let i = lineStart; i < end; i++) {
      const c = b[i];
      if (c === 58 && colon < 0) colon = i;
      else if (c === 13 && i + 1 < end && b[i + 1] === 10) {
        lineEnd = i;
        break;
      }
    }
    const nameLength = colon - lineStart;
    if (colon > lineStart) {
      if (nameLength === 14 && wordAt(b, lineStart, CONTENT_LENGTH)) {
        if (out.contentLength < 0) {
          let from = colon + 1;
          let to = lineEnd;
          while (from < to && isTrimmed(b[from]!)) from++;
          while (to > from && isTrimmed(b[to - 1]!)) to--;
          let n = from < to ? 0 : NaN;
          for (let i = from; i < to && !Number.isNaN(n); i++) {
            const d = b[i]! - 48;
            n = d >= 0 && d <= 9 ? n * 10 + d : NaN;
          }
          if (!Number.isSafeInteger(n)) return "bad Content-Length";
          out.contentLength = n;
        }
      } else if (nameLength === 17 && wordAt(b, lineStart, TRANSFER_ENCODING))
        out.chunked ||= contains(b, colon + 1, lineEnd, CHUNKED);
      else if (nameLength === 10 && wordAt(b, lineStart, CONNECTION))
        out.close ||= contains(b, colon + 1, lineEnd, CLOSE);
    }
    lineStart = lineEnd < end ? lineEnd + 2 : -1;
  }
  return undefined;
}

/** Decodes a complete chunked body; undefined if malformed. */
function dechunk(b: Buffer): Buffer | undefined {
  const parts: Buffer[] = [];
  let i = 0;
  for (;;) {
    const eol = b.indexOf("\r\n", i, "latin1");
    if (eol < 0) return undefined;
    const size = parseInt(b.toString("latin1", i, eol).split(";")[0]!, 16);
    if (!Number.isFinite(size) || size < 0) return undefined;
    if (size === 0) return parts.length === 1 ? parts[0] : Buffer.concat(parts);
    const start = eol + 2;
    if (start + size + 2 > b.length) return undefined;
    parts.push(b.subarray(start, start + size));
    i = start + size + 2;
  }
}

/** The bytes of a scrape request for `u` (kept per URL and written as is on every scrape). */
export function metricsRequest(u: URL): Buffer {
  return Buffer.from(
    `GET ${u.pathname}${u.search} HTTP/1.1\r\nHost: ${u.host}\r\nAccept: text/plain;version=0.0.4\r\nUser-Agent: epp-sidecar\r\n\r\n`,
    "latin1",
  );
}

export function createLeanFetcher(opts: LeanFetcherOptions = {}): Required<HttpFetcher> {
  const maxBody = opts.maxBodyBytes ?? 4 << 20;
  const targets = new Map<string, Target>();
  const conns = new Map<string, Connection>();

  const target = (url: string): Target => {
    let t = targets.get(url);
    if (t === undefined) {
      const u = new URL(url);
      if (u.protocol !== "http:") throw new Error(`lean fetcher supports http only, got ${u.protocol}`);
      const host = u.hostname.startsWith("[") ? u.hostname.slice(1, -1) : u.hostname;
      const port = Number(u.port || 80);
      t = { host, port, request: metricsRequest(u), key: `${host}|${port}` };
      targets.set(url, t);
    }
    return t;
  };

  const connection = (t: Target): Connection => {
    let c = conns.get(t.key);
    if (c === undefined) conns.set(t.key, (c = new Connection(maxBody)));
    c.lastUsedMs = lastTick;
    return c;
  };

  const fetch: MetricsFetcher = (url, signal) => {
    let t: Target;
    try {
      t = target(url);
    } catch (e) {
      return Promise.reject(e as Error);
    }
    return connection(t).get(t, signal);
  };

  // The scrape loop's path: the URL is resolved once; each GET is a write and a callback. The connection
  // is looked up per GET (not kept) because the idle sweep may have closed and replaced it.
  const open = (url: string): MetricsChannel => {
    const t = target(url);
    let current: Connection | undefined;
    let currentDone: MetricsCallback | undefined;
    return {
      get(done) {
        // The sweep closes and forgets idle connections; a closed one is replaced through the map.
        if (current === undefined || current.closed) current = connection(t);
        else current.lastUsedMs = lastTick;
        currentDone = done;
        current.request(t, done);
      },
      cancel(reason) {
        current?.cancel(reason, currentDone);
      },
    };
  };

  // Coarse idle sweep: a timestamp per tick instead of Date.now() per request.
  const idleCloseMs = opts.idleCloseMs ?? 60_000;
  let lastTick = Date.now();
  const sweep = setInterval(
    () => {
      lastTick = Date.now();
      for (const [key, c] of conns) {
        if (c.pending === undefined && lastTick - c.lastUsedMs > idleCloseMs) {
          c.close();
          conns.delete(key);
        }
      }
      if (targets.size > 4 * conns.size + 1024) targets.clear(); // URL cache of long-gone endpoints
    },
    Math.min(idleCloseMs, 10_000),
  );
  sweep.unref();

  return {
    fetch,
    open,
    close: async () => {
      clearInterval(sweep);
      for (const c of conns.values()) c.close();
      conns.clear();
      targets.clear();
    },
  };
}
