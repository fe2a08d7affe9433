// `session-affinity-scorer` (llm-d Router, strategy encoded_endpoint_header): a request carrying the
// session header goes back to the endpoint its token names. The token is opaque to the client: base64
// (standard alphabet, padded) of the endpoint's `ip:port` — llm-d encodes the pod's namespace/name; we
// route by ip:port, so we encode that. After every pick the response carries the token of the endpoint
// that took the request, so a session that had to move (endpoint gone, not ready, saturated) sticks to
// its new endpoint. Stateless: any worker or Envoy honours any token. It is a scorer: give it a weight
// above the sum of the other weights to make it a pin rather than a preference.

import { Endpoint, RequestInfo, CycleState } from "../types.ts";
import { Plugin, Scorer, ResponseHeaders, SaturationDetector } from "../framework.ts";
import { PluginSpec } from "../../snapshot/types.ts";
import { BuildContext } from "../build-context.ts";

export const SESSION_AFFINITY_SCORER = "session-affinity-scorer";
export const DEFAULT_SESSION_HEADER = "x-session-token";
const STRATEGIES: string[] = ["encoded_endpoint_header"];
/** Tokens remembered per endpoint address before the cache starts over (bounds memory under churn). */
const TOKEN_CACHE_MAX: i32 = 4096;

export function sessionAffinityScorerFactory(spec: PluginSpec, ctx: BuildContext): Plugin | null {
  const p = ctx.params(spec);
  p.oneOf("strategy", STRATEGIES, 0);
  let header = p.str("encodedEndpointHeaderConfig.header", DEFAULT_SESSION_HEADER).trim().toLowerCase();
  if (header.length == 0) header = DEFAULT_SESSION_HEADER;
  return ctx.finish(p, new SessionAffinityScorer(header, ctx.requestHeader(header), ctx.detector));
}

/** 1 for the token's endpoint unless the detector calls it saturated; 0 elsewhere and without a token. */
export class SessionAffinityScorer extends Scorer {
  /** The decoded token of this cycle (`len` bytes), −1 = none or undecodable. */
  private decoded: StaticArray<u8> = new StaticArray<u8>(64);
  private len: i32 = -1;
  private tokens: Map<string, string> = new Map<string, string>();

  constructor(
    public header: string,
    /** Index of `header` in the scheduler's wanted request headers. */
    public slot: i32,
    public detector: SaturationDetector | null,
  ) {
    super(SESSION_AFFINITY_SCORER);
  }

  beginCycle(eps: Endpoint[], req: RequestInfo, cs: CycleState): void {
    this.len = -1;
  }

  score(eps: Endpoint[], req: RequestInfo, cs: CycleState, out: StaticArray<f64>): void {
    const n = cs.n;
    for (let k = 0; k < n; k++) unchecked((out[k] = 0));
    const token = req.pluginHeader(this.slot);
    if (token.length == 0) return;
    this.len = decodeBase64(token, this);
    if (this.len <= 0) return;
    const det = this.detector;
    for (let k = 0; k < n; k++) {
      const e = unchecked(eps[unchecked(cs.cand[k])]);
      if (!this.names(e.hostPort)) continue;
      if (det == null || !det.endpointSaturated(e)) unchecked((out[k] = 1));
      return;
    }
  }

  /** Still scores when the snapshot is stale: a session should survive a sidecar outage. */
  keepWhenStale(): bool {
    return true;
  }

  afterPick(eps: Endpoint[], i: i32, req: RequestInfo, cs: CycleState, headers: ResponseHeaders): void {
    headers.set(this.header, this.tokenOf(unchecked(eps[i]).hostPort));
  }

  /** The token for an address, encoded once per address. */
  tokenOf(hostPort: string): string {
    const tokens = this.tokens;
    if (tokens.has(hostPort)) return tokens.get(hostPort);
    if (tokens.size >= TOKEN_CACHE_MAX) tokens.clear();
    const t = encodeBase64(hostPort);
    tokens.set(hostPort, t);
    return t;
  }

  /** Grows the decode buffer (rare: only for a token longer than any seen). */
  buffer(need: i32): StaticArray<u8> {
    if (this.decoded.length < need) this.decoded = new StaticArray<u8>(need);
    return this.decoded;
  }

  /** Does this cycle's decoded token spell `hostPort`? */
  private names(hostPort: string): bool {
    const n = this.len;
    if (hostPort.length != n) return false;
    const d = this.decoded;
    for (let j = 0; j < n; j++) if (<i32>unchecked(d[j]) != hostPort.charCodeAt(j)) return false;
    return true;
  }
}

const ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/** Standard base64 with padding of an ASCII string. */
export function encodeBase64(s: string): string {
  let out = "";
  const n = s.length;
  for (let i = 0; i < n; i += 3) {
    const b0 = s.charCodeAt(i) & 0xff;
    const b1 = i + 1 < n ? s.charCodeAt(i + 1) & 0xff : 0;
    const b2 = i + 2 < n ? s.charCodeAt(i + 2) & 0xff : 0;
    out += ALPHABET.charAt(b0 >> 2);
    out += ALPHABET.charAt(((b0 & 3) << 4) | (b1 >> 4));
    out += i + 1 < n ? ALPHABET.charAt(((b1 & 15) << 2) | (b2 >> 6)) : "=";
    out += i + 2 < n ? ALPHABET.charAt(b2 & 63) : "=";
  }
  return out;
}

function sextet(c: i32): i32 {
  if (c >= 65 && c <= 90) return c - 65;
  if (c >= 97 && c <= 122) return c - 71;
  if (c >= 48 && c <= 57) return c + 4;
  if (c == 43) return 62;
  if (c == 47) return 63;
  return -1;
}

/** Decodes padded standard base64 into the scorer's buffer without allocating; the length, or −1. */
function decodeBase64(s: string, into: SessionAffinityScorer): i32 {
  const n = s.length;
  if (n == 0 || (n & 3) != 0) return -1;
  let pad = 0;
  if (s.charCodeAt(n - 1) == 61) pad++;
  if (s.charCodeAt(n - 2) == 61) pad++;
  const len = (n / 4) * 3 - pad;
  const out = into.buffer(len + 3);
  let o = 0;
  for (let i = 0; i < n; i += 4) {
    const a = sextet(s.charCodeAt(i));
    const b = sextet(s.charCodeAt(i + 1));
    const last = i + 4 == n;
    const c = last && pad >= 2 ? 0 : sextet(s.charCodeAt(i + 2));
    const d = last && pad >= 1 ? 0 : sextet(s.charCodeAt(i + 3));
    if ((a | b | c | d) < 0) return -1;
    const v = (a << 18) | (b << 12) | (c << 6) | d;
    unchecked((out[o++] = <u8>(v >> 16)));
    unchecked((out[o++] = <u8>(v >> 8)));
    unchecked((out[o++] = <u8>v));
  }
  return len;
}
