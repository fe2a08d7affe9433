// Snapshot decoder (docs/snapshot-format.md). Pure: no host calls, so as-pect and the Node probe can
// exercise it. Never traps on any input: every read is bounds-checked, every count is checked against
// the bytes that remain before anything is allocated, and the first problem rejects the whole snapshot.

import { crc32 } from "./crc32.ts";
import { isValidUtf8 } from "./utf8.ts";
import { isIPv4, isIPv6, hostPort } from "./ip.ts";
import { Reader } from "./reader.ts";
import {
  Endpoint,
  FAIRNESS_GLOBAL_STRICT,
  FlowBand,
  FlowControlSpec,
  Model,
  NEVER_SCRAPED,
  NO_PLUGIN,
  Objective,
  PARAM_BOOL,
  PARAM_NUMBER,
  PARAM_STRING,
  PluginParam,
  PluginSpec,
  Pool,
  ProfileEntry,
  ProfileSpec,
  Rewrite,
  SchedulerConfig,
  SchedulingSpec,
  Snapshot,
  WeightedName,
} from "./types.ts";

export const HEADER_LENGTH: u32 = 32;
export const MAGIC: u32 = 0x53505045; // "EPPS" read little-endian
/** The version the sidecar writes; version 1 (no PLUGINS section) is still read. */
export const FORMAT_VERSION: u32 = 2;
export const FORMAT_VERSION_1: u32 = 1;
export const MAX_STRING_BYTES: u32 = 1024;
const MAX_SAFE_INTEGER: u64 = 9007199254740991;

const TAG_STRINGS: u32 = 1;
const TAG_POOL: u32 = 2;
const TAG_ENDPOINTS: u32 = 3;
const TAG_MODELS: u32 = 4;
const TAG_OBJECTIVES: u32 = 5;
const TAG_REWRITES: u32 = 6;
const TAG_SCHEDULER: u32 = 7;
const TAG_PLUGINS: u32 = 8;
const TAG_FLOW_CONTROL: u32 = 9;
const FLOW_BAND_BYTES: u32 = 20;
const NO_PLUGIN_INDEX: u32 = 0xffff;
const ENDPOINT_FIXED: u32 = 36;

/** Why a snapshot was rejected; 0 = accepted. Stable numbers, the probe reports them. */
export enum DecodeError {
  None = 0,
  Truncated = 1,
  BadMagic = 2,
  BadVersion = 3,
  BadLength = 4,
  BadChecksum = 5,
  BadSection = 6,
  MissingSection = 7,
  BadString = 8,
  BadStringRef = 9,
  BadPool = 10,
  BadEndpoint = 11,
  DuplicateEndpoint = 12,
  BadModel = 13,
  BadObjective = 14,
  BadRewrite = 15,
  BadScheduler = 16,
  BadPlugins = 17,
  BadFlowControl = 18,
}

/** Either a snapshot or an error code with a message for the 400 body and the log. */
export class DecodeResult {
  snapshot: Snapshot | null = null;
  error: DecodeError = DecodeError.None;
  message: string = "";
}

class Decoder {
  result: DecodeResult = new DecodeResult();
  strings: string[] | null = null;

  fail(code: DecodeError, message: string): bool {
    if (this.result.error == DecodeError.None) {
      this.result.error = code;
      this.result.message = message;
    }
    return false;
  }

  /** A string reference; "" with an error latched when out of range. */
  str(r: Reader, what: string): string {
    const i = r.u32();
    const table = this.strings!;
    if (r.bad) return "";
    if (i >= <u32>table.length) {
      this.fail(DecodeError.BadStringRef, what + ": string index " + i.toString() + " out of range");
      return "";
    }
    return unchecked(table[i]);
  }

  /** Count field followed by at least count × minBytes bytes. */
  count(r: Reader, minBytes: u32, code: DecodeError, what: string): i32 {
    const n = r.u32();
    if (r.bad) return this.fail(code, what + ": truncated") ? 0 : -1;
    if (<u64>n * <u64>minBytes > <u64>r.remaining()) {
      this.fail(code, what + ": count " + n.toString() + " exceeds the remaining bytes");
      return -1;
    }
    return <i32>n;
  }

