// Prerequisites outside the repo (a browser, kubectl, the shared checker). Outside CI a test whose
// prerequisite is missing is skipped with the reason (the runner lists skips at the end); under CI it runs
// and fails naming the missing tool, so a CI machine without it can never pass by skipping.
import { accessSync, constants } from "node:fs";
import { delimiter, join } from "node:path";

/** True when the CI environment variable is set to anything but "", "0" or "false". */
export const inCI = !["", "0", "false"].includes((process.env.CI ?? "").trim().toLowerCase());

/**
 * The `skip` option for a test needing a prerequisite: `missing` is why it cannot run here (undefined when
 * it can). Outside CI that reason skips the test; under CI the test runs and must call requirePrerequisite.
 */
export function skipUnlessCI(missing: string | undefined): string | undefined {
  return missing && !inCI ? missing : undefined;
}

/** Throws `missing prerequisite: …` when `missing` is set (the first line of a test under CI). */
export function requirePrerequisite(missing: string | undefined): void {
  if (missing) throw new Error(`missing prerequisite: ${missing}`);
}

/** The first executable `name` on PATH, or undefined (so removing a tool from PATH makes it missing). */
export function findOnPath(...names: string[]): string | undefined {
  for (const dir of (process.env.PATH ?? "").split(delimiter)) {
    for (const name of names) {
      const full = join(dir || ".", name);
      try {
        accessSync(full, constants.X_OK);
        return full;
      } catch {
        // not here
      }
    }
  }
  return undefined;
}
