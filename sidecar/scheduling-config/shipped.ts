// Where `--profile NAME` finds the shipped config file config/scheduling/NAME.yaml: beside the source tree
// (sidecar/scheduling-config/ → ../../config) or beside the bundle (dist/sidecar.mjs → ../config, the
// container image's layout). When neither exists the source-tree path is used, and reading it reports why.
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";

export const PROFILE_NAME = /^[a-z0-9][a-z0-9-]*$/;

export function shippedConfigPath(profile: string): string {
  if (!PROFILE_NAME.test(profile))
    throw new Error(`--profile ${profile}: expected a name such as gie-default`);
  const candidates = [
    new URL(`../../config/scheduling/${profile}.yaml`, import.meta.url),
    new URL(`../config/scheduling/${profile}.yaml`, import.meta.url),
  ].map((u) => fileURLToPath(u));
  return candidates.find((p) => existsSync(p)) ?? candidates[0]!;
}
