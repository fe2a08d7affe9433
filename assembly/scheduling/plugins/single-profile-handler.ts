// `single-profile-handler` (GIE): runs the one configured profile.

import { Plugin, ProfileHandler } from "../framework.ts";
import { PluginSpec } from "../../snapshot/types.ts";
import { BuildContext } from "../build-context.ts";

export const SINGLE_PROFILE_HANDLER = "single-profile-handler";

export function singleProfileHandlerFactory(spec: PluginSpec, ctx: BuildContext): Plugin | null {
  return ctx.finish(ctx.params(spec), new SingleProfileHandler());
}

export class SingleProfileHandler extends ProfileHandler {
  constructor() {
    super(SINGLE_PROFILE_HANDLER);
  }
}
