// The inventory's public surface: pick a mode from the options and use the Inventory interface.
import { FileInventory } from "./files.ts";
import type { FileInventoryOptions } from "./files.ts";
import { KubernetesInventory } from "./kubernetes.ts";
import type { KubernetesInventoryOptions } from "./kubernetes.ts";
import type { Inventory } from "./types.ts";

export { FileInventory, parseManifests } from "./files.ts";
export type { FileInventoryOptions } from "./files.ts";
export { KubernetesInventory, loadKubeConfig } from "./kubernetes.ts";
export type { KubernetesInventoryOptions } from "./kubernetes.ts";
export * from "./types.ts";

/** File mode when `manifestsDir` is given, Kubernetes mode otherwise. */
export function createInventory(opts: FileInventoryOptions | KubernetesInventoryOptions): Inventory {
  if ("manifestsDir" in opts && opts.manifestsDir !== undefined) return new FileInventory(opts);
  return new KubernetesInventory(opts);
}
