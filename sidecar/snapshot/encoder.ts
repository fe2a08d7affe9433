// Encodes a Snapshot into the binary format of docs/snapshot-format.md.
// Two passes over the input: the first validates every value and interns strings (so the exact size is
// known), the second writes into one buffer of exactly that size. Invalid input throws a
// SnapshotEncodeError naming the field, because a snapshot the filter would reject must never be sent.
// The sidecar encodes every pool 20 times a second, and from one snapshot to the next only numbers change:
// the endpoint loop builds no strings unless a value is bad, string checks are remembered across calls, and
// an EncoderCache lets an unchanged string table be copied instead of written string by string.
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
  MAX_FLOW_BANDS,
  NEVER_SCRAPED,
  MAX_PLUGINS,
  MAX_PLUGIN_PARAMS,
  MAX_PROFILE_ENTRIES,
  MAX_PROFILES,
  NO_PLUGIN_INDEX,
  PARAM_KIND,
  SNAPSHOT_MAGIC,
  SNAPSHOT_VERSION,
  TAG,
} from "./types.ts";
import type {
  Criticality,
  EngineType,
  FlowBandLimits,
  FlowControlSection,
  SchedulingSection,
  Snapshot,
} from "./types.ts";

export class SnapshotEncodeError extends Error {
  override name = "SnapshotEncodeError";
}

const SECTION_HEADER = 8;
const ENDPOINT_FIXED = 36;
const U64_MAX = (1n << 64n) - 1n;
// A lone surrogate cannot be encoded as UTF-8 (Buffer would silently write U+FFFD instead).
const LONE_SURROGATE = /\p{Cs}/u;

const engineCode = new Map<string, number>(ENGINES.map((e: EngineType, i) => [e, i]));
const criticalityCode = new Map<Criticality, number>(CRITICALITIES.map((c, i) => [c, i]));

function fail(path: string, msg: string): never {
  throw new SnapshotEncodeError(`${path}: ${msg}`);
}

/** checkUint's test without the message (the endpoint loop calls checkUint only when this fails). */
function isUint(v: unknown, max: number, min = 0): boolean {
  return typeof v === "number" && Number.isInteger(v) && v >= min && v <= max;
}

function checkUint(v: unknown, max: number, path: string, min = 0): number {
  if (typeof v !== "number" || !Number.isInteger(v) || v < min || v > max) {
    fail(path, `expected an integer in ${min}..${max}, got ${String(v)}`);
  }
  return v;
}

function checkBool(v: unknown, path: string): void {
  if (typeof v !== "boolean") fail(path, `expected a boolean, got ${String(v)}`);
}

/** 0..1 fraction → 1/10000 units. */
function checkFraction(v: unknown, path: string): number {
  if (typeof v !== "number" || !Number.isFinite(v) || v < 0 || v > 1) {
    fail(path, `expected a number in 0..1, got ${String(v)}`);
  }
  return Math.round(v * 10000);
}

function checkArray<T>(v: T[] | undefined, path: string, max: number, min = 0): T[] {
  if (!Array.isArray(v)) fail(path, "expected an array");
  if (v.length < min || v.length > max) fail(path, `expected ${min}..${max} entries, got ${v.length}`);
  return v;
}

/**
 * Every string already found valid, with its UTF-8 length and its place in the table being built. Pod
 * names and addresses recur in every snapshot, so each is measured and checked once rather than 20 times a
 * second, and interning is one map lookup: `table` says whether `index` belongs to the current encoding
 * (encodes are synchronous, so one table is being built at a time). Emptied between encodings once it grows
 * past a bound (pods come and go, and adapter names come from model servers).
 */
interface KnownString {
  byteLength: number;
  table: number;
  index: number;
}
const knownStrings = new Map<string, KnownString>();
const validAddresses = new Set<string>();
const MEMO_LIMIT = 1 << 16;
const MEMO_BYTES_LIMIT = 8 << 20;
let knownBytes = 0;
let tables = 0;

/** The string's UTF-8 length, or a negative code: -1 not a string, -2 too long, -3 lone surrogate. */
function checkString(s: unknown): number {
  if (typeof s !== "string") return -1;
  const len = Buffer.byteLength(s, "utf8");
  if (len > MAX_STRING_BYTES) return -2;
  if (LONE_SURROGATE.test(s)) return -3;
  return len;
}

