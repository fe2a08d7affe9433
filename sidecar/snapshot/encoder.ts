// Encodes a Snapshot into the binary format of docs/snapshot-format.md.
// Two passes over the input: the first validates every value and interns strings (so the exact size is
// known), the second writes into one buffer of exactly that size. Invalid input throws a
// SnapshotEncodeError naming the field, because a snapshot the filter would reject must never be sent.
import { crc32 } from "node:zlib";
import { isIP } from "node:net";
import {
  CRITICALITIES,
  ENGINES,
  HEADER_LENGTH,
  MAX_ADAPTERS,
  MAX_MODEL_TARGETS,
  MAX_REWRITE_MATCHES,
  MAX_REWRITE_TARGETS,
  MAX_STRING_BYTES,
  MAX_TARGET_PORTS,
  NEVER_SCRAPED,
  SNAPSHOT_MAGIC,
  SNAPSHOT_VERSION,
  TAG,
} from "./types.ts";
import type { Criticality, EngineType, Snapshot } from "./types.ts";

export class SnapshotEncodeError extends Error {
  override name = "SnapshotEncodeError";
}

const SECTION_HEADER = 8;
const ENDPOINT_FIXED = 36;
const U64_MAX = (1n << 64n) - 1n;
// A lone surrogate cannot be encoded as UTF-8 (Buffer would silently write U+FFFD instead).
const LONE_SURROGATE = /\p{Cs}/u;

const engineCode = new Map<EngineType, number>(ENGINES.map((e, i) => [e, i]));
const criticalityCode = new Map<Criticality, number>(CRITICALITIES.map((c, i) => [c, i]));

function fail(path: string, msg: string): never {
  throw new SnapshotEncodeError(`${path}: ${msg}`);
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

/** String table in order of first use; remembers each string's UTF-8 length for the write pass. */
class StringTable {
  readonly index = new Map<string, number>();
  readonly strings: string[] = [];
  readonly byteLengths: number[] = [];
  payloadBytes = 4;

  intern(s: unknown, path: string): number {
    if (typeof s !== "string") fail(path, `expected a string, got ${String(s)}`);
    const known = this.index.get(s);
    if (known !== undefined) return known;
    const len = Buffer.byteLength(s, "utf8");
    if (len > MAX_STRING_BYTES)
      fail(path, `string is ${len} bytes of UTF-8, the limit is ${MAX_STRING_BYTES}`);
    if (LONE_SURROGATE.test(s)) fail(path, "string contains a lone UTF-16 surrogate (not valid UTF-8)");
    const i = this.strings.length;
    this.index.set(s, i);
    this.strings.push(s);
    this.byteLengths.push(len);
    this.payloadBytes += 2 + len;
    return i;
  }
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
  const seen = new Set<string>();
  let endpointsBytes = 4;
  for (let i = 0; i < endpoints.length; i++) {
    const e = endpoints[i]!;
    const at = `endpoints[${i}]`;
    ref(e.podName, `${at}.podName`);
    const addrIndex = strings.intern(e.address, `${at}.address`);
    refs.push(addrIndex);
    if (isIP(e.address) === 0) fail(`${at}.address`, `not an IPv4 or IPv6 literal: ${e.address}`);
    checkUint(e.port, 0xffff, `${at}.port`, 1);
    const key = `${addrIndex}:${e.port}`;
    if (seen.has(key)) fail(at, `duplicate endpoint ${e.address}:${e.port}`);
    seen.add(key);
    checkBool(e.ready, `${at}.ready`);
    checkBool(e.stale, `${at}.stale`);
    checkBool(e.hasMetrics, `${at}.hasMetrics`);
    if (!engineCode.has(e.engine)) fail(`${at}.engine`, `unknown engine ${String(e.engine)}`);
    if (e.metricsAgeMs !== null) checkUint(e.metricsAgeMs, NEVER_SCRAPED - 1, `${at}.metricsAgeMs`);
    checkUint(e.waiting, 0xffffffff, `${at}.waiting`);
    checkUint(e.running, 0xffffffff, `${at}.running`);
    kvUsage[i] = checkFraction(e.kvUsage, `${at}.kvUsage`);
    checkUint(e.maxLoras, 0xffff, `${at}.maxLoras`);
    checkUint(e.kvBlockSize, 0xffff, `${at}.kvBlockSize`);
    checkUint(e.kvBlockCount, 0xffffffff, `${at}.kvBlockCount`);
    const run = checkArray(e.runningAdapters, `${at}.runningAdapters`, MAX_ADAPTERS);
    const wait = checkArray(e.waitingAdapters, `${at}.waitingAdapters`, MAX_ADAPTERS);
    for (let j = 0; j < run.length; j++) ref(run[j], `${at}.runningAdapters[${j}]`);
    for (let j = 0; j < wait.length; j++) ref(wait[j], `${at}.waitingAdapters[${j}]`);
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
    kvUsage,
  };
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

export function encodeSnapshot(s: Snapshot): Uint8Array {
  const p = plan(s);
  const total =
    HEADER_LENGTH +
    7 * SECTION_HEADER +
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
  w.u32(st.strings.length);
  for (let i = 0; i < st.strings.length; i++) {
    const len = st.byteLengths[i]!;
    w.u16(len);
    w.buf.write(st.strings[i]!, w.off, len, "utf8");
    w.off += len;
  }

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
