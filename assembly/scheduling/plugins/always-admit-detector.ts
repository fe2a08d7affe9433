// `always-admit-detector` (ours): no admission step. The legacy filter tree sheds by itself.

import { Plugin, SaturationDetector } from "../framework.ts";
import { PluginSpec } from "../../snapshot/types.ts";
import { BuildContext } from "../build-context.ts";

export const ALWAYS_ADMIT_DETECTOR = "always-admit-detector";

export function alwaysAdmitDetectorFactory(spec: PluginSpec, ctx: BuildContext): Plugin | null {
  return ctx.finish(ctx.params(spec), new AlwaysAdmitDetector());
}

export class AlwaysAdmitDetector extends SaturationDetector {
  constructor() {
    super(ALWAYS_ADMIT_DETECTOR);
  }
}
