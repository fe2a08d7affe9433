// What a plugin factory gets besides its own PluginSpec: the VM's prefix index and affinity directory,
// runtime facts (envoyReplicas), the admission detector (built first), shared producers by type, the
// request headers plugins ask for, and the first error of the build.

import { PluginSpec, SchedulingSpec } from "../snapshot/types.ts";
import { Plugin, SaturationDetector } from "./framework.ts";
import { Params } from "./params.ts";
import { PrefixIndex } from "../prefix/index.ts";
import { AffinityDirectory } from "./affinity-directory.ts";

export class BuildContext {
  error: string = "";
  /** Request headers wanted by the plugins, in slot order (Scheduler.wantedRequestHeaders). */
  headers: string[] = [];
  /** The admission step, set before any scorer or filter is built. */
  detector: SaturationDetector | null = null;
  private sharedTypes: string[] = [];
  private sharedPlugins: Plugin[] = [];

  constructor(
    public spec: SchedulingSpec,
    public index: PrefixIndex,
    public directory: AffinityDirectory | null,
    /** Envoys the sidecar pushes this pool to (the SCHEDULER record's runtime fact). */
    public envoyReplicas: f64,
  ) {}

  params(spec: PluginSpec): Params {
    return new Params(spec);
  }

  /** Returns the plugin named as configured, or null after recording the parameter problem. */
  finish(p: Params, plugin: Plugin): Plugin | null {
    const err = p.finish();
    if (err.length > 0) {
      this.fail(err);
      return null;
    }
    if (p.spec.name.length > 0) plugin.name = p.spec.name;
    return plugin;
  }

  fail(message: string): void {
    if (this.error.length == 0) this.error = message;
  }

  /** The producer of this type built so far, or null. */
  shared(type: string): Plugin | null {
    const i = this.sharedTypes.indexOf(type);
    return i >= 0 ? this.sharedPlugins[i] : null;
  }

  setShared(type: string, p: Plugin): void {
    const i = this.sharedTypes.indexOf(type);
    if (i >= 0) this.sharedPlugins[i] = p;
    else {
      this.sharedTypes.push(type);
      this.sharedPlugins.push(p);
    }
  }

  /** The slot of a wanted request header (lower-case name); one slot per distinct name. */
  requestHeader(name: string): i32 {
    const i = this.headers.indexOf(name);
    if (i >= 0) return i;
    this.headers.push(name);
    return this.headers.length - 1;
  }
}