  strings_(r: Reader): bool {
    const n = this.count(r, 2, DecodeError.BadString, "strings");
    if (n < 0) return false;
    const table = new Array<string>(n);
    for (let i = 0; i < n; i++) {
      const len = r.u16();
      if (r.bad || len > r.remaining()) return this.fail(DecodeError.BadString, "strings: truncated");
      if (len > MAX_STRING_BYTES)
        return this.fail(DecodeError.BadString, "string " + i.toString() + " too long");
      const p = r.base + r.pos;
      if (!isValidUtf8(p, len))
        return this.fail(DecodeError.BadString, "string " + i.toString() + " is not valid UTF-8");
      unchecked((table[i] = String.UTF8.decodeUnsafe(p, len)));
      r.pos += len;
    }
    this.strings = table;
    return true;
  }

  pool(r: Reader, out: Pool): bool {
    out.namespace = this.str(r, "pool.namespace");
    out.name = this.str(r, "pool.name");
    const failureMode = r.u8();
    const flags = r.u8();
    const ports = r.u8();
    if (r.bad) return this.fail(DecodeError.BadPool, "pool: truncated");
    if (failureMode > 1)
      return this.fail(DecodeError.BadPool, "pool: unknown failureMode " + failureMode.toString());
    if (ports < 1 || ports > 8)
      return this.fail(DecodeError.BadPool, "pool: portCount " + ports.toString() + " not in 1..8");
    out.failOpen = failureMode == 1;
    out.strictModels = (flags & 1) != 0;
    const list = new Array<u16>(ports);
    for (let i: u32 = 0; i < ports; i++) unchecked((list[i] = <u16>r.u16()));
    if (r.bad) return this.fail(DecodeError.BadPool, "pool: truncated");
    out.targetPorts = list;
    return true;
  }

  adapters(r: Reader, n: u32, what: string): string[] {
    const list = new Array<string>(n);
    for (let i: u32 = 0; i < n; i++) unchecked((list[i] = this.str(r, what)));
    return list;
  }

  endpoints(r: Reader, out: Snapshot): bool {
    const n = this.count(r, ENDPOINT_FIXED, DecodeError.BadEndpoint, "endpoints");
    if (n < 0) return false;
    const list = new Array<Endpoint>(n);
    const seen = new Set<string>();
    for (let i = 0; i < n; i++) {
      const what = "endpoint " + i.toString();
      const e = new Endpoint();
      e.podName = this.str(r, what + ".podName");
      e.address = this.str(r, what + ".address");
      const port = r.u16();
      const flags = r.u8();
      const engine = r.u8();
      e.metricsAgeMs = r.u32();
      e.waiting = r.u32();
      e.running = r.u32();
      const kv = r.u16();
      e.maxLoras = <u16>r.u16();
      e.kvBlockSize = <u16>r.u16();
      e.kvBlockCount = r.u32();
      const nRun = r.u8();
      const nWait = r.u8();
      if (r.bad) return this.fail(DecodeError.BadEndpoint, what + ": truncated");
      if (this.result.error != DecodeError.None) return false;
      if (<u64>(nRun + nWait) * 4 > <u64>r.remaining())
        return this.fail(DecodeError.BadEndpoint, what + ": truncated adapters");
      e.runningAdapters = this.adapters(r, nRun, what + ".runningAdapters");
      e.waitingAdapters = this.adapters(r, nWait, what + ".waitingAdapters");
      if (this.result.error != DecodeError.None) return false;
      if (!isIPv4(e.address) && !isIPv6(e.address))
        return this.fail(DecodeError.BadEndpoint, what + ": address is not an IP literal");
      if (port == 0) return this.fail(DecodeError.BadEndpoint, what + ": port 0");
      // An engine code above ENGINE_NAMES is a newer sidecar's engine: kept, printed as "unknown".
      if (kv > 10000)
        return this.fail(DecodeError.BadEndpoint, what + ": kvUsage " + kv.toString() + " > 10000");
      e.port = <u16>port;
      e.ready = (flags & 1) != 0;
      e.stale = (flags & 2) != 0;
      e.hasMetrics = (flags & 4) != 0;
      e.engine = <u8>engine;
      e.kvUsage = <u16>kv;
      e.hostPort = hostPort(e.address, e.port);
      if (seen.has(e.hostPort))
        return this.fail(DecodeError.DuplicateEndpoint, what + ": duplicate " + e.hostPort);
      seen.add(e.hostPort);
      unchecked((list[i] = e));
    }
    out.endpoints = list;
    return true;
  }

