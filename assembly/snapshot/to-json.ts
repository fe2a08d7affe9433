// Renders a decoded snapshot as the JSON form documented in docs/snapshot-format.md § "The decoded
// form". Used by the test probe only (not on the request path).

import {
  CRITICALITY_NAMES,
  ENGINE_NAMES,
  FAIRNESS_ROUND_ROBIN,
  FlowBand,
  FlowControlSpec,
  NEVER_SCRAPED,
  NO_PLUGIN,
  PARAM_BOOL,
  PARAM_NUMBER,
  SchedulingSpec,
  Snapshot,
  WeightedName,
} from "./types.ts";

export function jsonString(s: string): string {
  let out = '"';
  let from = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0x20 && c != 0x22 && c != 0x5c) continue;
    out += s.substring(from, i);
    if (c == 0x22) out += '\\"';
    else if (c == 0x5c) out += "\\\\";
    else if (c == 0x0a) out += "\\n";
    else {
      const hex = c.toString(16);
      out += "\\u" + "0000".substring(hex.length) + hex;
    }
    from = i + 1;
  }
  return out + s.substring(from) + '"';
}

function stringList(list: string[]): string {
  const parts = new Array<string>(list.length);
  for (let i = 0; i < list.length; i++) parts[i] = jsonString(list[i]);
  return "[" + parts.join(",") + "]";
}

function weightedList(list: WeightedName[], key: string): string {
  const parts = new Array<string>(list.length);
  for (let i = 0; i < list.length; i++) {
    parts[i] =
      "{" + jsonString(key) + ":" + jsonString(list[i].name) + ',"weight":' + list[i].weight.toString() + "}";
  }
  return "[" + parts.join(",") + "]";
}

/** A newer sidecar's engine code prints as "unknown" (never an out-of-bounds read). */
function engineName(code: u8): string {
  return <i32>code < ENGINE_NAMES.length ? ENGINE_NAMES[code] : "unknown";
}

function pluginIndex(i: i32): string {
  return i == NO_PLUGIN ? "null" : i.toString();
}

function schedulingJson(s: SchedulingSpec): string {
  const plugins = new Array<string>(s.plugins.length);
  for (let i = 0; i < plugins.length; i++) {
    const p = s.plugins[i];
    const params = new Array<string>(p.params.length);
    for (let j = 0; j < params.length; j++) {
      const v = p.params[j];
      const value =
        v.kind == PARAM_NUMBER
          ? v.num.toString()
          : v.kind == PARAM_BOOL
            ? v.flag
              ? "true"
              : "false"
            : jsonString(v.str);
      params[j] = jsonString(v.key) + ":" + value;
    }
    plugins[i] =
      '{"type":' +
      jsonString(p.type) +
      ',"name":' +
      jsonString(p.name) +
      ',"params":{' +
      params.join(",") +
      "}}";
  }
  const profiles = new Array<string>(s.profiles.length);
  for (let i = 0; i < profiles.length; i++) {
    const prof = s.profiles[i];
    const entries = new Array<string>(prof.entries.length);
    for (let j = 0; j < entries.length; j++)
      entries[j] =
        '{"plugin":' +
        prof.entries[j].plugin.toString() +
        ',"weight":' +
        prof.entries[j].weight.toString() +
        "}";
    profiles[i] = '{"name":' + jsonString(prof.name) + ',"entries":[' + entries.join(",") + "]}";
  }
  return (
    '{"plugins":[' +
    plugins.join(",") +
    '],"profiles":[' +
    profiles.join(",") +
    '],"handler":' +
    pluginIndex(s.handler) +
    ',"saturation":' +
    pluginIndex(s.saturation) +
    ',"crc":' +
    s.crc.toString() +
    "}"
  );
}

function limitsJson(b: FlowBand): string {
  return (
    '"maxRequests":' +
    b.maxRequests.toString() +
    ',"maxBytes":' +
    b.maxBytes.toString() +
    ',"ttlMs":' +
    b.ttlMs.toString()
  );
}

function flowControlJson(f: FlowControlSpec): string {
  const bands = new Array<string>(f.bands.length);
  for (let i = 0; i < bands.length; i++)
    bands[i] = '{"priority":' + f.bands[i].priority.toString() + "," + limitsJson(f.bands[i]) + "}";
  return (
    '{"maxRequests":' +
    f.maxRequests.toString() +
    ',"maxBytes":' +
    f.maxBytes.toString() +
    ',"defaultTtlMs":' +
    f.defaultTtlMs.toString() +
    ',"fairness":' +
    (f.fairness == FAIRNESS_ROUND_ROBIN ? '"round-robin"' : '"global-strict"') +
    ',"defaultBand":{' +
    limitsJson(f.defaultBand) +
    '},"bands":[' +
    bands.join(",") +
    '],"crc":' +
    f.crc.toString() +
    "}"
  );
}

