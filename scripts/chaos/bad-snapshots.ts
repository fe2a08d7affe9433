// Bad snapshots pushed to the gateway's control listener with the right token: each must be refused (or, for
// the generation poison, held no longer than the generation hold) while routing carries on.
// - corrupt: a valid encoding with bytes flipped in its body and its tail cut off;
// - future-dated: createdAtMs ten minutes ahead of the gateway's clock;
// - wrong-pool: a pool this plugin does not serve;
// - generation-poison: the largest generation (2^64-1) for the right pool, listing the real pods, so it routes;
//   the sidecars must win the gateway back (their pushes are refused until the hold ends).
import { encodeSnapshot } from "../../sidecar/snapshot/encoder.ts";
import { snapshotFor } from "../../test/support/gateway-process.ts";
import type { BadSnapshotKind } from "./schedule.ts";

export interface BadSnapshotResult {
  variant: BadSnapshotKind;
  status: number;
  body: string;
}

export function badSnapshot(variant: BadSnapshotKind, endpoints: string[], rnd: () => number): Uint8Array {
  const s = snapshotFor(BigInt(Date.now()) * 1000n, endpoints);
  switch (variant) {
    case "corrupt": {
      const bytes = new Uint8Array(encodeSnapshot(s));
      for (let i = 0; i < 8; i++) {
        const at = 16 + Math.floor(rnd() * (bytes.length - 16));
        bytes[at] = bytes[at]! ^ (1 + Math.floor(rnd() * 255));
      }
      return bytes.subarray(0, bytes.length - 1 - Math.floor(rnd() * 8));
    }
    case "future-dated":
      s.createdAtMs = Date.now() + 600_000;
      break;
    case "wrong-pool":
      s.pool = { ...s.pool, name: "chaos-other-pool" };
      break;
    case "generation-poison":
      s.generation = 2n ** 64n - 1n;
      break;
  }
  return new Uint8Array(encodeSnapshot(s));
}

export async function pushBadSnapshot(
  controlUrl: string,
  token: string,
  variant: BadSnapshotKind,
  endpoints: string[],
  rnd: () => number,
): Promise<BadSnapshotResult> {
  try {
    const res = await fetch(controlUrl, {
      method: "POST",
      headers: { authorization: `Bearer ${token}`, "content-type": "application/octet-stream" },
      body: Buffer.from(badSnapshot(variant, endpoints, rnd)),
      signal: AbortSignal.timeout(10_000),
    });
    return { variant, status: res.status, body: (await res.text()).slice(0, 200) };
  } catch (err) {
    const cause = (err as Error & { cause?: { code?: string } }).cause?.code;
    return { variant, status: 0, body: `${(err as Error).message}${cause ? ` (${cause})` : ""}` };
  }
}
