// `k8s-service`: a Kubernetes Service in kube-proxy's iptables mode, seen through a load generator's
// HTTP client with keep-alive connections. The two facts it models:
// - kube-proxy balances per *connection*, not per request. Its KUBE-SVC chain jumps to endpoint i with
//   `-m statistic --mode random --probability 1/(n-i)` (kubernetes/kubernetes pkg/proxy/iptables/
//   proxier.go, writeServiceToEndpointRules), which makes every endpoint equally likely for a NEW
//   connection; conntrack then keeps the connection's DNAT, so every request on it goes to that pod.
// - The client reuses idle keep-alive connections. inference-perf and `vllm bench serve` both send over one
//   aiohttp ClientSession whose TCPConnector pools connections (limit = max_tcp_connections, resp.
//   max_concurrency or 0 = unlimited); aiohttp's connector `_get` reuses the most recently released idle
//   connection (LIFO) and drops one idle longer than the keep-alive timeout. vLLM's server closes idle
//   connections after VLLM_HTTP_TIMEOUT_KEEP_ALIVE = 5 s, shorter than the clients' (aiohttp 15 s,
//   vllm bench 60 s), so an idle connection lives 5 s by default.
// With a connection limit, a request that finds none idle and the pool full waits for the next release,
// and the wait counts in its TTFT (both clients start the clock before acquiring the connection).
import { Rng, type VirtualClock } from "../../sim/index.ts";
import type { Policy, RouteResult } from "./policy.ts";
import type { WorkItem } from "./workloads.ts";

export interface ServiceClientOptions {
  /** Most connections the client holds open at once; 0 = unlimited (vllm bench's default). */
  connections: number;
  /** An idle connection older than this is closed (by the server's keep-alive timeout) and not reused. */
  idleTimeoutMs: number;
}

export const SERVICE_CLIENT_DEFAULTS: ServiceClientOptions = { connections: 0, idleTimeoutMs: 5000 };

interface Connection {
  pod: number;
  idleSinceMs: number;
}

/** Counters a run reports next to the policy's results. */
export interface ServiceClientStats {
  connections_opened: number;
  connections_expired: number;
  peak_open: number;
  requests_waited: number;
}

export interface ServicePolicy extends Policy {
  dispatch(item: WorkItem, inFlight: readonly number[], send: (r: RouteResult) => void): void;
  stats(): ServiceClientStats;
}

export function k8sService(
  pods: number,
  seed: number,
  clock: VirtualClock,
  o: ServiceClientOptions = SERVICE_CLIENT_DEFAULTS,
): ServicePolicy {
  const rng = new Rng(seed ^ 0x6b387376);
  const idle: Connection[] = [];
  const waiting: ((r: RouteResult) => void)[] = [];
  let open = 0;
  const stats: ServiceClientStats = {
    connections_opened: 0,
    connections_expired: 0,
    peak_open: 0,
    requests_waited: 0,
  };

  const use = (c: Connection, send: (r: RouteResult) => void): void =>
    send({ pod: c.pod, done: () => release(c) });
  const release = (c: Connection): void => {
    const next = waiting.shift();
    // Handed to the oldest waiter (aiohttp wakes waiters in order), on the next event at the same time,
    // not from inside the engine's completion callback.
    if (next) return void clock.schedule(clock.now(), () => use(c, next));
    c.idleSinceMs = clock.now();
    idle.push(c);
  };

  return {
    name: "k8s-service",
    dispatch(_item: WorkItem, _inFlight: readonly number[], send: (r: RouteResult) => void): void {
      const now = clock.now();
      for (let c = idle.pop(); c; c = idle.pop()) {
        if (now - c.idleSinceMs <= o.idleTimeoutMs) return use(c, send);
        open--;
        stats.connections_expired++;
      }
      if (o.connections > 0 && open >= o.connections) {
        stats.requests_waited++;
        waiting.push(send);
        return;
      }
      open++;
      stats.connections_opened++;
      stats.peak_open = Math.max(stats.peak_open, open);
      // The iptables chain's sequential 1/(n-i) matches: uniform over the endpoints.
      use({ pod: rng.int(0, pods - 1), idleSinceMs: now }, send);
    },
    stats: () => ({ ...stats }),
  };
}
