// Envoy's filter-manager semantics for one wasm HTTP filter on one stream
// (envoy-proxy-wasm.md §1 "Call order" 3, §2 "Map availability", "Bodies", "Local response", "Failure").
import type { StreamSide, WasmVm } from "./vm.ts";
import type { PluginRoot } from "./root.ts";
import { utf8Encoder } from "./abi/memory.ts";
import {
  type HeaderList,
  type HttpStream,
  type NewStreamOptions,
  type StreamCallbacks,
  BufferType,
  MapType,
  WasmResult,
} from "./types.ts";

const R = WasmResult;
const EMPTY = new Uint8Array(0);
const DEFAULT_BUFFER_LIMIT = 1 << 20;

/** One direction (decode = request, encode = response) of the filter manager for this filter. */
interface Direction {
  headers: HeaderList | undefined;
  /** The header map is visible to the plugin (set in *Headers, released on Continue or continue_stream). */
  headersAvailable: boolean;
  /** Trailers are being delivered (on_*_trailers) and are held until the plugin continues. */
  trailersHeld: boolean;
  headersHeld: boolean;
  headersEndStream: boolean;
  /** StopAllIteration*: data is buffered without calling the plugin until continue_stream. */
  stopAll: boolean;
  /** The current stop buffers against the limit (…AndBuffer); watermark stops only apply flow control. */
  limitApplies: boolean;
  /** The plugin returned a Stop status from a body callback: data waits until Continue / continue_stream. */
  bodyStopped: boolean;
  buffer: Uint8Array;
  /** The downstream/upstream side has delivered end_of_stream. */
  ended: boolean;
  /** end_of_stream was forwarded to the next filter (or ContinueAndEndStream ended it). */
  endForwarded: boolean;
  trailers: HeaderList | undefined;
  inEosDataCallback: boolean;
  /**
   * The plugin's view of the body starts here. After StopIterationAndWatermark (or NoBuffer) Envoy's
   * wasm context stops buffering for the plugin: the next on_*_body gets only the new chunk's size and
   * get_buffer_bytes reads only that chunk, while the filter manager keeps the earlier bytes (Envoy
   * source/extensions/common/wasm/context.cc Context::decodeData: buffering_request_body_ is set only
   * for StopIterationAndBuffer; getBuffer otherwise serves request_body_buffer_ = the chunk).
   */
  viewFrom: number;
  /** The last body callback returned StopIterationAndWatermark: the next one sees only its chunk. */
  chunkOnly: boolean;
}