  weighted(r: Reader, n: u32, what: string): WeightedName[] {
    const list = new Array<WeightedName>(n);
    for (let i: u32 = 0; i < n; i++) {
      const t = new WeightedName();
      t.name = this.str(r, what);
      t.weight = r.u32();
      unchecked((list[i] = t));
    }
    return list;
  }

  models(r: Reader, out: Snapshot): bool {
    const n = this.count(r, 6, DecodeError.BadModel, "models");
    if (n < 0) return false;
    const list = new Array<Model>(n);
    const names = new Set<string>();
    for (let i = 0; i < n; i++) {
      const what = "model " + i.toString();
      const m = new Model();
      m.name = this.str(r, what + ".name");
      const crit = r.u8();
      const count = r.u8();
      if (r.bad) return this.fail(DecodeError.BadModel, what + ": truncated");
      if (this.result.error != DecodeError.None) return false;
      if (names.has(m.name)) return this.fail(DecodeError.BadModel, what + ": duplicate name " + m.name);
      names.add(m.name);
      if (crit > 3) return this.fail(DecodeError.BadModel, what + ": unknown criticality " + crit.toString());
      if (count > 10)
        return this.fail(DecodeError.BadModel, what + ": " + count.toString() + " targets, the limit is 10");
      if (<u64>count * 8 > <u64>r.remaining())
        return this.fail(DecodeError.BadModel, what + ": truncated targets");
      m.criticality = <u8>crit;
      m.targets = this.weighted(r, count, what + ".targets");
      if (r.bad) return this.fail(DecodeError.BadModel, what + ": truncated");
      if (this.result.error != DecodeError.None) return false;
      unchecked((list[i] = m));
    }
    out.models = list;
    return true;
  }

  objectives(r: Reader, out: Snapshot): bool {
    const n = this.count(r, 9, DecodeError.BadObjective, "objectives");
    if (n < 0) return false;
    const list = new Array<Objective>(n);
    const names = new Set<string>();
    for (let i = 0; i < n; i++) {
      const what = "objective " + i.toString();
      const o = new Objective();
      o.name = this.str(r, what + ".name");
      const flags = r.u8();
      const priority = <i32>r.u32();
      if (r.bad) return this.fail(DecodeError.BadObjective, what + ": truncated");
      if (this.result.error != DecodeError.None) return false;
      if (names.has(o.name)) return this.fail(DecodeError.BadObjective, what + ": duplicate name " + o.name);
      names.add(o.name);
      o.hasPriority = (flags & 1) != 0;
      o.priority = o.hasPriority ? priority : 0;
      unchecked((list[i] = o));
    }
    out.objectives = list;
    return true;
  }

