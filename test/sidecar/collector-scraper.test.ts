import { test } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:http";
import type { Server, IncomingMessage, ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { readFileSync } from "node:fs";
import { Scraper } from "../../sidecar/collector/scraper.ts";
import type { RoundSummary, ScrapeTarget } from "../../sidecar/collector/scraper.ts";
import { createHttpFetcher } from "../../sidecar/collector/fetch-metrics.ts";
import { createLeanFetcher } from "../../sidecar/collector/lean-http.ts";
import { ENGINE_MAPPINGS } from "../../sidecar/collector/engines.ts";
import { ManualClock, flush } from "./manual-clock.ts";
import { waitFor, withDeadline } from "../support/deadline.ts";

const vllmPage = readFileSync(new URL("../fixtures/metrics/vllm.txt", import.meta.url), "utf8");
const page = (waiting: number) =>
  `vllm:num_requests_waiting ${waiting}\nvllm:num_requests_running 1\nvllm:kv_cache_usage_perc 0.5\n`;

async function listen(
  handler: (req: IncomingMessage, res: ServerResponse) => void,
): Promise<{ server: Server; port: number }> {
  const server = createServer(handler);
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return { server, port: (server.address() as AddressInfo).port };
}

async function close(server: Server): Promise<void> {
  server.closeAllConnections();
  await new Promise<void>((r) => server.close(() => r()));
}

function target(key: string, url: string): ScrapeTarget {
  return { key, url, mapping: ENGINE_MAPPINGS.vllm };
}

// "lean" scrapes through the lean client's channels (the production path); "lean promise" through its
// Promise form; "undici" through the channel adapter over a Promise fetcher.
for (const [client, makeFetcher, useChannels] of [
  ["lean", createLeanFetcher, true],
  ["lean promise", createLeanFetcher, false],
  ["undici", createHttpFetcher, false],
] as const) {
  test(`scraper (${client} client): garbage, hang, refused and 500 endpoints each fail alone over real HTTP`, async () => {
    let goodHits = 0;
    const good = await listen((_req, res) => {
      goodHits++;
      res.end(vllmPage);
    });
    const garbage = await listen((_req, res) => res.end("<html>definitely not metrics</html>"));
    const hang = await listen(() => {
      /* never answers */
    });
    const err500 = await listen((_req, res) => {
      res.statusCode = 500;
      res.end("boom");
    });
    const refused = await listen(() => {});
    const refusedPort = refused.port;
    await close(refused.server);

    const fetcher = makeFetcher();
    const rounds: RoundSummary[] = [];
    const scraper = new Scraper({
      fetch: fetcher.fetch,
      ...(useChannels && fetcher.open ? { open: fetcher.open } : {}),
      intervalMs: 20,
      timeoutMs: 150,
      onRound: (r) => rounds.push(r),
    });
    const url = (p: number) => `http://127.0.0.1:${p}/metrics`;
    scraper.setTargets([
      target("good", url(good.port)),
      target("garbage", url(garbage.port)),
      target("hang", url(hang.port)),
      target("500", url(err500.port)),
      target("refused", url(refusedPort)),
    ]);
    const failing = ["garbage", "500", "refused", "hang"];
    let elapsedMs = 0;
    let goodHitsAtEnd = 0;
    let hangFailuresAtEnd = 0;
    try {
      const started = Date.now();
      scraper.start();
      // Run until every endpoint has shown its outcome (the deadline only bounds a hang).
      await waitFor(
        "every endpoint's outcome",
        () =>
          goodHits >= 10 &&
          failing.every((k) => (scraper.state(k)?.consecutiveFailures ?? 0) >= 2) &&
          rounds.some((r) => r.skipped > 0) &&
          rounds.some((r) => r.partial),
        15_000,
      );
      elapsedMs = Date.now() - started;
      goodHitsAtEnd = goodHits;
      hangFailuresAtEnd = scraper.state("hang")!.consecutiveFailures;
      await scraper.stop();
    } finally {
      await fetcher.close();
      await Promise.all([good, garbage, hang, err500].map((s) => close(s.server)));
    }

    const st = (k: string) => scraper.state(k)!;
    const now = Date.now();
    // The good endpoint kept its pace although one neighbour hangs for 150 ms per attempt: had its scrapes
    // waited for the hanging one, it would have had one per hang attempt (the failures plus one in flight).
    assert.ok(
      goodHitsAtEnd >= 2 * (hangFailuresAtEnd + 1),
      `good scraped ${goodHitsAtEnd} times while hang had ${hangFailuresAtEnd} failures`,
    );
    assert.equal(st("good").consecutiveFailures, 0);
    assert.equal(st("good").metrics?.waiting, 3);
    assert.equal(scraper.freshness("good", now).stale, false);

    assert.match(st("garbage").lastError!, /missing waiting, running, kvUsage/);
    assert.match(st("500").lastError!, /HTTP 500/);
    assert.match(st("refused").lastError!, /ECONNREFUSED/);
    assert.match(st("hang").lastError!, /timed out after 150 ms/);
    for (const k of failing) {
      assert.equal(st(k).metrics, undefined, k);
      assert.ok(st(k).consecutiveFailures >= 2, `${k}: ${st(k).consecutiveFailures}`);
      assert.equal(scraper.freshness(k, now).stale, true, k);
    }
    // The hanging endpoint is skipped while its scrape is in flight, never queued twice: at most one attempt
    // per 150 ms timeout (a slow machine only makes fewer).
    assert.ok(
      hangFailuresAtEnd <= Math.ceil(elapsedMs / 150) + 1,
      `hang failures ${hangFailuresAtEnd} in ${elapsedMs} ms`,
    );
    assert.ok(rounds.some((r) => r.skipped > 0));
    assert.ok(
      rounds.some((r) => r.partial),
      "rounds are reported without waiting for the hanging endpoint",
    );
  });
}

/** A fetcher whose responses the test resolves by hand. */
function manualFetcher() {
  const calls: {
    url: string;
    resolve: (s: string) => void;
    reject: (e: Error) => void;
    signal: AbortSignal;
  }[] = [];
  const fetch = (url: string, signal: AbortSignal) =>
    new Promise<string>((resolve, reject) => {
      calls.push({ url, resolve, reject, signal });
      signal.addEventListener("abort", () => reject(signal.reason as Error), { once: true });
    });
  return { calls, fetch };
}

test("scraper (virtual clock): stale after N consecutive failures, fresh again on success, last good kept", async () => {
  const clock = new ManualClock();
  const f = manualFetcher();
  const scraper = new Scraper({
    fetch: f.fetch,
    clock,
    intervalMs: 50,
    jitterMs: 0,
    staleAfterFailures: 3,
    maxAgeMs: 1000,
  });
  scraper.setTargets([target("a", "http://a/metrics")]);
  assert.deepEqual(scraper.freshness("a"), { stale: true }, "never scraped");

  const round = async (answer: (c: (typeof f.calls)[0]) => void) => {
    const p = scraper.runRound();
    await flush();
    answer(f.calls.at(-1)!);
    return p;
  };
  const r1 = await round((c) => c.resolve(page(7)));
  assert.equal(r1.succeeded, 1);
  assert.equal(r1.changed, true);
  assert.equal(scraper.state("a")!.metrics!.waiting, 7);
  assert.deepEqual(scraper.freshness("a"), { ageMs: 0, stale: false });

  await clock.advance(30);
  for (let i = 1; i <= 3; i++) {
    await round((c) => c.reject(new Error("ECONNRESET")));
    assert.equal(scraper.state("a")!.consecutiveFailures, i);
    assert.equal(scraper.freshness("a").stale, i >= 3, `after ${i} failures`);
    assert.equal(scraper.state("a")!.metrics!.waiting, 7, "last good metrics are kept");
  }
  assert.equal(scraper.freshness("a").ageMs, 30);
  const back = await round((c) => c.resolve(page(8)));
  assert.equal(back.changed, true);
  assert.equal(scraper.freshness("a").stale, false);

  // Age limit: no failures, but the last success is older than maxAgeMs.
  await clock.advance(1001);
  assert.deepEqual(scraper.freshness("a"), { ageMs: 1001, stale: true });
});

test("scraper (virtual clock): per-scrape timeout, in-flight skip, bounded concurrency, partial rounds", async () => {
  const clock = new ManualClock();
  const f = manualFetcher();
  const rounds: RoundSummary[] = [];
  const scraper = new Scraper({
    fetch: f.fetch,
    clock,
    intervalMs: 50,
    jitterMs: 0,
    timeoutMs: 120,
    concurrency: 2,
    onRound: (r) => rounds.push(r),
  });
  scraper.setTargets(["a", "b", "c"].map((k) => target(k, `http://${k}/metrics`)));
  scraper.start();
  await flush();
  assert.equal(f.calls.length, 2, "concurrency 2: the third scrape waits");
  f.calls[0]!.resolve(page(1)); // a answers
  await flush();
  assert.equal(f.calls.length, 3, "c starts when a slot frees");
  f.calls[2]!.resolve(page(3)); // c answers; b hangs
  await flush();
  assert.equal(rounds.length, 0, "round 1 still waits for b");

  await clock.advance(50); // round 2 starts: b is skipped, round 1 is reported partial
  assert.equal(rounds[0]!.partial, true);
  assert.equal(rounds[0]!.succeeded, 2);
  assert.equal(f.calls.length, 4, "b still holds one of the two slots");
  f.calls[3]!.resolve(page(9));
  await flush();
  assert.equal(f.calls.length, 5);
  f.calls[4]!.resolve(page(9));
  await flush();
  assert.equal(rounds[1]!.skipped, 1);
  assert.equal(rounds[1]!.partial, false);

  await clock.advance(70); // t=120: b's timeout fires
  assert.match(scraper.state("b")!.lastError!, /timed out after 120 ms/);
  assert.equal(scraper.state("b")!.consecutiveFailures, 1);
  assert.ok(f.calls[1]!.signal.aborted);

  // Targets that stay keep their state; removed ones go away.
  scraper.setTargets([target("a", "http://a2/metrics")]);
  assert.equal(scraper.state("a")!.metrics!.waiting, 9);
  assert.equal(scraper.state("b"), undefined);
  await scraper.stop();
  f.calls.filter((c) => !c.signal.aborted).forEach((c) => c.resolve(page(0)));
  await flush();
  assert.equal(clock.pending(), 0, "stop() leaves no timers");
});

test("scraper (virtual clock): removal while queued, stop() then start() resumes every endpoint", async () => {
  const clock = new ManualClock();
  const f = manualFetcher();
  const scraper = new Scraper({ fetch: f.fetch, clock, intervalMs: 50, jitterMs: 0, concurrency: 1 });
  scraper.setTargets(["a", "b", "c"].map((k) => target(k, `http://${k}/metrics`)));
  const round = scraper.runRound();
  await flush();
  assert.deepEqual(
    f.calls.map((c) => c.url),
    ["http://a/metrics"],
  );
  scraper.setTargets([target("a", "http://a/metrics"), target("c", "http://c/metrics")]); // b removed while queued
  f.calls[0]!.resolve(page(1));
  await flush();
  assert.deepEqual(
    f.calls.map((c) => c.url),
    ["http://a/metrics", "http://c/metrics"],
  );
  scraper.start(); // c still in flight: skipped; a dispatched
  await scraper.stop(); // aborts a and c, clears the queue
  f.calls[1]!.resolve(page(3));
  const summary = await withDeadline(round, 5000, "the round to settle after stop()");
  assert.equal(summary.dispatched, 3);
  assert.equal(
    scraper.state("a")!.consecutiveFailures,
    0,
    "a cancelled scrape is not the endpoint's failure",
  );
  const before = f.calls.length;
  scraper.start();
  await flush();
  assert.equal(f.calls.length, before + 1, "concurrency 1: one new scrape");
  f.calls.at(-1)!.resolve(page(5));
  await flush();
  assert.equal(f.calls.length, before + 2, "and the other endpoint follows: nothing stuck as in flight");
  await scraper.stop();
});

test("scraper (virtual clock): rounds keep a fixed rate when timers fire late, and skip after a stall", async () => {
  const clock = new ManualClock();
  // Every timer fires 3 ms late, as a busy event loop makes them.
  let lateBy = 3;
  const late = {
    now: () => clock.now(),
    setTimeout: (fn: () => void, ms: number) => clock.setTimeout(fn, ms + lateBy),
    clearTimeout: (h: unknown) => clock.clearTimeout(h),
  };
  const starts: number[] = [];
  const scraper = new Scraper({
    fetch: async () => vllmPage,
    intervalMs: 50,
    jitterMs: 0,
    clock: late,
    onRound: (r) => starts.push(r.startedAtMs - 1_000_000),
  });
  scraper.setTargets([{ key: "a", url: "http://a/metrics", mapping: ENGINE_MAPPINGS.vllm }]);
  scraper.start();
  await clock.advance(1000);
  assert.equal(starts.length, 20, `20 rounds in 1 s, not 1000/53: ${starts.join(",")}`);
  assert.deepEqual(starts.slice(0, 4), [0, 53, 103, 153], "lateness does not accumulate");
  // The round at 1003 arms a timer that fires 300 ms late (a stall): the next round runs when the stall
  // ends, then the grid restarts from there instead of firing the missed rounds back to back.
  lateBy = 300;
  await clock.advance(50);
  lateBy = 0;
  starts.length = 0;
  await clock.advance(500);
  assert.deepEqual(starts.slice(0, 3), [1350, 1400, 1450]);
  await scraper.stop();
});
