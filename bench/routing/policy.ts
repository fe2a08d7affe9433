// The interface every routing policy implements: baselines (policies.ts, k8s-service.ts) and the filter
// policies (filter-policy.ts). Kept apart so a policy module never imports the list of policies.
import type { WorkItem } from "./workloads.ts";

/** Where a request goes: a pod index, or a local reply status (429/503) from the filter. */
export type RouteResult = { pod: number; done?: () => void } | { status: number; done?: () => void };

export interface Policy {
  readonly name: string;
  /** Called at the request's arrival (virtual time); `done` of the result runs when it finishes. */
  route?(item: WorkItem, inFlight: readonly number[]): RouteResult;
  /** Instead of `route`: may call `send` later (a client waiting for a free connection). */
  dispatch?(item: WorkItem, inFlight: readonly number[], send: (r: RouteResult) => void): void;
  /** Counters for the report (per stage). */
  stats?(): object;
  close?(): Promise<void>;
}
