// HTTP GET of a metrics page over a shared undici keep-alive Agent (one connection per endpoint).
import { Agent, request } from "undici";

export type MetricsFetcher = (url: string, signal: AbortSignal) => Promise<string>;

export interface HttpFetcherOptions {
  /** Largest body accepted; a bigger page is a failed scrape (protects the sidecar's memory). */
  maxBodyBytes?: number;
  /** Connections kept per endpoint; scrapes never overlap per endpoint, so 1 is enough. */
  connectionsPerEndpoint?: number;
}

export interface HttpFetcher {
  fetch: MetricsFetcher;
  close(): Promise<void>;
}

export function createHttpFetcher(opts: HttpFetcherOptions = {}): HttpFetcher {
  const maxBody = opts.maxBodyBytes ?? 4 << 20;
  const agent = new Agent({
    connections: opts.connectionsPerEndpoint ?? 1,
    keepAliveTimeout: 10_000,
    keepAliveMaxTimeout: 60_000,
    pipelining: 1,
  });
  const fetch: MetricsFetcher = async (url, signal) => {
    const res = await request(url, {
      dispatcher: agent,
      signal,
      headers: { accept: "text/plain;version=0.0.4;q=1,*/*;q=0.1" },
    });
    if (res.statusCode !== 200) {
      await res.body.dump();
      throw new Error(`HTTP ${res.statusCode}`);
    }
    const len = Number(res.headers["content-length"]);
    if (len > maxBody) {
      await res.body.dump();
      throw new Error(`metrics page too large (${len} bytes)`);
    }
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of res.body) {
      size += (chunk as Buffer).length;
      if (size > maxBody) {
        res.body.destroy();
        throw new Error(`metrics page larger than ${maxBody} bytes`);
      }
      chunks.push(chunk as Buffer);
    }
    return (chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks)).toString("utf8");
  };
  return { fetch, close: () => agent.close() };
}
