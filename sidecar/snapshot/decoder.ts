// Strict TypeScript decoder of docs/snapshot-format.md, used by /debug/snapshot and by tests.
// It checks what the filter checks and rejects the whole snapshot on the first error: every count is
// checked against the bytes that remain before anything is allocated.
import { crc32 } from "node:zlib";
import { isIP } from "node:net";
import {
  CRITICALITIES,
  ENGINES,
  FAIRNESS_POLICIES,
  HEADER_LENGTH,
  MAX_ADAPTERS,
  MAX_MODEL_TARGETS,
  MAX_REWRITE_MATCHES,
  MAX_REWRITE_TARGETS,
  MAX_STRING_BYTES,
  MAX_TARGET_PORTS,
  NEVER_SCRAPED,
  NO_PLUGIN_INDEX,
  PARAM_KIND,
  SNAPSHOT_MAGIC,
  SNAPSHOT_VERSION,
  SNAPSHOT_VERSION_1,
  TAG,
  DEFAULT_SCHEDULER,
} from "./types.ts";
import type {
  Criticality,
  DecodedEngine,
  FlowBand,
  FlowBandLimits,
  FlowControlSection,
  PluginParamValue,
  SchedulerConfig,
  SchedulingPlugin,
  SchedulingProfile,
  SchedulingSection,
  Snapshot,
  SnapshotEndpoint,
  SnapshotModel,
  SnapshotObjective,
  SnapshotPool,
  SnapshotRewrite,
} from "./types.ts";

export class SnapshotDecodeError extends Error {
  override name = "SnapshotDecodeError";
}

function bad(msg: string): never {
  throw new SnapshotDecodeError(msg);
}

const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/** Bounds-checked little-endian reader over one region [off, end). */
class Reader {
  constructor(
    private readonly view: DataView,
    public off: number,
    private readonly end: number,
    private readonly what: string,
  ) {}
  remaining(): number {
    return this.end - this.off;
  }
  need(n: number): void {
    if (n > this.end - this.off)
      bad(`${this.what}: truncated (need ${n} bytes at ${this.off}, ${this.remaining()} left)`);
  }
  u8(): number {
    this.need(1);
    return this.view.getUint8(this.off++);
  }
  u16(): number {
    this.need(2);
    const v = this.view.getUint16(this.off, true);
    this.off += 2;
    return v;
  }
  u32(): number {
    this.need(4);
    const v = this.view.getUint32(this.off, true);
    this.off += 4;
    return v;
  }
  i32(): number {
    this.need(4);
    const v = this.view.getInt32(this.off, true);
    this.off += 4;
    return v;
  }
  f64(): number {
    this.need(8);
    const v = this.view.getFloat64(this.off, true);
    this.off += 8;
    return v;
  }
  /** A count of records of at least `minRecord` bytes each, checked against what remains. */
  count(minRecord: number): number {
    const n = this.u32();
    if (n * minRecord > this.remaining())
      bad(`${this.what}: count ${n} exceeds the remaining ${this.remaining()} bytes`);
    return n;
  }
  done(): void {
    if (this.off !== this.end) bad(`${this.what}: ${this.end - this.off} trailing bytes in section`);
  }
}

