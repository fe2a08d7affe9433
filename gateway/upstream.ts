// What an upstream attempt (Envoy's UpstreamRequest) offers the router and needs from it, over HTTP/1.1
// (router.ts) or HTTP/2 (upstream-h2.ts): kept apart so neither attempt module imports the router.
import type { GatewayStats } from "./stats.ts";
import { isConnectFailure, type ResetReason } from "./retry.ts";
import type { HeaderList } from "../host/index.ts";

/** The router's settings an attempt reads. */
export interface AttemptOptions {
  connectTimeoutMs: number;
  upstreamTimeoutMs: number;
  stats: GatewayStats;
  log?: (obj: object, msg: string) => void;
}

/** The parts of an upstream response the router reads: http.IncomingMessage, or the HTTP/2 adapter. */
export interface UpstreamResponse {
  readonly statusCode?: number;
  readonly rawHeaders: string[];
  /** The whole body arrived. */
  readonly complete: boolean;
  on(event: "data", listener: (chunk: Buffer) => void): unknown;
  on(event: "end" | "close" | "error", listener: () => void): unknown;
  pause(): unknown;
  resume(): unknown;
}

export interface AttemptEvents {
  onResponse(res: UpstreamResponse): void;
  onFailure(reason: ResetReason, transportFailure: string, requestStarted: boolean): void;
  onTimeout(): void;
}

/** One attempt on the wire (Envoy's UpstreamRequest), over HTTP/1.1 or HTTP/2. */
export interface Upstream {
  /** False when the upstream's write buffer is full: the caller stops reading until `onDrain`. */
  write(chunk: Uint8Array): boolean;
  onDrain(cb: () => void): void;
  end(trailers?: HeaderList): void;
  complete(): void;
  destroy(): void;
}

/** Where an attempt writes the request body: the HTTP/1.1 ClientRequest or the HTTP/2 stream. */
export interface BodySink {
  readonly destroyed: boolean;
  readonly writableEnded: boolean;
  write(chunk: Uint8Array): boolean;
  once(event: "drain", listener: () => void): unknown;
}

/** What every attempt does the same way, whatever the protocol: settling once, body flow control, teardown. */
export abstract class AttemptBase<O extends AttemptOptions> implements Upstream {
  protected connected = false;
  protected settled = false;
  protected destroyed = false;
  protected completed = false;
  protected connectTimer: NodeJS.Timeout | undefined;

  constructor(
    protected readonly o: O,
    protected readonly ev: AttemptEvents,
  ) {}

  /** The request body's destination; undefined when the attempt never went out. */
  protected abstract get sink(): BodySink | undefined;

  /** Stops the stream of an attempt given up before its response completed. */
  protected abstract abandon(): void;

  abstract end(trailers?: HeaderList): void;

  protected fail(reason: ResetReason, transportFailure: string): void {
    clearTimeout(this.connectTimer);
    if (this.settled) return;
    this.settled = true;
    if (isConnectFailure(reason)) this.o.stats.inc("upstream_cx_connect_fail");
    // Envoy's upstream_request_started_: a request byte was sent (first_upstream_tx_byte_sent_). The head goes out
    // as soon as the connection (or stream) is up, so "connected" is the closest observable.
    this.ev.onFailure(reason, transportFailure, this.connected);
  }

  /** False when the upstream's write buffer is full: the caller stops reading until `onDrain`. */
  write(chunk: Uint8Array): boolean {
    const s = this.sink;
    if (s && !s.destroyed && !s.writableEnded) return s.write(chunk);
    return true;
  }

  onDrain(cb: () => void): void {
    const s = this.sink;
    if (s && !s.destroyed) s.once("drain", cb);
    else cb();
  }

  /** The response ended: later stream events are not ours, and the connection is reused. */
  complete(): void {
    this.destroyed = true;
    this.completed = true;
  }

  destroy(): void {
    clearTimeout(this.connectTimer);
    this.settled = true;
    this.destroyed = true;
    if (!this.completed) this.abandon();
  }
}
