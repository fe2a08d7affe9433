// The end-to-end checks `npm run test:envoy` makes against one running Envoy: the control path (401, then 204),
// the health path before and after a snapshot, the failure mode with no snapshot, the override_host fallback
// list walked past a dead pick, an unknown model's 404, and routing with the served header. Each check is one
// line of output; the first failure throws.
import { encodeSnapshot } from "../../sidecar/snapshot/encoder.ts";
import type { Snapshot } from "../../sidecar/snapshot/types.ts";
import { loopbackSnapshot } from "../../test/support/shipped-control.ts";
import type { ClusterKind } from "./runtime.ts";

export const MODEL = "meta-llama/Llama-3.1-8B-Instruct";
const SERVED = "x-gateway-destination-endpoint-served";

export interface CheckTarget {
  cluster: ClusterKind;
  dataUrl: string;
  controlUrl: string;
  controlPath: string;
  healthPath: string;
  token: string;
  pool: { namespace: string; name: string };
  /** The pool's failure mode in the bootstrap (with no snapshot: FailOpen routes, FailClose answers 503). */
  failureMode: string;
  /** Live simulated pods (ports on 127.0.0.1). */
  live: number[];
  /** A port nothing listens on: the pick the override_host fallback must walk past. */
  dead: number;
}

export type Report = (line: string) => void;

function check(ok: boolean, what: string, got: string, report: Report): void {
  if (!ok) throw new Error(`${what}: got ${got}`);
  report(`  ok  ${what}`);
}

async function chat(t: CheckTarget, model = MODEL): Promise<{ status: number; served: string | null }> {
  const res = await fetch(`${t.dataUrl}/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({
      model,
      messages: [{ role: "user", content: "Hello from test:envoy" }],
      max_tokens: 4,
    }),
    signal: AbortSignal.timeout(10_000),
  });
  await res.arrayBuffer();
  return { status: res.status, served: res.headers.get(SERVED) };
}

async function push(t: CheckTarget, s: Snapshot, token: string): Promise<number> {
  const res = await fetch(`${t.controlUrl}${t.controlPath}`, {
    method: "POST",
    headers: { authorization: `Bearer ${token}`, "content-type": "application/octet-stream" },
    body: Buffer.from(encodeSnapshot(s)),
    signal: AbortSignal.timeout(10_000),
  });
  await res.arrayBuffer();
  return res.status;
}

async function health(t: CheckTarget): Promise<number> {
  const res = await fetch(`${t.dataUrl}${t.healthPath}`, { signal: AbortSignal.timeout(10_000) });
  await res.arrayBuffer();
  return res.status;
}

/**
 * The snapshot the checks push: the live pods, strict models (only MODEL routes), and under override_host the
 * dead port first, so it is the least loaded pod and the pick. (An ORIGINAL_DST cluster retries the same
 * ip:port, so there the dead port would only fail.)
 */
export function checkSnapshot(t: CheckTarget, generation: bigint): Snapshot {
  const ports = t.cluster === "override_host" ? [t.dead, ...t.live] : t.live;
  const s = loopbackSnapshot(t.pool, generation, ports);
  return {
    ...s,
    pool: { ...s.pool, strictModels: true },
    models: [{ name: MODEL, criticality: "Critical", targets: [] }],
  };
}

/** Runs the checks in order; throws on the first failure. */
export async function runChecks(t: CheckTarget, report: Report): Promise<void> {
  const liveHosts = t.live.map((p) => `127.0.0.1:${p}`);
  check((await health(t)) === 503, `health path ${t.healthPath} answers 503 before any snapshot`, "", report);
  const before = await chat(t);
  const expectBefore = t.failureMode === "FailOpen" ? 200 : 503;
  check(
    before.status === expectBefore,
    `no snapshot yet, ${t.failureMode}: a chat request gets ${expectBefore}`,
    String(before.status),
    report,
  );
  const badToken = await push(t, checkSnapshot(t, 1n), `${t.token}-wrong`);
  check(badToken === 401, "snapshot push with a wrong token: 401", String(badToken), report);
  const pushed = await push(t, checkSnapshot(t, 1n), t.token);
  check(pushed === 204, "snapshot push with the token: 204", String(pushed), report);
  check((await health(t)) === 200, `health path ${t.healthPath} answers 200 with a snapshot`, "", report);
  if (t.cluster === "override_host") {
    // The pick is the dead port (least loaded); its connect failure sends the retry to the next list entry.
    const r = await chat(t);
    check(
      r.status === 200 && r.served !== null && liveHosts.includes(r.served),
      `override_host fallback: the dead pick 127.0.0.1:${t.dead} is walked past, a live pod serves`,
      `${r.status} served=${r.served}`,
      report,
    );
  }
  const unknown = await chat(t, "no-such-model");
  check(unknown.status === 404, "an unknown model gets 404 (strict models)", String(unknown.status), report);
  const routed = await chat(t);
  check(
    routed.status === 200 && routed.served !== null && liveHosts.includes(routed.served),
    `a chat request is routed; ${SERVED} names a live pod (${routed.served ?? "none"})`,
    `${routed.status} served=${routed.served}`,
    report,
  );
}

/** After the sidecar took over: its snapshots route requests too. */
export async function runSidecarCheck(t: CheckTarget, report: Report): Promise<void> {
  const r = await chat(t);
  check(
    r.status === 200 && r.served !== null && t.live.map((p) => `127.0.0.1:${p}`).includes(r.served),
    `with the sidecar's snapshots a chat request is routed (${r.served ?? "none"})`,
    `${r.status} served=${r.served}`,
    report,
  );
}
