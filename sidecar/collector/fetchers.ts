// The fetcher the sidecar should use: the lean client for plain-http endpoints (the CPU budget needs it),
// undici's keep-alive Agent for https or when asked for explicitly.
import { channelOverFetcher, createHttpFetcher } from "./fetch-metrics.ts";
import type { HttpFetcher } from "./fetch-metrics.ts";
import { createLeanFetcher } from "./lean-http.ts";

export interface MetricsFetcherOptions {
  /** "auto" (default): lean for http://, undici for https://. */
  client?: "auto" | "lean" | "undici";
  maxBodyBytes?: number;
}

export function createMetricsFetcher(opts: MetricsFetcherOptions = {}): HttpFetcher {
  const undici = createHttpFetcher({ maxBodyBytes: opts.maxBodyBytes });
  if (opts.client === "undici") return undici;
  const lean = createLeanFetcher({ maxBodyBytes: opts.maxBodyBytes });
  return {
    fetch: (url, signal) => (url.startsWith("http://") ? lean.fetch(url, signal) : undici.fetch(url, signal)),
    open: (url) => (url.startsWith("http://") ? lean.open(url) : channelOverFetcher(undici.fetch, url)),
    close: async () => {
      await Promise.all([lean.close(), undici.close()]);
    },
  };
}
