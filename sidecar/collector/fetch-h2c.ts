// GET of a metrics page over HTTP/2 cleartext with prior knowledge (`h2c://host:port/path`), for pools whose pods
// declare appProtocol kubernetes.io/h2c and so refuse HTTP/1.1 on their target ports. One session per endpoint,
// kept open between scrapes (a scrape is one stream on it).
import http2 from "node:http2";
import type { HttpFetcher, HttpFetcherOptions, MetricsFetcher } from "./fetch-metrics.ts";

export function createH2cFetcher(opts: HttpFetcherOptions = {}): HttpFetcher {
  const maxBody = opts.maxBodyBytes ?? 4 << 20;
  const sessions = new Map<string, http2.ClientHttp2Session>();

  const session = (origin: string): http2.ClientHttp2Session => {
    const open = sessions.get(origin);
    if (open !== undefined && !open.closed && !open.destroyed) return open;
    const s = http2.connect(origin);
    s.on("error", () => {}); // each stream reports its own failure; a dead session is replaced on the next GET
    s.on("close", () => {
      if (sessions.get(origin) === s) sessions.delete(origin);
    });
    s.unref(); // an idle scrape session never keeps the process alive
    sessions.set(origin, s);
    return s;
  };

  const fetch: MetricsFetcher = (url, signal) =>
    new Promise<string>((resolve, reject) => {
      const u = new URL(`http:${url.slice(url.indexOf(":") + 1)}`);
      let req: http2.ClientHttp2Stream;
      try {
        req = session(u.origin).request(
          { ":path": `${u.pathname}${u.search}`, accept: "text/plain;version=0.0.4;q=1,*/*;q=0.1" },
          { signal, endStream: true },
        );
      } catch (e) {
        reject(e instanceof Error ? e : new Error(String(e)));
        return;
      }
      const chunks: Buffer[] = [];
      let size = 0;
      const fail = (e: Error) => {
        req.close(http2.constants.NGHTTP2_CANCEL);
        reject(e);
      };
      req.on("response", (h) => {
        const status = Number(h[":status"]);
        if (status !== 200) fail(new Error(`HTTP ${status}`));
        else if (Number(h["content-length"]) > maxBody)
          fail(new Error(`metrics page too large (${String(h["content-length"])} bytes)`));
      });
      req.on("data", (c: Buffer) => {
        size += c.length;
        if (size > maxBody) fail(new Error(`metrics page larger than ${maxBody} bytes`));
        else chunks.push(c);
      });
      req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
      req.on("error", (e: Error) => reject(e));
      req.on("close", () => reject(new Error("h2c stream closed before the response was complete")));
    });

  return {
    fetch,
    close: async () => {
      for (const s of sessions.values()) s.destroy();
      sessions.clear();
    },
  };
}