export function decodeSnapshot(bytes: Uint8Array): Snapshot {
  if (bytes.length < HEADER_LENGTH) bad(`too short for a header (${bytes.length} bytes)`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (view.getUint32(0, true) !== SNAPSHOT_MAGIC) bad("bad magic (expected EPPS)");
  const version = view.getUint16(4, true);
  if (version !== SNAPSHOT_VERSION && version !== SNAPSHOT_VERSION_1) bad(`unsupported version ${version}`);
  const headerLength = view.getUint16(6, true);
  const total = view.getUint32(8, true);
  if (total !== bytes.length) bad(`totalLength ${total} does not match the ${bytes.length} bytes received`);
  if (headerLength < HEADER_LENGTH || headerLength > total) bad(`bad headerLength ${headerLength}`);
  const crc = view.getUint32(12, true);
  const actual = crc32(bytes.subarray(16));
  if (crc !== actual) bad(`checksum mismatch (header ${crc}, computed ${actual})`);
  const generation = view.getBigUint64(16, true);
  const createdAt = view.getBigUint64(24, true);
  if (createdAt > BigInt(Number.MAX_SAFE_INTEGER)) bad("createdAtMs out of range");

  let strings: string[] | undefined;
  let pool: SnapshotPool | undefined;
  let endpoints: SnapshotEndpoint[] | undefined;
  let models: SnapshotModel[] = [];
  let objectives: SnapshotObjective[] = [];
  let rewrites: SnapshotRewrite[] = [];
  let scheduler: SchedulerConfig = { ...DEFAULT_SCHEDULER, params: {} };
  let scheduling: SchedulingSection | undefined;
  let flowControl: FlowControlSection | undefined;
  // Version 1 knew neither PLUGINS nor FLOW_CONTROL: tags 8 and 9 there are skipped, as a version-1 reader did.
  const lastTag = version === SNAPSHOT_VERSION_1 ? TAG.scheduler : TAG.flowControl;
  const seen = new Set<number>();

  const top = new Reader(view, headerLength, total, "sections");
  while (top.remaining() > 0) {
    const tag = top.u16();
    const reserved = top.u16();
    const length = top.u32();
    if (reserved !== 0) bad(`section ${tag}: reserved field is ${reserved}, expected 0`);
    top.need(length);
    const r = new Reader(view, top.off, top.off + length, `section ${tag}`);
    top.off += length;
    if (tag < TAG.strings || tag > lastTag) continue; // unknown sections are skipped
    if (seen.has(tag)) bad(`section ${tag} appears twice`);
    seen.add(tag);
    if (tag === TAG.strings) {
      strings = readStrings(r, bytes);
    } else {
      if (strings === undefined) bad(`section ${tag} comes before the STRINGS section`);
      const str = stringRef(r, strings);
      if (tag === TAG.pool) pool = readPool(r, str);
      else if (tag === TAG.endpoints) endpoints = readEndpoints(r, str);
      else if (tag === TAG.models) models = readModels(r, str);
      else if (tag === TAG.objectives) objectives = readObjectives(r, str);
      else if (tag === TAG.rewrites) rewrites = readRewrites(r, str);
      else if (tag === TAG.scheduler) scheduler = readScheduler(r, str);
      else if (tag === TAG.plugins) scheduling = readPlugins(r, str, bytes.subarray(r.off, r.off + length));
      else flowControl = readFlowControl(r, bytes.subarray(r.off, r.off + length));
    }
    r.done();
  }
  if (strings === undefined) bad("missing STRINGS section");
  if (pool === undefined) bad("missing POOL section");
  if (endpoints === undefined) bad("missing ENDPOINTS section");
  return {
    generation,
    createdAtMs: Number(createdAt),
    pool,
    endpoints,
    models,
    objectives,
    rewrites,
    scheduler,
    ...(scheduling === undefined ? {} : { scheduling }),
    ...(flowControl === undefined ? {} : { flowControl }),
  };
}

function readStrings(r: Reader, bytes: Uint8Array): string[] {
  const n = r.count(2);
  const out: string[] = new Array(n);
  for (let i = 0; i < n; i++) {
    const len = r.u16();
    if (len > MAX_STRING_BYTES) bad(`string ${i} is ${len} bytes, the limit is ${MAX_STRING_BYTES}`);
    r.need(len);
    try {
      out[i] = utf8.decode(bytes.subarray(r.off, r.off + len));
    } catch {
      bad(`string ${i} is not valid UTF-8`);
    }
    r.off += len;
  }
  return out;
}

function stringRef(r: Reader, strings: string[]): () => string {
  return () => {
    const i = r.u32();
    if (i >= strings.length) bad(`string index ${i} out of range (${strings.length} strings)`);
    return strings[i]!;
  };
}

function readPool(r: Reader, str: () => string): SnapshotPool {
  const namespace = str();
  const name = str();
  const failureMode = r.u8();
  if (failureMode > 1) bad(`pool: unknown failureMode ${failureMode}`);
  const flags = r.u8();
  const portCount = r.u8();
  if (portCount < 1 || portCount > MAX_TARGET_PORTS)
    bad(`pool: portCount ${portCount} not in 1..${MAX_TARGET_PORTS}`);
  const targetPorts: number[] = [];
  for (let i = 0; i < portCount; i++) targetPorts.push(r.u16());
  return {
    namespace,
    name,
    failureMode: failureMode === 1 ? "FailOpen" : "FailClose",
    strictModels: (flags & 1) !== 0,
    targetPorts,
  };
}

function readEndpoints(r: Reader, str: () => string): SnapshotEndpoint[] {
  const n = r.count(36);
  const out: SnapshotEndpoint[] = [];
  const seen = new Set<string>();
  for (let i = 0; i < n; i++) {
    const podName = str();
    const address = str();
    if (isIP(address) === 0) bad(`endpoint ${i}: address ${JSON.stringify(address)} is not an IP literal`);
    const port = r.u16();
    if (port === 0) bad(`endpoint ${i}: port 0`);
    const key = `${address}:${port}`;
    if (seen.has(key)) bad(`endpoint ${i}: duplicate ${key}`);
    seen.add(key);
    const flags = r.u8();
    const engine = r.u8(); // a code from a newer sidecar is "unknown", not an error
    const age = r.u32();
    const waiting = r.u32();
    const running = r.u32();
    const kv = r.u16();
    if (kv > 10000) bad(`endpoint ${i}: kvUsage ${kv} > 10000`);
    const maxLoras = r.u16();
    const kvBlockSize = r.u16();
    const kvBlockCount = r.u32();
    const nRun = r.u8();
    const nWait = r.u8();
    r.need(4 * (nRun + nWait));
    const runningAdapters: string[] = [];
    const waitingAdapters: string[] = [];
    for (let j = 0; j < nRun; j++) runningAdapters.push(str());
    for (let j = 0; j < nWait; j++) waitingAdapters.push(str());
    out.push({
      podName,
      address,
      port,
      ready: (flags & 1) !== 0,
      stale: (flags & 2) !== 0,
      hasMetrics: (flags & 4) !== 0,
      engine: (ENGINES[engine] ?? "unknown") as DecodedEngine,
      metricsAgeMs: age === NEVER_SCRAPED ? null : age,
      waiting,
      running,
      kvUsage: kv / 10000,
      maxLoras,
      kvBlockSize,
      kvBlockCount,
      runningAdapters,
      waitingAdapters,
    });
  }
  void MAX_ADAPTERS; // u8 counts cannot exceed it
  return out;
}

function readModels(r: Reader, str: () => string): SnapshotModel[] {
  const n = r.count(6);
  const out: SnapshotModel[] = [];
  const names = new Set<string>();
  for (let i = 0; i < n; i++) {
    const name = str();
    if (names.has(name)) bad(`model ${i}: duplicate name ${name}`);
    names.add(name);
    const crit = r.u8();
    if (crit >= CRITICALITIES.length) bad(`model ${i}: unknown criticality ${crit}`);
    const count = r.u8();
    if (count > MAX_MODEL_TARGETS) bad(`model ${i}: ${count} targets, the limit is ${MAX_MODEL_TARGETS}`);
    const targets = [];
    for (let j = 0; j < count; j++) targets.push({ name: str(), weight: r.u32() });
    out.push({ name, criticality: CRITICALITIES[crit] as Criticality, targets });
  }
  return out;
}

function readObjectives(r: Reader, str: () => string): SnapshotObjective[] {
  const n = r.count(9);
  const out: SnapshotObjective[] = [];
  const names = new Set<string>();
  for (let i = 0; i < n; i++) {
    const name = str();
    if (names.has(name)) bad(`objective ${i}: duplicate name ${name}`);
    names.add(name);
    const flags = r.u8();
    const priority = r.i32();
    out.push({ name, priority: (flags & 1) !== 0 ? priority : null });
  }
  return out;
}

function readRewrites(r: Reader, str: () => string): SnapshotRewrite[] {
  const n = r.count(10);
  const out: SnapshotRewrite[] = [];
  for (let i = 0; i < n; i++) {
    const m = r.u8();
    const t = r.u8();
    if (m > MAX_REWRITE_MATCHES) bad(`rewrite ${i}: ${m} matches, the limit is ${MAX_REWRITE_MATCHES}`);
    if (t < 1 || t > MAX_REWRITE_TARGETS)
      bad(`rewrite ${i}: ${t} targets, expected 1..${MAX_REWRITE_TARGETS}`);
    const matches: string[] = [];
    for (let j = 0; j < m; j++) matches.push(str());
    const targets = [];
    for (let j = 0; j < t; j++) {
      const model = str();
      const weight = r.u32();
      if (weight < 1) bad(`rewrite ${i}: target ${j} has weight 0`);
      targets.push({ model, weight });
    }
    out.push({ matches, targets });
  }
  return out;
}

function readScheduler(r: Reader, str: () => string): SchedulerConfig {
  const profile = str();
  const queueThreshold = r.u32();
  const kv = r.u16();
  if (kv > 10000) bad(`scheduler: kvThreshold ${kv} > 10000`);
  const metricsStalenessMs = r.u32();
  const n = r.u16();
  r.need(12 * n);
  const params: Record<string, number> = {};
  for (let i = 0; i < n; i++) {
    const key = str();
    const value = r.f64();
    if (!Number.isFinite(value)) bad(`scheduler: param ${key} is not finite`);
    if (Object.hasOwn(params, key)) bad(`scheduler: duplicate param ${key}`);
    params[key] = value;
  }
  return { profile, queueThreshold, kvThreshold: kv / 10000, metricsStalenessMs, params };
}

/** The PLUGINS section: counts are checked against what remains before anything is allocated. */
function readPlugins(r: Reader, str: () => string, payload: Uint8Array): SchedulingSection {
  const n = r.u16();
  if (n * 9 > r.remaining()) bad(`plugins: count ${n} exceeds the remaining ${r.remaining()} bytes`);
  const plugins: SchedulingPlugin[] = [];
  for (let i = 0; i < n; i++) {
    const type = str();
    const name = str();
    const m = r.u8();
    if (m * 6 > r.remaining()) bad(`plugin ${i}: ${m} params exceed the remaining bytes`);
    const params: Record<string, PluginParamValue> = {};
    for (let j = 0; j < m; j++) {
      const key = str();
      const kind = r.u8();
      let value: PluginParamValue;
      if (kind === PARAM_KIND.number) {
        value = r.f64();
        if (!Number.isFinite(value)) bad(`plugin ${i}: param ${key} is not finite`);
      } else if (kind === PARAM_KIND.string) value = str();
      else if (kind === PARAM_KIND.bool) {
        const b = r.u8();
        if (b > 1) bad(`plugin ${i}: param ${key} has boolean byte ${b}`);
        value = b === 1;
      } else bad(`plugin ${i}: param ${key} has unknown kind ${kind}`);
      if (Object.hasOwn(params, key)) bad(`plugin ${i}: duplicate param ${key}`);
      params[key] = value;
    }
    plugins.push({ type, name, params });
  }
  const profileCount = r.u8();
  if (profileCount < 1) bad("plugins: no profile");
  if (profileCount * 5 > r.remaining()) bad(`plugins: ${profileCount} profiles exceed the remaining bytes`);
  const profiles: SchedulingProfile[] = [];
  for (let i = 0; i < profileCount; i++) {
    const name = str();
    const m = r.u8();
    if (m * 10 > r.remaining()) bad(`profile ${i}: ${m} entries exceed the remaining bytes`);
    const entries = [];
    for (let j = 0; j < m; j++) {
      const plugin = r.u16();
      const weight = r.f64();
      if (plugin >= n) bad(`profile ${i}: entry ${j} names plugin ${plugin} of ${n}`);
      if (!Number.isFinite(weight) || weight < 0) bad(`profile ${i}: entry ${j} has weight ${weight}`);
      entries.push({ plugin, weight });
    }
    profiles.push({ name, entries });
  }
  const index = (v: number, what: string): number | null => {
    if (v === NO_PLUGIN_INDEX) return null;
    if (v >= n) bad(`plugins: ${what} names plugin ${v} of ${n}`);
    return v;
  };
  const handler = index(r.u16(), "handler");
  const saturation = index(r.u16(), "saturation");
  return { plugins, profiles, handler, saturation, crc: crc32(payload) };
}

/** A byte total: f64 on the wire, an integer 0..2^53-1. */
function readBytes(r: Reader, what: string): number {
  const v = r.f64();
  if (!Number.isSafeInteger(v) || v < 0) bad(`flowControl: ${what} ${v} is not an integer 0..2^53-1`);
  return v;
}

function readLimits(r: Reader, what: string): FlowBandLimits {
  const maxRequests = r.u32();
  const maxBytes = readBytes(r, `${what}.maxBytes`);
  return { maxRequests, maxBytes, ttlMs: r.u32() };
}

/** The FLOW_CONTROL section: bands must come sorted by priority, highest first, without repeats. */
function readFlowControl(r: Reader, payload: Uint8Array): FlowControlSection {
  const maxRequests = r.u32();
  const maxBytes = readBytes(r, "maxBytes");
  const defaultTtlMs = r.u32();
  const code = r.u8();
  const fairness = FAIRNESS_POLICIES[code];
  if (fairness === undefined) bad(`flowControl: unknown fairness ${code}`);
  const defaultBand = readLimits(r, "defaultBand");
  const n = r.u8();
  r.need(20 * n);
  const bands: FlowBand[] = [];
  for (let i = 0; i < n; i++) {
    const priority = r.i32();
    if (i > 0 && priority >= bands[i - 1]!.priority)
      bad(`flowControl: band ${i} priority ${priority} after ${bands[i - 1]!.priority} (must be descending)`);
    bands.push({ priority, ...readLimits(r, `band ${i}`) });
  }
  return { maxRequests, maxBytes, defaultTtlMs, fairness, defaultBand, bands, crc: crc32(payload) };
}

/** JSON form used by golden vectors and /debug/snapshot: generation as a decimal string. */
export function snapshotToJson(s: Snapshot): unknown {
  return { ...s, generation: s.generation.toString() };
}

/** Inverse of snapshotToJson (no validation: the encoder validates). */
export function snapshotFromJson(j: unknown): Snapshot {
  const o = j as Snapshot & { generation: string };
  return { ...o, generation: BigInt(o.generation) };
}