  rewrites(r: Reader, out: Snapshot): bool {
    const n = this.count(r, 10, DecodeError.BadRewrite, "rewrites");
    if (n < 0) return false;
    const list = new Array<Rewrite>(n);
    for (let i = 0; i < n; i++) {
      const what = "rewrite " + i.toString();
      const m = r.u8();
      const t = r.u8();
      if (r.bad) return this.fail(DecodeError.BadRewrite, what + ": truncated");
      if (m > 16)
        return this.fail(DecodeError.BadRewrite, what + ": " + m.toString() + " matches, the limit is 16");
      if (t < 1 || t > 16)
        return this.fail(DecodeError.BadRewrite, what + ": " + t.toString() + " targets, expected 1..16");
      if (<u64>m * 4 + <u64>t * 8 > <u64>r.remaining())
        return this.fail(DecodeError.BadRewrite, what + ": truncated");
      const rule = new Rewrite();
      rule.matches = this.adapters(r, m, what + ".matches");
      rule.targets = this.weighted(r, t, what + ".targets");
      if (r.bad) return this.fail(DecodeError.BadRewrite, what + ": truncated");
      if (this.result.error != DecodeError.None) return false;
      for (let j: u32 = 0; j < t; j++) {
        if (unchecked(rule.targets[j]).weight < 1)
          return this.fail(DecodeError.BadRewrite, what + ": target " + j.toString() + " has weight 0");
      }
      unchecked((list[i] = rule));
    }
    out.rewrites = list;
    return true;
  }

  scheduler(r: Reader, out: SchedulerConfig): bool {
    out.profile = this.str(r, "scheduler.profile");
    out.queueThreshold = r.u32();
    const kv = r.u16();
    out.metricsStalenessMs = r.u32();
    const n = r.u16();
    if (r.bad) return this.fail(DecodeError.BadScheduler, "scheduler: truncated");
    if (this.result.error != DecodeError.None) return false;
    if (kv > 10000)
      return this.fail(DecodeError.BadScheduler, "scheduler: kvThreshold " + kv.toString() + " > 10000");
    out.kvThreshold = <u16>kv;
    if (<u64>n * 12 > <u64>r.remaining())
      return this.fail(DecodeError.BadScheduler, "scheduler: truncated params");
    const keys = new Array<string>(n);
    const values = new Array<f64>(n);
    const seen = new Set<string>();
    for (let i: u32 = 0; i < n; i++) {
      const key = this.str(r, "scheduler.params");
      const v = r.f64();
      if (this.result.error != DecodeError.None) return false;
      if (!isFinite(v))
        return this.fail(DecodeError.BadScheduler, "scheduler: param " + key + " is not finite");
      if (seen.has(key)) return this.fail(DecodeError.BadScheduler, "scheduler: duplicate param " + key);
      seen.add(key);
      unchecked((keys[i] = key));
      unchecked((values[i] = v));
    }
    out.paramKeys = keys;
    out.paramValues = values;
    return true;
  }

  /** A plugin index, NO_PLUGIN for 0xFFFF; -2 (with an error latched) when out of range. */
  pluginIndex(v: u32, count: u32, what: string): i32 {
    if (v == NO_PLUGIN_INDEX) return NO_PLUGIN;
    if (v >= count) {
      this.fail(
        DecodeError.BadPlugins,
        "plugins: " + what + " names plugin " + v.toString() + " of " + count.toString(),
      );
      return -2;
    }
    return <i32>v;
  }

  param(r: Reader, what: string): PluginParam | null {
    const p = new PluginParam();
    p.key = this.str(r, what);
    const kind = r.u8();
    if (r.bad) {
      this.fail(DecodeError.BadPlugins, what + ": truncated");
      return null;
    }
    if (this.result.error != DecodeError.None) return null;
    if (kind == PARAM_NUMBER) {
      p.num = r.f64();
      if (!r.bad && !isFinite(p.num)) {
        this.fail(DecodeError.BadPlugins, what + ": param " + p.key + " is not finite");
        return null;
      }
    } else if (kind == PARAM_STRING) {
      p.str = this.str(r, what);
    } else if (kind == PARAM_BOOL) {
      const b = r.u8();
      if (!r.bad && b > 1) {
        this.fail(DecodeError.BadPlugins, what + ": param " + p.key + " has boolean byte " + b.toString());
        return null;
      }
      p.flag = b == 1;
    } else {
      this.fail(DecodeError.BadPlugins, what + ": param " + p.key + " has unknown kind " + kind.toString());
      return null;
    }
    if (r.bad) {
      this.fail(DecodeError.BadPlugins, what + ": truncated");
      return null;
    }
    if (this.result.error != DecodeError.None) return null;
    p.kind = <u8>kind;
    return p;
  }