function newDirection(): Direction {
  return {
    headers: undefined,
    headersAvailable: false,
    trailersHeld: false,
    headersHeld: false,
    headersEndStream: false,
    stopAll: false,
    limitApplies: false,
    bodyStopped: false,
    buffer: EMPTY,
    ended: false,
    endForwarded: false,
    trailers: undefined,
    inEosDataCallback: false,
    viewFrom: 0,
    chunkOnly: false,
  };
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  if (a.length === 0) return b;
  if (b.length === 0) return a;
  const out = new Uint8Array(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
}

function int64(v: number): Uint8Array {
  const out = new Uint8Array(8);
  new DataView(out.buffer).setBigInt64(0, BigInt(v), true);
  return out;
}

export class WasmHttpStream implements HttpStream, StreamSide {
  contextId = 0;
  /** Times the plugin modified request headers or called clear_route_cache (Envoy clears the route cache). */
  routeCacheClears = 0;
  readonly filterState = new Map<string, Uint8Array>();
  /** The host of the router's current (last) attempt; Envoy serves `upstream.*` from it. */
  private upstreamHost: { address: string; port: number } | undefined;
  private readonly req = newDirection();
  private readonly resp = newDirection();
  private localReplied = false;
  private localReplyPending = false;
  private responseStarted = false;
  private logPhase = false;
  private destroyed = false;
  private reset = false;
  private responseCode = 0;
  /** StreamInfo legacyResponseFlags() and responseCodeDetails(), as the router or a local reply set them. */
  private responseFlags = 0;
  private responseDetails: string | undefined;
  private readonly limit: number;

  constructor(
    private readonly vm: WasmVm,
    readonly root: PluginRoot,
    private readonly cb: StreamCallbacks,
    private readonly opts: NewStreamOptions,
  ) {
    this.limit = root.cfg.bufferLimitBytes ?? DEFAULT_BUFFER_LIMIT;
  }

  get workerIndex(): number {
    return this.vm.workerIndex;
  }

  private get finished(): boolean {
    return this.localReplied || this.reset || this.destroyed;
  }

  // --- HttpStream (driven by the data plane) ---

  decodeHeaders(headers: HeaderList, endOfStream: boolean): void {
    this.vm.host(() => {
      if (this.finished) return;
      const d = this.req;
      d.headers = headers.map(([k, v]) => [k.toLowerCase(), v] as [string, string]);
      d.ended = endOfStream;
      d.headersEndStream = endOfStream;
      d.headersHeld = true;
      if (this.opts.bypass) return this.resume(d, true);
      if (this.vm.failed) return this.failStream();
      this.ensureContext();
      if (this.vm.failed) return this.failStream();
      d.headersAvailable = true;
      const r = this.vm.call(
        "proxy_on_request_headers",
        this.contextId,
        d.headers.length,
        endOfStream ? 1 : 0,
      );
      this.afterHeaders(d, r, true);
    });
  }

  decodeData(data: Uint8Array, endOfStream: boolean): void {
    this.vm.host(() => this.onData(this.req, data, endOfStream, true));
  }

  /**
   * Request trailers end the stream: on_request_body never saw end_of_stream, the plugin gets
   * on_request_trailers (cpp-host onRequestTrailers: 0 Continue, anything else StopIteration).
   */
  decodeTrailers(trailers: HeaderList): void {
    this.vm.host(() => {
      const d = this.req;
      if (this.finished || d.endForwarded) return;
      d.ended = true;
      d.trailers = trailers.map(([k, v]) => [k.toLowerCase(), v] as [string, string]);
      d.trailersHeld = true;
      if (this.opts.bypass || this.contextId === 0) return this.resume(d, true);
      if (this.vm.failed) return this.failStream();
      // Under StopAllIteration the plugin sees nothing until continue_stream; the trailers wait too.
      if (d.stopAll || (d.headersHeld && !d.headersAvailable)) return this.checkLimit(d, true);
      const r = this.vm.call("proxy_on_request_trailers", this.contextId, d.trailers.length);
      if (this.vm.failed) return this.failStream();
      if (this.finished) return;
      if ((r ?? 0) === 0 && !this.localReplyPending) this.resume(d, true, true);
      else d.bodyStopped = true;
    });
  }

  encodeHeaders(headers: HeaderList, endOfStream: boolean): void {
    this.vm.host(() => {
      if (this.reset || this.destroyed) return;
      if (this.localReplied) return;
      const d = this.resp;
      d.headers = headers.map(([k, v]) => [k.toLowerCase(), v] as [string, string]);
      this.responseCode = Number(d.headers.find(([k]) => k === ":status")?.[1] ?? 0);
      d.ended = endOfStream;
      d.headersEndStream = endOfStream;
      d.headersHeld = true;
      if (this.opts.bypass || this.contextId === 0) return this.resume(d, false); // never saw it
      if (this.vm.failed) return this.failStream(true);
      d.headersAvailable = true;
      const r = this.vm.call(
        "proxy_on_response_headers",
        this.contextId,
        d.headers.length,
        endOfStream ? 1 : 0,
      );
      this.afterHeaders(d, r, false);
    });
  }

  encodeData(data: Uint8Array, endOfStream: boolean): void {
    this.vm.host(() => {
      if (this.localReplied) return;
      this.onData(this.resp, data, endOfStream, false);
    });
  }

  destroy(): void {
    this.vm.host(() => {
      if (this.destroyed) return;
      if (this.contextId !== 0 && !this.vm.failed) {
        // envoy-proxy-wasm.md §1 "Call order" 3: on_log (access log) runs before on_done and on_delete.
        this.logPhase = true;
        this.req.headersAvailable = this.resp.headersAvailable = false;
        this.vm.call("proxy_on_log", this.contextId);
        this.vm.call("proxy_on_done", this.contextId);
        this.vm.call("proxy_on_delete", this.contextId);
      }
      this.destroyed = true;
      if (this.contextId !== 0) this.vm.unregisterStream(this.contextId);
    });
  }

  // --- filter-manager internals ---

  private ensureContext(): void {
    if (this.contextId !== 0) return;
    this.contextId = this.vm.newContextId();
    this.vm.registerStream(this);
    this.vm.call("proxy_on_context_create", this.contextId, this.root.contextId);
  }

  /** envoy-proxy-wasm.md §2 "FilterHeadersStatus": 1 → 4 unless allowed; > 4 → 4; a local reply forces Stop. */
  private afterHeaders(d: Direction, raw: number | undefined, isRequest: boolean): void {
    if (this.vm.failed) return this.failStream(!isRequest);
    if (this.finished || (!isRequest && this.localReplied)) return;
    let status = raw ?? 0;
    if (status === 1 && !this.root.cfg.allowOnHeadersStopIteration) status = 4;
    if (status > 4) status = 4;
    if (this.localReplyPending) status = 4;
    // ContinueAndEndStream (2) has no case in Envoy's convertFilterHeadersStatus (context.cc): its
    // default branch makes it Continue.
    if (status === 0 || status === 2) {
      d.headersAvailable = false;
      d.headersHeld = false;
      this.forwardHeaders(d, isRequest, d.headersEndStream);
      return;
    }
    d.stopAll = status === 3 || status === 4;
    d.limitApplies = status === 3;
  }

  private onData(d: Direction, data: Uint8Array, eos: boolean, isRequest: boolean): void {
    if (this.reset || this.destroyed || (isRequest && this.localReplied)) return;
    if (d.endForwarded) return; // ended already (e.g. ContinueAndEndStream)
    d.ended = eos;
    if (this.opts.bypass) {
      d.buffer = concat(d.buffer, data);
      return this.resume(d, isRequest);
    }
    if (this.vm.failed) return this.failData(d, data, eos, isRequest);
    d.viewFrom = d.chunkOnly ? d.buffer.length : 0;
    d.buffer = concat(d.buffer, data);
    if (this.contextId === 0) return this.resume(d, isRequest);
    if (d.stopAll || (d.headersHeld && !d.headersAvailable)) {
      this.checkLimit(d, isRequest);
      return;
    }
    this.deliverBody(d, isRequest);
  }

  /** Calls on_*_body with the current buffer (whole buffered body after StopIterationAndBuffer). */
  private deliverBody(d: Direction, isRequest: boolean): void {
    // With trailers, the body never carries end_of_stream: the trailers end the stream.
    const eos = d.ended && !d.trailersHeld;
    d.inEosDataCallback = eos;
    const r = this.vm.call(
      isRequest ? "proxy_on_request_body" : "proxy_on_response_body",
      this.contextId,
      d.buffer.length - d.viewFrom,
      eos ? 1 : 0,
    );
    d.inEosDataCallback = false;
    if (this.vm.failed) return this.failStream(!isRequest);
    if (this.finished) return;
    let status = r ?? 0;
    if (status > 3) status = 3;
    if (this.localReplyPending) status = 3;
    d.chunkOnly = status === 2;
    if (!d.chunkOnly) d.viewFrom = 0;
    switch (status) {
      case 0:
        d.bodyStopped = false;
        this.resume(d, isRequest, true);
        return;
      case 1:
      case 2:
        d.bodyStopped = true;
        d.limitApplies = status === 1;
        this.checkLimit(d, isRequest);
        return;
      default:
        // StopIterationNoBuffer: the plugin keeps nothing buffered by the filter manager.
        d.bodyStopped = true;
        d.buffer = EMPTY;
    }
  }

  /**
   * Forwards held headers, buffered data and held trailers to the next filter. Envoy drops its pointer to
   * the header map only when on_*_headers returned Continue or on continue_stream; a stream resumed by a
   * body or trailers callback keeps the map readable and writable (context.cc decodeHeaders, getMap).
   */
  private resume(d: Direction, isRequest: boolean, fromCallback = false): void {
    if (d.headersHeld) {
      d.headersHeld = false;
      if (!fromCallback) d.headersAvailable = false;
      this.forwardHeaders(d, isRequest, d.headersEndStream);
    }
    if (d.headersEndStream) return;
    const withTrailers = d.trailersHeld;
    if (d.buffer.length > 0 || (d.ended && !withTrailers)) {
      const data = d.buffer;
      d.buffer = EMPTY;
      d.viewFrom = 0;
      const eos = d.ended && !withTrailers;
      if (eos) d.endForwarded = true;
      if (isRequest) this.cb.forwardRequestData(data, eos);
      else this.cb.forwardResponseData(data, eos);
    }
    if (withTrailers) {
      d.trailersHeld = false;
      d.endForwarded = true;
      if (isRequest) this.cb.forwardRequestTrailers?.(d.trailers ?? []);
    }
  }

  private forwardHeaders(d: Direction, isRequest: boolean, eos: boolean): void {
    if (eos) d.endForwarded = true;
    const h = d.headers ?? [];
    if (isRequest) this.cb.forwardRequestHeaders(h, eos);
    else {
      this.responseStarted = true;
      this.cb.forwardResponseHeaders(h, eos);
    }
  }

  /** Buffer limit: 413 for requests, 500 for responses (envoy-proxy-wasm.md §2 "Bodies"). */
  private checkLimit(d: Direction, isRequest: boolean): void {
    if (!d.limitApplies || d.buffer.length <= this.limit) return;
    d.buffer = EMPTY;
    if (isRequest)
      this.doLocalReply(413, "request_payload_too_large", utf8Encoder.encode("Payload Too Large"), []);
    else if (!this.responseStarted)
      this.doLocalReply(500, "response_payload_too_large", utf8Encoder.encode("Internal Server Error"), []);
    else this.doReset("response_payload_too_large");
  }

  /** After a trap: fail_open → pass through untouched; otherwise 503 wasm_fail_stream. */
  private failStream(isResponse = false): void {
    if (this.root.cfg.failOpen) {
      const d = isResponse ? this.resp : this.req;
      d.stopAll = false;
      d.bodyStopped = false;
      d.headersAvailable = false;
      if (d.headers && d.headersHeld) this.resume(d, !isResponse);
      return;
    }
    if (this.localReplied) return;
    if (this.responseStarted) return this.doReset("wasm_fail_stream");
    this.doLocalReply(503, "wasm_fail_stream", EMPTY, []);
  }

  private failData(d: Direction, data: Uint8Array, eos: boolean, isRequest: boolean): void {
    if (!this.root.cfg.failOpen) return this.failStream(!isRequest);
    d.buffer = concat(d.buffer, data);
    d.ended = eos;
    this.resume(d, isRequest);
  }

  /**
   * A local reply travels the encoder chain, this filter included (Envoy's sendLocalReplyViaFilterChain
   * starts at the first encoder filter): the plugin sees it in on_response_headers/body and may edit it.
   */
  private doLocalReply(status: number, details: string, body: Uint8Array, headers: HeaderList): void {
    if (this.finished) return;
    // DownstreamFilterManager::sendLocalReply records the details before the reply meets the encoders.
    this.responseDetails = details;
    this.localReplied = true;
    this.localReplyPending = false;
    this.req.headersAvailable = false;
    const d = this.resp;
    const h: HeaderList = [[":status", String(status)], ...headers];
    if (body.length > 0) {
      h.push(["content-length", String(body.length)]);
      if (!h.some(([k]) => k === "content-type")) h.push(["content-type", "text/plain"]);
    }
    d.headers = h;
    if (this.contextId !== 0 && !this.vm.failed) {
      d.headersAvailable = true;
      this.vm.call("proxy_on_response_headers", this.contextId, h.length, body.length === 0 ? 1 : 0);
      d.headersAvailable = false;
      if (body.length > 0 && !this.vm.failed) {
        d.buffer = body;
        d.ended = true;
        d.inEosDataCallback = true;
        this.vm.call("proxy_on_response_body", this.contextId, body.length, 1);
        d.inEosDataCallback = false;
        body = d.buffer;
        d.buffer = EMPTY;
      }
    }
    const finalStatus = Number(h.find(([k]) => k === ":status")?.[1] ?? status) || status;
    this.responseCode = finalStatus;
    this.responseStarted = true;
    this.cb.localReply({
      status: finalStatus,
      headers: h.filter(([k]) => !k.startsWith(":")),
      body,
      details,
    });
  }

  private doReset(reason: string): void {
    if (this.reset) return;
    this.reset = true;
    this.cb.reset?.(reason);
  }

  // --- StreamSide (called by the ABI shim while this stream's context is active) ---

  readMap(type: number): HeaderList | null | undefined {
    const d = type === MapType.RequestHeaders || type === MapType.RequestTrailers ? this.req : this.resp;
    const trailers = type === MapType.RequestTrailers || type === MapType.ResponseTrailers;
    if (this.logPhase) {
      // Log phase: maps come from the access log, read-only; a missing map → NotFound.
      return (trailers ? d.trailers : d.headers) ?? null;
    }
    if (trailers) return d.trailers ?? (d.inEosDataCallback ? [] : undefined);
    return d.headersAvailable ? d.headers : undefined;
  }

  writeMap(type: number): HeaderList | undefined {
    if (this.logPhase) return undefined;
    const d = type === MapType.RequestHeaders || type === MapType.RequestTrailers ? this.req : this.resp;
    if (type === MapType.RequestTrailers || type === MapType.ResponseTrailers) {
      // Trailers can be created by add in the end_of_stream data callback.
      if (!d.trailers && d.inEosDataCallback) d.trailers = [];
      return d.trailers;
    }
    return d.headersAvailable ? d.headers : undefined;
  }

  afterMapWrite(type: number): void {
    // Envoy clears the route cache whenever a 0.2.x plugin modifies request headers.
    if (type === MapType.RequestHeaders) this.routeCacheClears++;
  }

  clearRouteCache(): void {
    this.routeCacheClears++;
  }

  getBuffer(type: number): Uint8Array | undefined {
    const d = type === BufferType.HttpRequestBody ? this.req : this.resp;
    if (this.logPhase) return undefined;
    return d.viewFrom > 0 ? d.buffer.subarray(d.viewFrom) : d.buffer;
  }

  /** start=0 drains len bytes and prepends data; start ≥ size appends; else BadArgument. */
  setBuffer(type: number, start: number, length: number, data: Uint8Array): number {
    const d = type === BufferType.HttpRequestBody ? this.req : this.resp;
    if (this.logPhase) return R.NotFound;
    // Only the plugin's view (the current chunk after a watermark stop) is reachable.
    const before = d.buffer.subarray(0, d.viewFrom);
    const view = d.buffer.subarray(d.viewFrom);
    const size = view.length;
    if (start === 0) {
      d.buffer = concat(before, concat(data, view.subarray(Math.min(length, size))));
      if (d.buffer === data) d.buffer = data.slice();
      return R.Ok;
    }
    if (start >= size) {
      d.buffer = concat(d.buffer, data);
      return R.Ok;
    }
    return R.BadArgument;
  }

  sendLocalResponse(
    status: number,
    details: string,
    body: Uint8Array,
    headers: HeaderList,
    _grpcStatus: number,
  ): number {
    // Deferred until the VM call returns; the current callback's result is forced to Stop.
    this.localReplyPending = true;
    const cleanDetails = details.replace(/\s/g, "_");
    this.vm.defer(() => {
      if (this.responseStarted) {
        // Only possible before response headers went out; afterwards Envoy resets the stream.
        this.localReplyPending = false;
        this.doReset(cleanDetails);
        return;
      }
      this.doLocalReply(status, cleanDetails, body, headers);
    });
    return R.Ok;
  }

  continueStream(type: number): number {
    if (type !== 0 && type !== 1) return R.Unimplemented;
    const isRequest = type === 0;
    const d = isRequest ? this.req : this.resp;
    // Envoy clears the request maps on continue_stream of either direction, never the response maps
    // (context.cc Context::continueStream).
    this.req.headersAvailable = false;
    this.vm.defer(() => {
      if (this.finished) return;
      if (!d.headersHeld && !d.stopAll && !d.bodyStopped) return; // idempotent
      const wasStopAll = d.stopAll;
      d.stopAll = false;
      d.bodyStopped = false;
      if (d.headersHeld) {
        d.headersHeld = false;
        d.headersAvailable = false;
        this.forwardHeaders(d, isRequest, d.headersEndStream);
        if (d.headersEndStream) return;
      }
      // After StopAll the plugin has not seen the buffered data yet: it gets it now.
      if (wasStopAll && (d.buffer.length > 0 || d.ended)) this.deliverBody(d, isRequest);
      else this.resume(d, isRequest);
    });
    return R.Ok;
  }

  closeStream(_type: number): number {
    this.vm.defer(() => this.doReset("wasm_close_stream"));
    return R.Ok;
  }

  setUpstreamHost(address: string, port: number): void {
    this.upstreamHost = { address, port };
  }

  setResponseInfo(info: { flags?: number; details?: string }): void {
    if (info.flags !== undefined) this.responseFlags |= info.flags;
    if (info.details !== undefined) this.responseDetails = info.details;
  }

  property(path: string): Uint8Array | undefined {
    const seg = path.split("\0");
    const reqHeaders = this.req.headersAvailable || this.logPhase ? this.req.headers : undefined;
    const rh = (k: string) => reqHeaders?.find(([n]) => n === k)?.[1];
    const s = (v: string | undefined) => (v === undefined ? undefined : utf8Encoder.encode(v));
    switch (seg[0]) {
      case "request": {
        if (!reqHeaders) return undefined; // request attributes need the current request-header map
        const p = rh(":path") ?? "";
        switch (seg[1]) {
          case "path":
            return s(p);
          case "url_path":
            return s(p.split("?")[0]);
          case "query":
            return s(p.includes("?") ? p.slice(p.indexOf("?") + 1) : "");
          case "host":
            return s(rh(":authority"));
          case "scheme":
            return s(rh(":scheme"));
          case "method":
            return s(rh(":method"));
          case "referer":
            return s(rh("referer"));
          case "useragent":
            return s(rh("user-agent"));
          case "id":
            return s(rh("x-request-id"));
          case "protocol":
            return s("HTTP/1.1");
          case "headers":
            if (seg.length === 3) return s(rh(seg[2]!.toLowerCase()));
            return undefined;
        }
        return undefined;
      }
      case "response":
        if (seg[1] === "code" && this.responseCode > 0) return int64(this.responseCode);
        // source/extensions/filters/common/expr/context.cc ResponseLookupValues: `flags` is always an int64
        // (legacyResponseFlags, 0 when none is set); `code_details` a string, absent until set.
        if (seg[1] === "flags" && seg.length === 2) return int64(this.responseFlags);
        if (seg[1] === "code_details" && seg.length === 2) return s(this.responseDetails);
        if (
          seg[1] === "headers" &&
          seg.length === 3 &&
          this.resp.headers &&
          (this.resp.headersAvailable || this.logPhase)
        )
          return s(this.resp.headers.find(([n]) => n === seg[2]!.toLowerCase())?.[1]);
        return undefined;
      case "source":
      case "destination":
      case "upstream": {
        const a =
          seg[0] === "source"
            ? this.opts.downstream
            : seg[0] === "destination"
              ? this.opts.destination
              : this.upstreamHost;
        if (!a) return undefined;
        // Envoy's Address::asString: IPv6 in brackets (`[fd00::1]:8000`).
        if (seg[1] === "address")
          return s(a.address.includes(":") ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`);
        if (seg[1] === "port") return int64(a.port);
        return undefined;
      }
    }
    // Unknown names are looked up as filter state wasm.<name>.
    return seg.length === 1 ? this.filterState.get("wasm." + path) : undefined;
  }

  setProperty(path: string, value: Uint8Array): number {
    this.filterState.set("wasm." + path, value);
    return R.Ok;
  }
}
