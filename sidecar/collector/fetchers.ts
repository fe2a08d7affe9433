// The fetcher the sidecar should use: the lean client for plain-http endpoints (the CPU budget needs it),
// undici's keep-alive Agent for https or when asked for explicitly.
import { channelOverFetcher, createHttpFetcher } from "./fetch-metrics.ts";
import type { HttpFetcher } from "./fetch-metrics.ts";
import { createLeanFetcher } from "./lean-http.ts";
import { createH2cFetcher } from "./fetch-h2c.ts";

export interface MetricsFetcherOptions {
  /** "auto" (default): lean for http://, undici for https://; h2c:// always over node:http2. */
  client?: "auto" | "lean" | "undici";
  maxBodyBytes?: number;
}

export function createMetricsFetcher(opts: MetricsFetcherOptions = {}): HttpFetcher {
  const undici = createHttpFetcher({ maxBodyBytes: opts.maxBodyBytes });
  // h2c:// (pools with appProtocol kubernetes.io/h2c) always goes over node:http2.
  const h2c = createH2cFetcher({ maxBodyBytes: opts.maxBodyBytes });
  const isH2c = (url: string) => url.startsWith("h2c://");
  const other: HttpFetcher =
    opts.client === "undici"
      ? undici
      : withLean(undici, createLeanFetcher({ maxBodyBytes: opts.maxBodyBytes }));
  return {
    fetch: (url, signal) => (isH2c(url) ? h2c.fetch(url, signal) : other.fetch(url, signal)),
    open: (url) =>
      isH2c(url)
        ? channelOverFetcher(h2c.fetch, url)
        : (other.open?.(url) ?? channelOverFetcher(other.fetch, url)),
    close: async () => {
      await Promise.all([other.close(), h2c.close()]);
    },
  };
}

/** The lean client for http://, undici for the rest. */
function withLean(
  undici: HttpFetcher,
  lean: HttpFetcher & { open: NonNullable<HttpFetcher["open"]> },
): HttpFetcher {
  return {
    fetch: (url, signal) => (url.startsWith("http://") ? lean.fetch(url, signal) : undici.fetch(url, signal)),
    open: (url) => (url.startsWith("http://") ? lean.open(url) : channelOverFetcher(undici.fetch, url)),
    close: async () => {
      await Promise.all([lean.close(), undici.close()]);
    },
  };
}