function fraction(v: u16): string {
  return (<f64>v / 10000).toString();
}

export function snapshotToJson(s: Snapshot): string {
  const p = s.pool;
  const ports = new Array<string>(p.targetPorts.length);
  for (let i = 0; i < ports.length; i++) ports[i] = p.targetPorts[i].toString();
  let out = '{"generation":"' + s.generation.toString() + '","createdAtMs":' + s.createdAtMs.toString();
  out += ',"pool":{"namespace":' + jsonString(p.namespace) + ',"name":' + jsonString(p.name);
  out +=
    ',"failureMode":' +
    (p.failOpen ? '"FailOpen"' : '"FailClose"') +
    ',"strictModels":' +
    (p.strictModels ? "true" : "false");
  out += ',"targetPorts":[' + ports.join(",") + "]}";

  const eps = new Array<string>(s.endpoints.length);
  for (let i = 0; i < eps.length; i++) {
    const e = s.endpoints[i];
    eps[i] =
      '{"podName":' +
      jsonString(e.podName) +
      ',"address":' +
      jsonString(e.address) +
      ',"port":' +
      e.port.toString() +
      ',"ready":' +
      (e.ready ? "true" : "false") +
      ',"stale":' +
      (e.stale ? "true" : "false") +
      ',"hasMetrics":' +
      (e.hasMetrics ? "true" : "false") +
      ',"engine":"' +
      engineName(e.engine) +
      '"' +
      ',"metricsAgeMs":' +
      (e.metricsAgeMs == NEVER_SCRAPED ? "null" : e.metricsAgeMs.toString()) +
      ',"waiting":' +
      e.waiting.toString() +
      ',"running":' +
      e.running.toString() +
      ',"kvUsage":' +
      fraction(e.kvUsage) +
      ',"maxLoras":' +
      e.maxLoras.toString() +
      ',"kvBlockSize":' +
      e.kvBlockSize.toString() +
      ',"kvBlockCount":' +
      e.kvBlockCount.toString() +
      ',"runningAdapters":' +
      stringList(e.runningAdapters) +
      ',"waitingAdapters":' +
      stringList(e.waitingAdapters) +
      "}";
  }
  out += ',"endpoints":[' + eps.join(",") + "]";

  const models = new Array<string>(s.models.length);
  for (let i = 0; i < models.length; i++) {
    const m = s.models[i];
    models[i] =
      '{"name":' +
      jsonString(m.name) +
      ',"criticality":"' +
      CRITICALITY_NAMES[m.criticality] +
      '","targets":' +
      weightedList(m.targets, "name") +
      "}";
  }
  out += ',"models":[' + models.join(",") + "]";

  const objectives = new Array<string>(s.objectives.length);
  for (let i = 0; i < objectives.length; i++) {
    const o = s.objectives[i];
    objectives[i] =
      '{"name":' +
      jsonString(o.name) +
      ',"priority":' +
      (o.hasPriority ? o.priority.toString() : "null") +
      "}";
  }
  out += ',"objectives":[' + objectives.join(",") + "]";

  const rewrites = new Array<string>(s.rewrites.length);
  for (let i = 0; i < rewrites.length; i++) {
    const r = s.rewrites[i];
    rewrites[i] =
      '{"matches":' + stringList(r.matches) + ',"targets":' + weightedList(r.targets, "model") + "}";
  }
  out += ',"rewrites":[' + rewrites.join(",") + "]";

  const sch = s.scheduler;
  const params = new Array<string>(sch.paramKeys.length);
  for (let i = 0; i < params.length; i++)
    params[i] = jsonString(sch.paramKeys[i]) + ":" + sch.paramValues[i].toString();
  out +=
    ',"scheduler":{"profile":' +
    jsonString(sch.profile) +
    ',"queueThreshold":' +
    sch.queueThreshold.toString();
  out +=
    ',"kvThreshold":' +
    fraction(sch.kvThreshold) +
    ',"metricsStalenessMs":' +
    sch.metricsStalenessMs.toString();
  out += ',"params":{' + params.join(",") + "}}";
  const scheduling = s.scheduling;
  if (scheduling != null) out += ',"scheduling":' + schedulingJson(scheduling);
  const flowControl = s.flowControl;
  if (flowControl != null) out += ',"flowControl":' + flowControlJson(flowControl);
  return out + "}";
}
