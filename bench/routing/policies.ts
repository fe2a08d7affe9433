// Routing policies the harness compares. Baselines decide in TypeScript; filter policies (see
// filter-policy.ts) run the real build/filter.wasm. All see the same arrival sequence.
import { Rng, type VirtualClock } from "../../sim/index.ts";
import { k8sService, type ServiceClientOptions } from "./k8s-service.ts";
import type { Policy, RouteResult } from "./policy.ts";

export type { Policy, RouteResult };

const BASELINE_POLICIES = ["k8s-service", "round-robin", "random", "least-request"] as const;
export const FILTER_POLICIES = ["legacy", "gie-default", "default", "oracle"] as const;
export const ALL_POLICIES: readonly string[] = [...BASELINE_POLICIES, ...FILTER_POLICIES];

/**
 * A filter policy may carry scheduler params, for sweeping without a rebuild:
 * `default:prefixWeight=8:queueWeight=2` runs `default` with those params in the snapshot's scheduler
 * record (`oracle:…` likewise). Returns the base name and the params.
 */
export function parsePolicyName(name: string): { base: string; params: Record<string, number> } {
  const [base, ...kvs] = name.split(":");
  const params: Record<string, number> = {};
  for (const kv of kvs) {
    const [k, v] = kv.split("=");
    const n = Number(v);
    if (!k || v === undefined || !Number.isFinite(n))
      throw new Error(`bad policy param "${kv}" in "${name}"`);
    params[k] = n;
  }
  if (kvs.length > 0 && !(FILTER_POLICIES as readonly string[]).includes(base))
    throw new Error(`params need a filter policy (${FILTER_POLICIES.join(", ")}): "${name}"`);
  return { base, params };
}

/** What tables and plots call a policy: the two baselines say which balancer they model. */
export function policyLabel(name: string): string {
  if (name === "k8s-service") return "k8s-service (kube-proxy, pod per connection)";
  if (name === "round-robin") return "round-robin (ideal per-request balancer)";
  return name;
}

/** An ideal L4/L7 balancer: each request to the next pod in turn (what a Service is often assumed to do). */
function roundRobin(pods: number): Policy {
  let next = 0;
  return {
    name: "round-robin",
    route: () => {
      const pod = next;
      next = (next + 1) % pods;
      return { pod };
    },
  };
}

function random(pods: number, seed: number): Policy {
  const rng = new Rng(seed ^ 0x5eed);
  return { name: "random", route: () => ({ pod: rng.int(0, pods - 1) }) };
}

/** Envoy LEAST_REQUEST with choice_count 2: two random distinct hosts, the one with fewer active requests. */
function leastRequest(pods: number, seed: number): Policy {
  const rng = new Rng(seed ^ 0x1ea57);
  return {
    name: "least-request",
    route: (_item, inFlight) => {
      const a = rng.int(0, pods - 1);
      if (pods === 1) return { pod: a };
      let b = rng.int(0, pods - 2);
      if (b >= a) b++;
      return { pod: inFlight[b] < inFlight[a] ? b : a };
    },
  };
}

export function baselinePolicy(
  name: string,
  pods: number,
  seed: number,
  clock: VirtualClock,
  service?: ServiceClientOptions,
): Policy | undefined {
  if (name === "k8s-service") return k8sService(pods, seed, clock, service);
  if (name === "round-robin") return roundRobin(pods);
  if (name === "random") return random(pods, seed);
  if (name === "least-request") return leastRequest(pods, seed);
  return undefined;
}
