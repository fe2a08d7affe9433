// A strict HTTP/1.1 message parser for raw-socket tests: it reads a byte stream of requests (what an upstream
// receives) or responses (what a client receives) and fails on anything RFC 9112 does not allow — a bare CR, LF or
// NUL in the head, a header name that is not a token, a value byte outside HTAB/SP/VCHAR/obs-text, obs-fold,
// conflicting framing. Bytes are handled as latin1 strings (one char per byte).

const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;
const REQUEST_LINE = /^([!#$%&'*+.^_`|~0-9A-Za-z-]+) ([\x21-\x7e\x80-\xff]+) HTTP\/1\.[01]$/;
const STATUS_LINE = /^HTTP\/1\.[01] ([1-9][0-9]{2}) [\t\x20-\x7e\x80-\xff]*$/;
const MAX_HEAD = 256 * 1024;

export class WireError extends Error {}

export interface WireMessage {
  /** The start line (request line or status line). */
  startLine: string;
  method?: string;
  target?: string;
  status?: number;
  /** Header names lower-cased, values with surrounding SP/HTAB removed, in wire order. */
  headers: Array<[string, string]>;
  /** The head as received, up to and including the empty line. */
  rawHead: string;
  body: Buffer;
  trailers: Array<[string, string]>;
}

export function header(m: WireMessage, name: string): string[] {
  return m.headers.filter(([k]) => k === name).map(([, v]) => v);
}

function parseFields(lines: string[], where: string): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  for (const line of lines) {
    if (line.startsWith(" ") || line.startsWith("\t")) throw new WireError(`${where}: obs-fold line`);
    const colon = line.indexOf(":");
    if (colon <= 0) throw new WireError(`${where}: no colon in ${JSON.stringify(line.slice(0, 80))}`);
    const name = line.slice(0, colon);
    const value = line.slice(colon + 1).replace(/^[ \t]+|[ \t]+$/g, "");
    if (!TOKEN.test(name)) throw new WireError(`${where}: invalid header name ${JSON.stringify(name)}`);
    if (!VALUE.test(value)) {
      throw new WireError(`${where}: invalid value for ${name}: ${JSON.stringify(value.slice(0, 80))}`);
    }
    out.push([name.toLowerCase(), value]);
  }
  return out;
}

/** Checks a complete head ("start\r\nfield\r\n…\r\n\r\n") and returns its parts. */
function parseHead(
  raw: string,
  kind: "request" | "response",
): Pick<WireMessage, "startLine" | "method" | "target" | "status" | "headers"> {
  const text = raw.slice(0, -4);
  const lines = text.split("\r\n");
  for (const l of lines) {
    if (/[\r\n\0]/.test(l)) throw new WireError(`bare CR, LF or NUL in ${JSON.stringify(l.slice(0, 80))}`);
  }
  const startLine = lines[0]!;
  const headers = parseFields(lines.slice(1), "header");
  if (kind === "request") {
    const m = REQUEST_LINE.exec(startLine);
    if (!m) throw new WireError(`invalid request line ${JSON.stringify(startLine.slice(0, 120))}`);
    return { startLine, method: m[1]!, target: m[2]!, headers };
  }
  const m = STATUS_LINE.exec(startLine);
  if (!m) throw new WireError(`invalid status line ${JSON.stringify(startLine.slice(0, 120))}`);
  return { startLine, status: Number(m[1]), headers };
}

type State =
  | { at: "head" }
  | { at: "length"; msg: WireMessage; left: number }
  | { at: "chunk-size"; msg: WireMessage; parts: Buffer[] }
  | { at: "chunk-data"; msg: WireMessage; parts: Buffer[]; left: number }
  | { at: "trailers"; msg: WireMessage; parts: Buffer[] }
  | { at: "until-close"; msg: WireMessage; parts: Buffer[] };

/**
 * Incremental parser. `push` bytes, `end` at EOF; complete messages go to `onMessage`. For responses, `nextMethod`
 * says which request the next final response answers (a HEAD response has no body). Interim (1xx) responses are
 * delivered too. Throws WireError on the first violation.
 */
export class WireParser {
  private buf: Buffer = Buffer.alloc(0);
  private state: State = { at: "head" };

  constructor(
    private readonly kind: "request" | "response",
    private readonly onMessage: (m: WireMessage) => void,
    private readonly nextMethod: () => string | undefined = () => undefined,
  ) {}

  /** True when no message is partly received. */
  get idle(): boolean {
    return this.state.at === "head" && this.buf.length === 0;
  }

  push(chunk: Buffer): void {
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    while (this.step());
  }

  /** EOF: a close-delimited body ends here; anything else partly received is reported as truncated. */
  end(): "clean" | "truncated" {
    if (this.state.at === "until-close") {
      const { msg, parts } = this.state;
      msg.body = Buffer.concat([...parts, this.buf]);
      this.buf = Buffer.alloc(0);
      this.state = { at: "head" };
      this.onMessage(msg);
      return "clean";
    }
    return this.idle ? "clean" : "truncated";
  }

  private line(): string | undefined {
    const i = this.buf.indexOf("\r\n");
    if (i < 0) {
      if (this.buf.length > MAX_HEAD) throw new WireError("line too long");
      return undefined;
    }
    const l = this.buf.subarray(0, i).toString("latin1");
    this.buf = this.buf.subarray(i + 2);
    return l;
  }

  private step(): boolean {
    const st = this.state;
    switch (st.at) {
      case "head": {
        if (this.buf.length === 0) return false;
        const end = this.buf.indexOf("\r\n\r\n");
        if (end < 0) {
          if (this.buf.length > MAX_HEAD) throw new WireError("head too long");
          return false;
        }
        const rawHead = this.buf.subarray(0, end + 4).toString("latin1");
        this.buf = this.buf.subarray(end + 4);
        const head = parseHead(rawHead, this.kind);
        const msg: WireMessage = { ...head, rawHead, body: Buffer.alloc(0), trailers: [] };
        this.frame(msg);
        return true;
      }
      case "length": {
        if (this.buf.length < st.left) return false;
        st.msg.body = Buffer.from(this.buf.subarray(0, st.left));
        this.buf = this.buf.subarray(st.left);
        this.done(st.msg);
        return true;
      }
      case "chunk-size": {
        const l = this.line();
        if (l === undefined) return false;
        const m = /^([0-9a-fA-F]{1,15})(?:[ \t]*;[\x20-\x7e\t]*)?$/.exec(l);
        if (!m) throw new WireError(`invalid chunk size line ${JSON.stringify(l.slice(0, 40))}`);
        const size = parseInt(m[1]!, 16);
        this.state =
          size === 0
            ? { at: "trailers", msg: st.msg, parts: st.parts }
            : { at: "chunk-data", msg: st.msg, parts: st.parts, left: size };
        return true;
      }
      case "chunk-data": {
        if (this.buf.length < st.left + 2) return false;
        if (this.buf[st.left] !== 0x0d || this.buf[st.left + 1] !== 0x0a) {
          throw new WireError("chunk data not followed by CRLF");
        }
        st.parts.push(Buffer.from(this.buf.subarray(0, st.left)));
        this.buf = this.buf.subarray(st.left + 2);
        this.state = { at: "chunk-size", msg: st.msg, parts: st.parts };
        return true;
      }
      case "trailers": {
        const l = this.line();
        if (l === undefined) return false;
        if (l !== "") {
          st.msg.trailers.push(...parseFields([l], "trailer"));
          return true;
        }
        st.msg.body = Buffer.concat(st.parts);
        this.done(st.msg);
        return true;
      }
      case "until-close":
        st.parts.push(this.buf);
        this.buf = Buffer.alloc(0);
        return false;
    }
  }

  private done(msg: WireMessage): void {
    this.state = { at: "head" };
    this.onMessage(msg);
  }

  /** RFC 9112 §6.3: how the body of this message is delimited. */
  private frame(msg: WireMessage): void {
    const te = header(msg, "transfer-encoding");
    const cl = header(msg, "content-length");
    const interim = msg.status !== undefined && msg.status < 200;
    const noBody =
      interim ||
      msg.status === 204 ||
      msg.status === 304 ||
      (this.kind === "response" && this.nextMethod() === "HEAD");
    if (te.length > 0 && cl.length > 0) throw new WireError("both transfer-encoding and content-length");
    if (noBody) return this.done(msg);
    if (te.length > 0) {
      if (te.join(",").trim().toLowerCase() !== "chunked") {
        throw new WireError(`unsupported transfer-encoding ${te.join(",")}`);
      }
      this.state = { at: "chunk-size", msg, parts: [] };
      return;
    }
    if (cl.length > 0) {
      if (!cl.every((v) => v === cl[0]) || !/^[0-9]{1,15}$/.test(cl[0]!)) {
        throw new WireError(`invalid content-length ${cl.join(",")}`);
      }
      const left = Number(cl[0]);
      if (left === 0) return this.done(msg);
      this.state = { at: "length", msg, left };
      return;
    }
    if (this.kind === "request") return this.done(msg);
    this.state = { at: "until-close", msg, parts: [] };
  }
}