function isIpLiteral(s: string): boolean {
  if (validAddresses.has(s)) return true;
  if (isIP(s) === 0) return false;
  validAddresses.add(s);
  return true;
}

/** String table in order of first use; remembers each string's UTF-8 length for the write pass. */
class StringTable {
  readonly strings: string[] = [];
  readonly byteLengths: number[] = [];
  payloadBytes = 4;
  private readonly id: number;

  constructor() {
    if (knownStrings.size >= MEMO_LIMIT || knownBytes >= MEMO_BYTES_LIMIT) {
      knownStrings.clear();
      knownBytes = 0;
    }
    if (validAddresses.size >= MEMO_LIMIT) validAddresses.clear();
    this.id = ++tables;
  }

  intern(s: unknown, path: string): number {
    const i = this.tryIntern(s);
    if (i >= 0) return i;
    const code = checkString(s);
    if (code === -1) fail(path, `expected a string, got ${String(s)}`);
    if (code === -2)
      fail(
        path,
        `string is ${Buffer.byteLength(s as string)} bytes of UTF-8, the limit is ${MAX_STRING_BYTES}`,
      );
    fail(path, "string contains a lone UTF-16 surrogate (not valid UTF-8)");
  }

  /** The string's index, or -1 if it cannot be carried (then intern() with a path says why). */
  tryIntern(s: unknown): number {
    if (typeof s !== "string") return -1;
    let k = knownStrings.get(s);
    if (k === undefined) {
      const len = checkString(s);
      if (len < 0) return -1;
      k = { byteLength: len, table: 0, index: -1 };
      knownStrings.set(s, k);
      knownBytes += len;
    }
    if (k.table === this.id) return k.index;
    k.table = this.id;
    k.index = this.strings.length;
    this.strings.push(s);
    this.byteLengths.push(k.byteLength);
    this.payloadBytes += 2 + k.byteLength;
    return k.index;
  }
}

/**
 * Kept by a caller that encodes the same pool again and again (the sidecar keeps one per pool): when the
 * next snapshot's string table is the same list of strings, its bytes are copied from the last encoding.
 */
export class EncoderCache {
  strings: readonly string[] = [];
  /** The STRINGS section payload (count, then length-prefixed strings) for `strings`. */
  payload?: Uint8Array;
}