  plugins(r: Reader, out: Snapshot, start: u32, length: u32): bool {
    const n = r.u16();
    if (r.bad) return this.fail(DecodeError.BadPlugins, "plugins: truncated");
    if (<u64>n * 9 > <u64>r.remaining())
      return this.fail(
        DecodeError.BadPlugins,
        "plugins: count " + n.toString() + " exceeds the remaining bytes",
      );
    const spec = new SchedulingSpec();
    const plugins = new Array<PluginSpec>(n);
    for (let i: u32 = 0; i < n; i++) {
      const what = "plugin " + i.toString();
      const p = new PluginSpec();
      p.type = this.str(r, what + ".type");
      p.name = this.str(r, what + ".name");
      const m = r.u8();
      if (r.bad) return this.fail(DecodeError.BadPlugins, what + ": truncated");
      if (this.result.error != DecodeError.None) return false;
      if (<u64>m * 6 > <u64>r.remaining())
        return this.fail(
          DecodeError.BadPlugins,
          what + ": " + m.toString() + " params exceed the remaining bytes",
        );
      const params = new Array<PluginParam>(m);
      const keys = new Set<string>();
      for (let j: u32 = 0; j < m; j++) {
        const param = this.param(r, what);
        if (param == null) return false;
        if (keys.has(param.key))
          return this.fail(DecodeError.BadPlugins, what + ": duplicate param " + param.key);
        keys.add(param.key);
        unchecked((params[j] = param));
      }
      p.params = params;
      unchecked((plugins[i] = p));
    }
    const profileCount = r.u8();
    if (r.bad) return this.fail(DecodeError.BadPlugins, "plugins: truncated");
    if (profileCount < 1) return this.fail(DecodeError.BadPlugins, "plugins: no profile");
    if (<u64>profileCount * 5 > <u64>r.remaining())
      return this.fail(
        DecodeError.BadPlugins,
        "plugins: " + profileCount.toString() + " profiles exceed the remaining bytes",
      );
    const profiles = new Array<ProfileSpec>(profileCount);
    for (let i: u32 = 0; i < profileCount; i++) {
      const what = "profile " + i.toString();
      const prof = new ProfileSpec();
      prof.name = this.str(r, what + ".name");
      const m = r.u8();
      if (r.bad) return this.fail(DecodeError.BadPlugins, what + ": truncated");
      if (this.result.error != DecodeError.None) return false;
      if (<u64>m * 10 > <u64>r.remaining())
        return this.fail(
          DecodeError.BadPlugins,
          what + ": " + m.toString() + " entries exceed the remaining bytes",
        );
      const entries = new Array<ProfileEntry>(m);
      for (let j: u32 = 0; j < m; j++) {
        const e = new ProfileEntry();
        const plugin = r.u16();
        e.weight = r.f64();
        if (r.bad) return this.fail(DecodeError.BadPlugins, what + ": truncated");
        if (plugin >= n)
          return this.fail(
            DecodeError.BadPlugins,
            what + ": entry " + j.toString() + " names plugin " + plugin.toString() + " of " + n.toString(),
          );
        if (!isFinite(e.weight) || e.weight < 0)
          return this.fail(DecodeError.BadPlugins, what + ": entry " + j.toString() + " has a bad weight");
        e.plugin = <i32>plugin;
        unchecked((entries[j] = e));
      }
      prof.entries = entries;
      unchecked((profiles[i] = prof));
    }
    const handler = r.u16();
    const saturation = r.u16();
    if (r.bad) return this.fail(DecodeError.BadPlugins, "plugins: truncated");
    spec.handler = this.pluginIndex(handler, n, "handler");
    spec.saturation = this.pluginIndex(saturation, n, "saturation");
    if (this.result.error != DecodeError.None) return false;
    spec.plugins = plugins;
    spec.profiles = profiles;
    spec.crc = crc32(r.base + start, length);
    out.scheduling = spec;
    return true;
  }

