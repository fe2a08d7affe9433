// What the sidecar's HTTP endpoints and status view read from the running sidecar (implemented by
// sidecar.ts). Its own module so that server.ts and status/ depend on it, not on each other.
import type { Snapshot } from "./snapshot/types.ts";
import type { TargetStatus } from "./publisher/publisher.ts";
import type { ConfigStatus } from "./scheduling-config/registry.ts";

export interface PublishedSnapshot {
  snapshot: Snapshot;
  bytes: Uint8Array;
}

/** What the server needs to know about the running sidecar. */
export interface SidecarState {
  readiness(): { ready: boolean; reasons: string[] };
  /** Pool keys ("namespace/name") with a current snapshot. */
  poolKeys(): string[];
  latest(poolKey: string): PublishedSnapshot | undefined;
  pushStatus(): TargetStatus[];
  /** The scheduling config of the sidecar and of each pool with its own, with any refusal. */
  configStatus(): ConfigStatus[];
}
