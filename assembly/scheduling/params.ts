// Typed reads of one plugin's parameters (PluginSpec.params as decoded from the PLUGINS section). Each
// read marks its key; finish() reports a key no read asked for, so a misspelt parameter is refused
// instead of silently ignored. The first problem wins and is kept in `error`.

import { PluginSpec, PluginParam, PARAM_NUMBER, PARAM_STRING, PARAM_BOOL } from "../snapshot/types.ts";

/** A number as JavaScript prints it (integers without ".0"), for messages and canonical text. */
export function formatNumber(v: f64): string {
  return v == Math.floor(v) && Math.abs(v) < 1e15 ? (<i64>v).toString() : v.toString();
}

export class Params {
  error: string = "";
  private used: bool[] = [];

  constructor(public spec: PluginSpec) {
    for (let i = 0; i < spec.params.length; i++) this.used.push(false);
  }

  private find(key: string): PluginParam | null {
    const ps = this.spec.params;
    for (let i = 0; i < ps.length; i++) {
      if (ps[i].key == key) {
        this.used[i] = true;
        return ps[i];
      }
    }
    return null;
  }

  private fail(key: string, why: string): void {
    if (this.error.length == 0) this.error = this.where() + ": parameter '" + key + "' " + why;
  }

  /** `plugin '<name>' (<type>)`, the prefix of every message about this plugin. */
  where(): string {
    return "plugin '" + this.spec.name + "' (" + this.spec.type + ")";
  }

  /** A number in [min, max]; `fallback` when absent. */
  num(key: string, fallback: f64, min: f64 = -Infinity, max: f64 = Infinity): f64 {
    const p = this.find(key);
    if (p == null) return fallback;
    if (p.kind != PARAM_NUMBER || !isFinite(p.num)) {
      this.fail(key, "must be a number");
      return fallback;
    }
    if (p.num < min || p.num > max) {
      const range = "[" + formatNumber(min) + ", " + formatNumber(max) + "]";
      this.fail(key, "must be in " + range + ", got " + formatNumber(p.num));
      return fallback;
    }
    return p.num;
  }

  /** An integer in [min, max]; `fallback` when absent. */
  int(key: string, fallback: i32, min: i32 = i32.MIN_VALUE, max: i32 = i32.MAX_VALUE): i32 {
    const v = this.num(key, <f64>fallback, <f64>min, <f64>max);
    if (v != Math.floor(v)) {
      this.fail(key, "must be an integer");
      return fallback;
    }
    return <i32>v;
  }

  bool(key: string, fallback: bool): bool {
    const p = this.find(key);
    if (p == null) return fallback;
    if (p.kind != PARAM_BOOL) {
      this.fail(key, "must be true or false");
      return fallback;
    }
    return p.flag;
  }

  str(key: string, fallback: string): string {
    const p = this.find(key);
    if (p == null) return fallback;
    if (p.kind != PARAM_STRING) {
      this.fail(key, "must be a string");
      return fallback;
    }
    return p.str;
  }

  /** The index of the string value in `values`; `fallback` when absent. */
  oneOf(key: string, values: string[], fallback: i32): i32 {
    const p = this.find(key);
    if (p == null) return fallback;
    if (p.kind == PARAM_STRING) {
      const i = values.indexOf(p.str);
      if (i >= 0) return i;
    }
    this.fail(key, "must be one of " + values.join(", "));
    return fallback;
  }

  /** The first problem, or an unknown key; "" when every parameter was read and valid. */
  finish(): string {
    if (this.error.length > 0) return this.error;
    for (let i = 0; i < this.used.length; i++) {
      if (!this.used[i]) return this.where() + ": unknown parameter '" + this.spec.params[i].key + "'";
    }
    return "";
  }
}