  /** A byte total: f64 on the wire, an integer 0..2^53-1; -1 (with an error latched) otherwise. */
  byteLimit(r: Reader, what: string): f64 {
    const v = r.f64();
    if (r.bad) return 0;
    if (!isFinite(v) || v < 0 || v > <f64>MAX_SAFE_INTEGER || v != Math.floor(v)) {
      this.fail(DecodeError.BadFlowControl, "flowControl: " + what + " is not an integer 0..2^53-1");
      return -1;
    }
    return v;
  }

  limits(r: Reader, out: FlowBand, what: string): bool {
    out.maxRequests = r.u32();
    out.maxBytes = this.byteLimit(r, what + ".maxBytes");
    out.ttlMs = r.u32();
    if (r.bad) return this.fail(DecodeError.BadFlowControl, "flowControl: truncated");
    return this.result.error == DecodeError.None;
  }

  flowControl(r: Reader, out: Snapshot, start: u32, length: u32): bool {
    const spec = new FlowControlSpec();
    spec.maxRequests = r.u32();
    spec.maxBytes = this.byteLimit(r, "maxBytes");
    spec.defaultTtlMs = r.u32();
    const fairness = r.u8();
    if (r.bad) return this.fail(DecodeError.BadFlowControl, "flowControl: truncated");
    if (this.result.error != DecodeError.None) return false;
    if (fairness > FAIRNESS_GLOBAL_STRICT)
      return this.fail(DecodeError.BadFlowControl, "flowControl: unknown fairness " + fairness.toString());
    spec.fairness = <u8>fairness;
    if (!this.limits(r, spec.defaultBand, "defaultBand")) return false;
    const n = r.u8();
    if (r.bad) return this.fail(DecodeError.BadFlowControl, "flowControl: truncated");
    if (<u64>n * FLOW_BAND_BYTES > <u64>r.remaining())
      return this.fail(
        DecodeError.BadFlowControl,
        "flowControl: " + n.toString() + " bands exceed the remaining bytes",
      );
    const bands = new Array<FlowBand>(n);
    for (let i: u32 = 0; i < n; i++) {
      const b = new FlowBand();
      b.priority = <i32>r.u32();
      if (i > 0 && b.priority >= unchecked(bands[i - 1]).priority)
        return this.fail(
          DecodeError.BadFlowControl,
          "flowControl: band " +
            i.toString() +
            " priority " +
            b.priority.toString() +
            " is not below the previous band's",
        );
      if (!this.limits(r, b, "band " + i.toString())) return false;
      unchecked((bands[i] = b));
    }
    spec.bands = bands;
    spec.crc = crc32(r.base + start, length);
    out.flowControl = spec;
    return true;
  }

  section(tag: u32, r: Reader, out: Snapshot): bool {
    if (tag == TAG_STRINGS) return this.strings_(r);
    if (tag == TAG_POOL) return this.pool(r, out.pool);
    if (tag == TAG_ENDPOINTS) return this.endpoints(r, out);
    if (tag == TAG_MODELS) return this.models(r, out);
    if (tag == TAG_OBJECTIVES) return this.objectives(r, out);
    if (tag == TAG_REWRITES) return this.rewrites(r, out);
    if (tag == TAG_SCHEDULER) return this.scheduler(r, out.scheduler);
    if (tag == TAG_PLUGINS) return this.plugins(r, out, r.pos, r.end - r.pos);
    return this.flowControl(r, out, r.pos, r.end - r.pos);
  }

