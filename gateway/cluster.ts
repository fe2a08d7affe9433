// Host selection for one attempt, per cluster type, as Envoy's load balancers do it. The router calls
// chooseHost once per attempt (first try and every retry) with the same per-request context.
import type { HeaderList } from "../host/index.ts";
import type { ClusterConfig } from "./config.ts";
import {
  DESTINATION_HEADER,
  firstHeaderValue,
  hostKey,
  parseInternetAddressAndPort,
  splitOverrideHosts,
} from "./destination.ts";
import type { GatewayStats } from "./stats.ts";

export interface UpstreamHost {
  host: string; // IP literal without brackets
  port: number;
  /** Envoy's Address::asString(): `ip:port`, IPv6 as `[ip]:port`. */
  key: string;
}

/** What a load balancer may read and keep for one request (Envoy's LoadBalancerContext + request filter state). */
export interface LbContext {
  /** The request headers the router forwards (after the filter ran). */
  readonly headers: HeaderList;
  /** override_host's list and cursor, built at the first attempt (OverrideHostFilterState). */
  overrideHosts?: { list: string[]; next: number };
}

export interface Cluster {
  readonly name: string;
  /** The host for this attempt, or undefined for "no host" (the router answers 503 no healthy upstream). */
  chooseHost(ctx: LbContext): UpstreamHost | undefined;
}

export function createCluster(
  config: ClusterConfig,
  stats: GatewayStats,
  defaultUpstreams: string[] = [],
): Cluster {
  const cluster =
    config.type === "ORIGINAL_DST"
      ? new OriginalDstCluster(config.name, stats, defaultUpstreams.map(urlHost))
      : new OverrideHostCluster(config.name, stats, config.endpoints);
  return {
    name: cluster.name,
    chooseHost(ctx) {
      const host = cluster.chooseHost(ctx);
      // source/common/upstream/cluster_manager_impl.cc ClusterEntry::chooseHost: a null host is counted here.
      if (!host) stats.inc("upstream_cx_none_healthy");
      return host;
    },
  };
}

function urlHost(u: string): UpstreamHost {
  const url = new URL(u);
  const host = url.hostname.replace(/^\[|\]$/g, "");
  const port = Number(url.port || 80);
  return { host, port, key: url.hostname.startsWith("[") ? `[${host}]:${port}` : `${host}:${port}` };
}

function fromKey(key: string): UpstreamHost {
  const d = parseInternetAddressAndPort(key)!;
  return { host: d.host, port: d.port, key };
}

/** Envoy's round robin over unweighted hosts (round_robin_lb.h unweightedHostPick). */
class RoundRobin {
  // Envoy seeds the start index randomly (EdfLoadBalancerBase seed_); 0 keeps local runs reproducible.
  private next = 0;
  constructor(private readonly hosts: UpstreamHost[]) {}
  pick(): UpstreamHost | undefined {
    if (this.hosts.length === 0) return undefined;
    return this.hosts[this.next++ % this.hosts.length];
  }
}

/**
 * source/extensions/clusters/original_dst/original_dst_cluster.cc OriginalDstCluster::LoadBalancer::chooseHost
 * and requestOverrideHost: the first header value parsed whole as one ip:port; a value that does not parse counts
 * original_dst_host_invalid and gives no host. Every attempt re-reads the same header, so a retry goes to the
 * same host.
 */
class OriginalDstCluster implements Cluster {
  private readonly defaults: RoundRobin;
  constructor(
    readonly name: string,
    private readonly stats: GatewayStats,
    defaultUpstreams: UpstreamHost[],
  ) {
    this.defaults = new RoundRobin(defaultUpstreams);
  }

  chooseHost(ctx: LbContext): UpstreamHost | undefined {
    const value = firstHeaderValue(ctx.headers, DESTINATION_HEADER);
    if (value === undefined) {
      // Envoy would fall back to the connection's restored original destination (none here): no host.
      // defaultUpstreams is the gateway's documented stand-in for a pass-through route.
      const host = this.defaults.pick();
      if (host) this.stats.inc("default_upstream_selected");
      return host;
    }
    const d = parseInternetAddressAndPort(value);
    if (!d) {
      this.stats.inc("original_dst_host_invalid");
      return undefined;
    }
    return { host: d.host, port: d.port, key: hostKey(d) };
  }
}

/**
 * source/extensions/load_balancing_policies/override_host/load_balancer.cc LoadBalancerImpl::chooseHost,
 * getSelectedHosts, getEndpoint, findHost (Envoy >= 1.35): the list is built once per request from the first header
 * value; each attempt consumes entries until one is a host of the cluster (exact string match, health not checked);
 * the fallback policy (round robin) runs when the list is empty or used up.
 */
class OverrideHostCluster implements Cluster {
  private readonly hosts: Map<string, UpstreamHost>;
  private readonly fallback: RoundRobin;
  constructor(
    readonly name: string,
    private readonly stats: GatewayStats,
    endpoints: string[],
  ) {
    const list = endpoints.map(fromKey);
    this.hosts = new Map(list.map((h) => [h.key, h]));
    this.fallback = new RoundRobin(list);
  }

  chooseHost(ctx: LbContext): UpstreamHost | undefined {
    // OverrideHostFilterState: built at the first attempt, later header changes do not matter.
    ctx.overrideHosts ??= {
      list: splitOverrideHosts(firstHeaderValue(ctx.headers, DESTINATION_HEADER)),
      next: 0,
    };
    const state = ctx.overrideHosts;
    // consumeNextHost: skipped entries are consumed too.
    while (state.next < state.list.length) {
      const host = this.hosts.get(state.list[state.next++]!);
      if (host) {
        this.stats.inc("override_host_selected");
        return host;
      }
      this.stats.inc("override_host_skipped");
    }
    this.stats.inc("override_host_fallback");
    return this.fallback.pick();
  }
}
