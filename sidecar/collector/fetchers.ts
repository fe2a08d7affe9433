// The fetcher the sidecar should use: the lean client for plain-http endpoints (the CPU budget needs it),
// undici's keep-alive Agent for https or when asked for explicitly.
import { createHttpFetcher } from "./fetch-metrics.ts";
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
    close: async () => {
      await Promise.all([lean.close(), undici.close()]);
    },
  };
}