  decode(ptr: usize, len: u32): bool {
    if (len < HEADER_LENGTH)
      return this.fail(DecodeError.Truncated, "too short for a header (" + len.toString() + " bytes)");
    const h = new Reader(ptr, 0, len);
    if (h.u32() != MAGIC) return this.fail(DecodeError.BadMagic, "bad magic (expected EPPS)");
    const version = h.u16();
    if (version != FORMAT_VERSION && version != FORMAT_VERSION_1)
      return this.fail(DecodeError.BadVersion, "unsupported version " + version.toString());
    // Version 1 knew neither PLUGINS nor FLOW_CONTROL: tags 8 and 9 there are skipped, as a version-1 reader did.
    const lastTag: u32 = version == FORMAT_VERSION_1 ? TAG_SCHEDULER : TAG_FLOW_CONTROL;
    const headerLength = h.u16();
    const total = h.u32();
    const crc = h.u32();
    if (total != len)
      return this.fail(
        DecodeError.BadLength,
        "totalLength " + total.toString() + " does not match the " + len.toString() + " bytes received",
      );
    if (headerLength < HEADER_LENGTH || headerLength > total)
      return this.fail(DecodeError.BadLength, "bad headerLength " + headerLength.toString());
    const actual = crc32(ptr + 16, len - 16);
    if (actual != crc) return this.fail(DecodeError.BadChecksum, "checksum mismatch");
    const out = new Snapshot();
    out.crc = crc;
    out.generation = h.u64();
    out.createdAtMs = h.u64();
    if (out.createdAtMs > MAX_SAFE_INTEGER)
      return this.fail(DecodeError.BadLength, "createdAtMs out of range");

    const body = new Reader(ptr, headerLength, len);
    let seen: u32 = 0;
    while (body.remaining() > 0) {
      const tag = body.u16();
      const reserved = body.u16();
      const length = body.u32();
      if (body.bad) return this.fail(DecodeError.BadSection, "truncated section header");
      if (reserved != 0)
        return this.fail(DecodeError.BadSection, "section " + tag.toString() + ": reserved field is not 0");
      if (length > body.remaining())
        return this.fail(
          DecodeError.BadSection,
          "section " + tag.toString() + ": length exceeds the snapshot",
        );
      const start = body.pos;
      body.pos += length;
      if (tag < TAG_STRINGS || tag > lastTag) continue; // unknown sections are skipped
      const bit: u32 = 1 << tag;
      if (seen & bit)
        return this.fail(DecodeError.BadSection, "section " + tag.toString() + " appears twice");
      seen |= bit;
      if (tag != TAG_STRINGS && this.strings == null)
        return this.fail(
          DecodeError.BadSection,
          "section " + tag.toString() + " comes before the STRINGS section",
        );
      const r = new Reader(ptr, start, start + length);
      if (!this.section(tag, r, out))
        return this.fail(DecodeError.BadSection, "section " + tag.toString() + ": invalid");
      if (r.bad) return this.fail(DecodeError.BadSection, "section " + tag.toString() + ": truncated");
      if (r.pos != r.end)
        return this.fail(DecodeError.BadSection, "section " + tag.toString() + ": trailing bytes");
    }
    if (!(seen & (1 << TAG_STRINGS))) return this.fail(DecodeError.MissingSection, "missing STRINGS section");
    if (!(seen & (1 << TAG_POOL))) return this.fail(DecodeError.MissingSection, "missing POOL section");
    if (!(seen & (1 << TAG_ENDPOINTS)))
      return this.fail(DecodeError.MissingSection, "missing ENDPOINTS section");
    this.result.snapshot = out;
    return true;
  }
}

/** Decodes len bytes at ptr (the caller keeps them alive). */
export function decodeSnapshot(ptr: usize, len: u32): DecodeResult {
  const d = new Decoder();
  d.decode(ptr, len);
  return d.result;
}

/** Decodes a whole buffer, e.g. a shared-data value or a request body. */
export function decodeSnapshotBuffer(buf: ArrayBuffer): DecodeResult {
  return decodeSnapshot(changetype<usize>(buf), <u32>buf.byteLength);
}