function sameStrings(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Everything pass 1 learned that pass 2 needs. */
interface Plan {
  strings: StringTable;
  /** String indexes in exactly the order pass 2 writes them. */
  refs: Uint32Array;
  poolBytes: number;
  endpointsBytes: number;
  modelsBytes: number;
  objectivesBytes: number;
  rewritesBytes: number;
  schedulerBytes: number;
  /** PLUGINS payload length, or -1 when the snapshot has no scheduling section. */
  pluginsBytes: number;
  /** FLOW_CONTROL payload length, or -1 when flow control is off. */
  flowControlBytes: number;
  kvUsage: Uint16Array;
}

function plan(s: Snapshot): Plan {
  const strings = new StringTable();
  const refs: number[] = [];
  const ref = (v: unknown, path: string) => refs.push(strings.intern(v, path));

  if (typeof s.generation !== "bigint" || s.generation < 0n || s.generation > U64_MAX) {
    fail("generation", `expected a u64 bigint, got ${String(s.generation)}`);
  }
  checkUint(s.createdAtMs, Number.MAX_SAFE_INTEGER, "createdAtMs");
  // PLUGINS is planned (and written) right after STRINGS, so its strings take the first indexes: the
  // section's bytes, and so the CRC the filter rebuilds its profiles on, depend only on the config.
  const pluginsBytes = s.scheduling === undefined ? -1 : planScheduling(s.scheduling, ref);
  const flowControlBytes = s.flowControl === undefined ? -1 : planFlowControl(s.flowControl);

  const pool = s.pool;
  if (pool === null || typeof pool !== "object") fail("pool", "missing");
  ref(pool.namespace, "pool.namespace");
  ref(pool.name, "pool.name");
  if (pool.failureMode !== "FailClose" && pool.failureMode !== "FailOpen") {
    fail("pool.failureMode", `expected FailClose or FailOpen, got ${String(pool.failureMode)}`);
  }
  checkBool(pool.strictModels, "pool.strictModels");
  const ports = checkArray(pool.targetPorts, "pool.targetPorts", MAX_TARGET_PORTS, 1);
  ports.forEach((p, i) => checkUint(p, 0xffff, `pool.targetPorts[${i}]`, 1));
  const poolBytes = 11 + 2 * ports.length;

  const endpoints = checkArray(s.endpoints, "endpoints", 0xffffffff);
  const kvUsage = new Uint16Array(endpoints.length);
  // Address string index × 65536 + port: one number per endpoint instead of a key string.
  const seen = new Set<number>();
  let endpointsBytes = 4;
  for (let i = 0; i < endpoints.length; i++) {
    // The common path builds no strings: a value that fails a quick test is handed to the checking function
    // (checkUint, intern, …), which throws with the field's path.
    const e = endpoints[i]!;
    const pod = strings.tryIntern(e.podName);
    if (pod < 0) strings.intern(e.podName, `endpoints[${i}].podName`);
    refs.push(pod);
    const addr = strings.tryIntern(e.address);
    if (addr < 0) strings.intern(e.address, `endpoints[${i}].address`);
    refs.push(addr);
    if (!isIpLiteral(e.address)) fail(`endpoints[${i}].address`, `not an IPv4 or IPv6 literal: ${e.address}`);
    if (!isUint(e.port, 0xffff, 1)) checkUint(e.port, 0xffff, `endpoints[${i}].port`, 1);
    const key = addr * 65536 + e.port;
    if (seen.has(key)) fail(`endpoints[${i}]`, `duplicate endpoint ${e.address}:${e.port}`);
    seen.add(key);
    if (typeof e.ready !== "boolean") checkBool(e.ready, `endpoints[${i}].ready`);
    if (typeof e.stale !== "boolean") checkBool(e.stale, `endpoints[${i}].stale`);
    if (typeof e.hasMetrics !== "boolean") checkBool(e.hasMetrics, `endpoints[${i}].hasMetrics`);
    if (!engineCode.has(e.engine)) fail(`endpoints[${i}].engine`, `unknown engine ${String(e.engine)}`);
    if (e.metricsAgeMs !== null && !isUint(e.metricsAgeMs, NEVER_SCRAPED - 1))
      checkUint(e.metricsAgeMs, NEVER_SCRAPED - 1, `endpoints[${i}].metricsAgeMs`);
    if (!isUint(e.waiting, 0xffffffff)) checkUint(e.waiting, 0xffffffff, `endpoints[${i}].waiting`);
    if (!isUint(e.running, 0xffffffff)) checkUint(e.running, 0xffffffff, `endpoints[${i}].running`);
    const kv = e.kvUsage;
    kvUsage[i] =
      typeof kv === "number" && kv >= 0 && kv <= 1
        ? Math.round(kv * 10000)
        : checkFraction(kv, `endpoints[${i}].kvUsage`);
    if (!isUint(e.maxLoras, 0xffff)) checkUint(e.maxLoras, 0xffff, `endpoints[${i}].maxLoras`);
    if (!isUint(e.kvBlockSize, 0xffff)) checkUint(e.kvBlockSize, 0xffff, `endpoints[${i}].kvBlockSize`);
    if (!isUint(e.kvBlockCount, 0xffffffff))
      checkUint(e.kvBlockCount, 0xffffffff, `endpoints[${i}].kvBlockCount`);
    const run = e.runningAdapters;
    const wait = e.waitingAdapters;
    if (!Array.isArray(run) || run.length > MAX_ADAPTERS)
      checkArray(run, `endpoints[${i}].runningAdapters`, MAX_ADAPTERS);
    if (!Array.isArray(wait) || wait.length > MAX_ADAPTERS)
      checkArray(wait, `endpoints[${i}].waitingAdapters`, MAX_ADAPTERS);
    for (let j = 0; j < run.length; j++) {
      const r = strings.tryIntern(run[j]);
      refs.push(r >= 0 ? r : strings.intern(run[j], `endpoints[${i}].runningAdapters[${j}]`));
    }
    for (let j = 0; j < wait.length; j++) {
      const r = strings.tryIntern(wait[j]);
      refs.push(r >= 0 ? r : strings.intern(wait[j], `endpoints[${i}].waitingAdapters[${j}]`));
    }
    endpointsBytes += ENDPOINT_FIXED + 4 * (run.length + wait.length);
  }

  const models = checkArray(s.models, "models", 0xffffffff);
  const modelNames = new Set<string>();
  let modelsBytes = 4;
  models.forEach((m, i) => {
    const at = `models[${i}]`;
    ref(m.name, `${at}.name`);
    if (modelNames.has(m.name)) fail(`${at}.name`, `duplicate model ${m.name}`);
    modelNames.add(m.name);
    if (!criticalityCode.has(m.criticality)) fail(`${at}.criticality`, `unknown ${String(m.criticality)}`);
    const targets = checkArray(m.targets, `${at}.targets`, MAX_MODEL_TARGETS);
    targets.forEach((t, j) => {
      ref(t.name, `${at}.targets[${j}].name`);
      checkUint(t.weight, 0xffffffff, `${at}.targets[${j}].weight`);
    });
    modelsBytes += 6 + 8 * targets.length;
  });

  const objectives = checkArray(s.objectives, "objectives", 0xffffffff);
  const objectiveNames = new Set<string>();
  objectives.forEach((o, i) => {
    const at = `objectives[${i}]`;
    ref(o.name, `${at}.name`);
    if (objectiveNames.has(o.name)) fail(`${at}.name`, `duplicate objective ${o.name}`);
    objectiveNames.add(o.name);
    if (o.priority !== null) {
      if (!Number.isInteger(o.priority) || o.priority < -0x80000000 || o.priority > 0x7fffffff) {
        fail(`${at}.priority`, `expected an i32 or null, got ${String(o.priority)}`);
      }
    }
  });
  const objectivesBytes = 4 + 9 * objectives.length;

  const rewrites = checkArray(s.rewrites, "rewrites", 0xffffffff);
  let rewritesBytes = 4;
  rewrites.forEach((r, i) => {
    const at = `rewrites[${i}]`;
    const matches = checkArray(r.matches, `${at}.matches`, MAX_REWRITE_MATCHES);
    const targets = checkArray(r.targets, `${at}.targets`, MAX_REWRITE_TARGETS, 1);
    matches.forEach((m, j) => ref(m, `${at}.matches[${j}]`));
    targets.forEach((t, j) => {
      ref(t.model, `${at}.targets[${j}].model`);
      checkUint(t.weight, 0xffffffff, `${at}.targets[${j}].weight`, 1);
    });
    rewritesBytes += 2 + 4 * matches.length + 8 * targets.length;
  });

  const sch = s.scheduler;
  if (sch === null || typeof sch !== "object") fail("scheduler", "missing");
  ref(sch.profile, "scheduler.profile");
  checkUint(sch.queueThreshold, 0xffffffff, "scheduler.queueThreshold");
  checkFraction(sch.kvThreshold, "scheduler.kvThreshold");
  checkUint(sch.metricsStalenessMs, 0xffffffff, "scheduler.metricsStalenessMs");
  if (sch.params === null || typeof sch.params !== "object") fail("scheduler.params", "expected an object");
  const params = Object.entries(sch.params);
  if (params.length > 0xffff) fail("scheduler.params", `too many params (${params.length})`);
  for (const [k, v] of params) {
    ref(k, `scheduler.params key ${k}`);
    if (typeof v !== "number" || !Number.isFinite(v))
      fail(`scheduler.params.${k}`, `expected a finite number, got ${String(v)}`);
  }
  const schedulerBytes = 16 + 12 * params.length;

  return {
    strings,
    refs: Uint32Array.from(refs),
    poolBytes,
    endpointsBytes,
    modelsBytes,
    objectivesBytes,
    rewritesBytes,
    schedulerBytes,
    pluginsBytes,
    flowControlBytes,
    kvUsage,
  };
}

function checkIndex(v: unknown, count: number, path: string, nullable: boolean): void {
  if (nullable && v === null) return;
  if (typeof v !== "number" || !Number.isInteger(v) || v < 0 || v >= count)
    fail(path, `expected a plugin index in 0..${count - 1}${nullable ? " or null" : ""}, got ${String(v)}`);
}

/** Validates the PLUGINS section's structure (not the catalogue: the config loader did that). */
function planScheduling(sch: SchedulingSection, ref: (v: unknown, path: string) => void): number {
  if (sch === null || typeof sch !== "object") fail("scheduling", "expected an object");
  const plugins = checkArray(sch.plugins, "scheduling.plugins", MAX_PLUGINS);
  let bytes = 2;
  plugins.forEach((p, i) => {
    const at = `scheduling.plugins[${i}]`;
    ref(p.type, `${at}.type`);
    ref(p.name, `${at}.name`);
    if (p.params === null || typeof p.params !== "object") fail(`${at}.params`, "expected an object");
    const params = Object.entries(p.params);
    if (params.length > MAX_PLUGIN_PARAMS) fail(`${at}.params`, `too many params (${params.length})`);
    bytes += 9;
    for (const [k, v] of params) {
      ref(k, `${at}.params key ${k}`);
      if (typeof v === "number") {
        if (!Number.isFinite(v)) fail(`${at}.params.${k}`, `expected a finite number, got ${v}`);
        bytes += 13;
      } else if (typeof v === "string") {
        ref(v, `${at}.params.${k}`);
        bytes += 9;
      } else if (typeof v === "boolean") bytes += 6;
      else fail(`${at}.params.${k}`, `expected a number, string or boolean, got ${String(v)}`);
    }
  });
  const profiles = checkArray(sch.profiles, "scheduling.profiles", MAX_PROFILES, 1);
  bytes += 1;
  profiles.forEach((p, i) => {
    const at = `scheduling.profiles[${i}]`;
    ref(p.name, `${at}.name`);
    const entries = checkArray(p.entries, `${at}.entries`, MAX_PROFILE_ENTRIES);
    entries.forEach((e, j) => {
      checkIndex(e.plugin, plugins.length, `${at}.entries[${j}].plugin`, false);
      if (typeof e.weight !== "number" || !Number.isFinite(e.weight) || e.weight < 0)
        fail(`${at}.entries[${j}].weight`, `expected a finite number >= 0, got ${String(e.weight)}`);
    });
    bytes += 5 + 10 * entries.length;
  });
  checkIndex(sch.handler, plugins.length, "scheduling.handler", true);
  checkIndex(sch.saturation, plugins.length, "scheduling.saturation", true);
  return bytes + 4;
}

const fairnessCode = new Map<string, number>(FAIRNESS_POLICIES.map((f, i) => [f, i]));
const FLOW_FIXED = 34;
const FLOW_BAND = 20;

function checkLimits(b: FlowBandLimits, path: string): void {
  if (b === null || typeof b !== "object") fail(path, "expected an object");
  checkUint(b.maxRequests, 0xffffffff, `${path}.maxRequests`);
  checkUint(b.maxBytes, Number.MAX_SAFE_INTEGER, `${path}.maxBytes`);
  checkUint(b.ttlMs, 0xffffffff, `${path}.ttlMs`);
}

/** Validates the FLOW_CONTROL section: limits in range, bands sorted by priority (highest first), unique. */
function planFlowControl(fc: FlowControlSection): number {
  if (fc === null || typeof fc !== "object") fail("flowControl", "expected an object");
  checkUint(fc.maxRequests, 0xffffffff, "flowControl.maxRequests");
  checkUint(fc.maxBytes, Number.MAX_SAFE_INTEGER, "flowControl.maxBytes");
  checkUint(fc.defaultTtlMs, 0xffffffff, "flowControl.defaultTtlMs");
  if (!fairnessCode.has(fc.fairness))
    fail(
      "flowControl.fairness",
      `expected one of ${FAIRNESS_POLICIES.join(", ")}, got ${String(fc.fairness)}`,
    );
  checkLimits(fc.defaultBand, "flowControl.defaultBand");
  const bands = checkArray(fc.bands, "flowControl.bands", MAX_FLOW_BANDS);
  bands.forEach((b, i) => {
    const at = `flowControl.bands[${i}]`;
    checkLimits(b, at);
    if (!Number.isInteger(b.priority) || b.priority < -0x80000000 || b.priority > 0x7fffffff)
      fail(`${at}.priority`, `expected an i32, got ${String(b.priority)}`);
    if (i > 0 && b.priority >= bands[i - 1]!.priority)
      fail(
        `${at}.priority`,
        `bands must be sorted by priority, highest first, without repeats (${b.priority} after ${bands[i - 1]!.priority})`,
      );
  });
  return FLOW_FIXED + FLOW_BAND * bands.length;
}

/** Little-endian cursor over the output buffer. */
class Writer {
  off = 0;
  private ref = 0;
  readonly view: DataView;
  constructor(
    readonly buf: Buffer,
    private readonly refs: Uint32Array,
  ) {
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }
  u8(v: number): void {
    this.view.setUint8(this.off, v);
    this.off += 1;
  }
  u16(v: number): void {
    this.view.setUint16(this.off, v, true);
    this.off += 2;
  }
  u32(v: number): void {
    this.view.setUint32(this.off, v, true);
    this.off += 4;
  }
  i32(v: number): void {
    this.view.setInt32(this.off, v, true);
    this.off += 4;
  }
  u64(v: bigint): void {
    this.view.setBigUint64(this.off, v, true);
    this.off += 8;
  }
  f64(v: number): void {
    this.view.setFloat64(this.off, v, true);
    this.off += 8;
  }
  /** Writes the next string reference planned in pass 1. */
  str(): void {
    this.u32(this.refs[this.ref++]!);
  }
  section(tag: number, length: number): void {
    this.u16(tag);
    this.u16(0);
    this.u32(length);
  }
}

function writeScheduling(w: Writer, sch: SchedulingSection, length: number): void {
  w.section(TAG.plugins, length);
  w.u16(sch.plugins.length);
  for (const p of sch.plugins) {
    w.str(); // type
    w.str(); // name
    const params = Object.values(p.params);
    w.u8(params.length);
    for (const v of params) {
      w.str(); // key
      if (typeof v === "number") {
        w.u8(PARAM_KIND.number);
        w.f64(v);
      } else if (typeof v === "string") {
        w.u8(PARAM_KIND.string);
        w.str();
      } else {
        w.u8(PARAM_KIND.bool);
        w.u8(v ? 1 : 0);
      }
    }
  }
  w.u8(sch.profiles.length);
  for (const prof of sch.profiles) {
    w.str();
    w.u8(prof.entries.length);
    for (const e of prof.entries) {
      w.u16(e.plugin);
      w.f64(e.weight);
    }
  }
  w.u16(sch.handler ?? NO_PLUGIN_INDEX);
  w.u16(sch.saturation ?? NO_PLUGIN_INDEX);
}

function writeFlowControl(w: Writer, fc: FlowControlSection, length: number): void {
  w.section(TAG.flowControl, length);
  w.u32(fc.maxRequests);
  w.f64(fc.maxBytes);
  w.u32(fc.defaultTtlMs);
  w.u8(fairnessCode.get(fc.fairness)!);
  w.u32(fc.defaultBand.maxRequests);
  w.f64(fc.defaultBand.maxBytes);
  w.u32(fc.defaultBand.ttlMs);
  w.u8(fc.bands.length);
  for (const b of fc.bands) {
    w.i32(b.priority);
    w.u32(b.maxRequests);
    w.f64(b.maxBytes);
    w.u32(b.ttlMs);
  }
}

/** Encodes `s`; pass the same `cache` for successive snapshots of one pool to reuse its string table. */
export function encodeSnapshot(s: Snapshot, cache?: EncoderCache): Uint8Array {
  const p = plan(s);
  const total =
    HEADER_LENGTH +
    7 * SECTION_HEADER +
    (p.pluginsBytes < 0 ? 0 : SECTION_HEADER + p.pluginsBytes) +
    (p.flowControlBytes < 0 ? 0 : SECTION_HEADER + p.flowControlBytes) +
    p.strings.payloadBytes +
    p.poolBytes +
    p.endpointsBytes +
    p.modelsBytes +
    p.objectivesBytes +
    p.rewritesBytes +
    p.schedulerBytes;
  if (total > 0xffffffff) fail("snapshot", `too large (${total} bytes)`);
  const w = new Writer(Buffer.alloc(total), p.refs);

  w.u32(SNAPSHOT_MAGIC);
  w.u16(SNAPSHOT_VERSION);
  w.u16(HEADER_LENGTH);
  w.u32(total);
  w.u32(0); // crc32, filled in last
  w.u64(s.generation);
  w.u64(BigInt(s.createdAtMs));

  const st = p.strings;
  w.section(TAG.strings, st.payloadBytes);
  const payloadStart = w.off;
  if (cache?.payload !== undefined && sameStrings(cache.strings, st.strings)) {
    w.buf.set(cache.payload, w.off);
    w.off += cache.payload.length;
  } else {
    w.u32(st.strings.length);
    for (let i = 0; i < st.strings.length; i++) {
      const len = st.byteLengths[i]!;
      w.u16(len);
      w.buf.write(st.strings[i]!, w.off, len, "utf8");
      w.off += len;
    }
    if (cache !== undefined) {
      cache.strings = st.strings;
      cache.payload = Buffer.from(w.buf.subarray(payloadStart, w.off)); // a copy: the output goes to the caller
    }
  }

  if (s.scheduling !== undefined) writeScheduling(w, s.scheduling, p.pluginsBytes);
  if (s.flowControl !== undefined) writeFlowControl(w, s.flowControl, p.flowControlBytes);

  const pool = s.pool;
  w.section(TAG.pool, p.poolBytes);
  w.str();
  w.str();
  w.u8(pool.failureMode === "FailOpen" ? 1 : 0);
  w.u8(pool.strictModels ? 1 : 0);
  w.u8(pool.targetPorts.length);
  for (const port of pool.targetPorts) w.u16(port);

  w.section(TAG.endpoints, p.endpointsBytes);
  w.u32(s.endpoints.length);
  for (let i = 0; i < s.endpoints.length; i++) {
    const e = s.endpoints[i]!;
    w.str();
    w.str();
    w.u16(e.port);
    w.u8((e.ready ? 1 : 0) | (e.stale ? 2 : 0) | (e.hasMetrics ? 4 : 0));
    w.u8(engineCode.get(e.engine)!);
    w.u32(e.metricsAgeMs === null ? NEVER_SCRAPED : e.metricsAgeMs);
    w.u32(e.waiting);
    w.u32(e.running);
    w.u16(p.kvUsage[i]!);
    w.u16(e.maxLoras);
    w.u16(e.kvBlockSize);
    w.u32(e.kvBlockCount);
    w.u8(e.runningAdapters.length);
    w.u8(e.waitingAdapters.length);
    for (let j = 0; j < e.runningAdapters.length + e.waitingAdapters.length; j++) w.str();
  }

  w.section(TAG.models, p.modelsBytes);
  w.u32(s.models.length);
  for (const m of s.models) {
    w.str();
    w.u8(criticalityCode.get(m.criticality)!);
    w.u8(m.targets.length);
    for (const t of m.targets) {
      w.str();
      w.u32(t.weight);
    }
  }

  w.section(TAG.objectives, p.objectivesBytes);
  w.u32(s.objectives.length);
  for (const o of s.objectives) {
    w.str();
    w.u8(o.priority === null ? 0 : 1);
    w.i32(o.priority ?? 0);
  }

  w.section(TAG.rewrites, p.rewritesBytes);
  w.u32(s.rewrites.length);
  for (const r of s.rewrites) {
    w.u8(r.matches.length);
    w.u8(r.targets.length);
    for (let j = 0; j < r.matches.length; j++) w.str();
    for (const t of r.targets) {
      w.str();
      w.u32(t.weight);
    }
  }

  const sch = s.scheduler;
  const params = Object.values(sch.params);
  w.section(TAG.scheduler, p.schedulerBytes);
  w.str();
  w.u32(sch.queueThreshold);
  w.u16(Math.round(sch.kvThreshold * 10000));
  w.u32(sch.metricsStalenessMs);
  w.u16(params.length);
  for (const v of params) {
    w.str();
    w.f64(v);
  }

  if (w.off !== total) throw new Error(`snapshot encoder bug: wrote ${w.off} of ${total} bytes`);
  w.view.setUint32(12, crc32(w.buf.subarray(16)), true);
  return w.buf;
}
