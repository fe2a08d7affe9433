// A canonical one-line JSON form of a SchedulingSpec: plugins in order with their parameters sorted by
// key, profiles with plugin indices and weights, handler and saturation indices (−1 = none). The probe
// prints it so a TypeScript test can compare the built-in specs with the shipped YAML files.

import { SchedulingSpec, PluginParam, PARAM_NUMBER, PARAM_STRING } from "../snapshot/types.ts";

import { formatNumber as num } from "./params.ts";

function quote(s: string): string {
  return '"' + s.replaceAll("\\", "\\\\").replaceAll('"', '\\"') + '"';
}

function value(p: PluginParam): string {
  if (p.kind == PARAM_NUMBER) return num(p.num);
  if (p.kind == PARAM_STRING) return quote(p.str);
  return p.flag ? "true" : "false";
}

export function describeSpec(spec: SchedulingSpec): string {
  let s = '{"plugins":[';
  for (let i = 0; i < spec.plugins.length; i++) {
    const p = spec.plugins[i];
    if (i > 0) s += ",";
    s += '{"type":' + quote(p.type) + ',"name":' + quote(p.name) + ',"params":{';
    const keys = new Array<string>();
    for (let j = 0; j < p.params.length; j++) keys.push(p.params[j].key);
    keys.sort();
    for (let k = 0; k < keys.length; k++) {
      if (k > 0) s += ",";
      for (let j = 0; j < p.params.length; j++) {
        if (p.params[j].key == keys[k]) s += quote(keys[k]) + ":" + value(p.params[j]);
      }
    }
    s += "}}";
  }
  s += '],"profiles":[';
  for (let i = 0; i < spec.profiles.length; i++) {
    const pr = spec.profiles[i];
    if (i > 0) s += ",";
    s += '{"name":' + quote(pr.name) + ',"plugins":[';
    for (let e = 0; e < pr.entries.length; e++) {
      if (e > 0) s += ",";
      s += '{"plugin":' + pr.entries[e].plugin.toString() + ',"weight":' + num(pr.entries[e].weight) + "}";
    }
    s += "]}";
  }
  s += '],"handler":' + spec.handler.toString() + ',"saturation":' + spec.saturation.toString() + "}";
  return s;
}
