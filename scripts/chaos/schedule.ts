// The seeded fault schedule. Every 60 s cycle holds each fault once, in a seeded order:
// - one lane of process faults, one at a time (a kill, a pause, a restart), so at most one kind of process
//   is down and each lost request can be put down to one fault;
// - a second lane of faults that need no restart (bad snapshots, slow clients), at seeded times that may
//   overlap the first lane.
// The same seed gives the same schedule; the wall-clock moments of each step are recorded by the run.
import { mulberry32 } from "../../sim/rng.ts";

export const CYCLE_MS = 60_000;

export type ProcessFault =
  | { kind: "pod"; pod: number; downMs: number }
  | { kind: "sidecar"; sidecar: number; downMs: number }
  | { kind: "all-sidecars"; downMs: number }
  | { kind: "gateway"; downMs: number };

export type BadSnapshotKind = "corrupt" | "future-dated" | "wrong-pool" | "generation-poison";
export type SlowClientKind = "slow-headers" | "slow-body" | "abandoned-upload";

export type SideFault =
  | { kind: "bad-snapshot"; variant: BadSnapshotKind }
  | { kind: "slow-clients"; variant: SlowClientKind; clients: number; holdMs: number };

export interface Scheduled<T> {
  /** Milliseconds after the chaos phase began; a process fault starts no earlier (its lane is serial). */
  atMs: number;
  fault: T;
}

export interface Schedule {
  seed: number;
  durationMs: number;
  processFaults: Array<Scheduled<ProcessFault>>;
  sideFaults: Array<Scheduled<SideFault>>;
}

export function buildSchedule(seed: number, durationMs: number, pods: number, sidecars: number): Schedule {
  const rnd = mulberry32(seed);
  const between = (lo: number, hi: number) => Math.round(lo + rnd() * (hi - lo));
  const shuffle = <T>(xs: T[]): T[] => {
    for (let i = xs.length - 1; i > 0; i--) {
      const j = Math.floor(rnd() * (i + 1));
      [xs[i], xs[j]] = [xs[j]!, xs[i]!];
    }
    return xs;
  };
  const processFaults: Array<Scheduled<ProcessFault>> = [];
  const sideFaults: Array<Scheduled<SideFault>> = [];
  for (let cycle = 0; cycle * CYCLE_MS < durationMs; cycle++) {
    const base = cycle * CYCLE_MS;
    const kinds = shuffle(["pod", "sidecar", "all-sidecars", "gateway"] as const);
    const slot = CYCLE_MS / kinds.length;
    kinds.forEach((kind, i) => {
      const atMs = base + i * slot + between(1000, 3000);
      // Sidecars all down for longer than staleAfterMs (5 s in the shipped configs): routing on a stale snapshot.
      const fault: ProcessFault =
        kind === "pod"
          ? { kind, pod: Math.floor(rnd() * pods), downMs: between(1000, 4000) }
          : kind === "sidecar"
            ? { kind, sidecar: Math.floor(rnd() * sidecars), downMs: between(1000, 4000) }
            : kind === "all-sidecars"
              ? { kind, downMs: between(6000, 9000) }
              : { kind, downMs: between(500, 2000) };
      if (atMs < durationMs) processFaults.push({ atMs, fault });
    });
    const side: SideFault[] = [
      ...(["corrupt", "future-dated", "wrong-pool", "generation-poison"] as const).map(
        (variant): SideFault => ({ kind: "bad-snapshot", variant }),
      ),
      ...(["slow-headers", "slow-body", "abandoned-upload"] as const).map((variant): SideFault => ({
        kind: "slow-clients",
        variant,
        clients: between(5, 20),
        holdMs: between(3000, 10_000),
      })),
    ];
    for (const fault of shuffle(side)) {
      const atMs = base + between(2000, CYCLE_MS - 12_000);
      if (atMs < durationMs) sideFaults.push({ atMs, fault });
    }
  }
  sideFaults.sort((a, b) => a.atMs - b.atMs);
  return { seed, durationMs, processFaults, sideFaults };
}

export function describeFault(f: ProcessFault | SideFault): string {
  switch (f.kind) {
    case "pod":
      return `SIGKILL pod-${f.pod}, restart after ${f.downMs} ms`;
    case "sidecar":
      return `SIGKILL sidecar-${"ab"[f.sidecar]}, restart after ${f.downMs} ms`;
    case "all-sidecars":
      return `SIGKILL every sidecar, restart after ${f.downMs} ms`;
    case "gateway":
      return `SIGKILL the gateway, restart after ${f.downMs} ms`;
    case "bad-snapshot":
      return `push a ${f.variant} snapshot`;
    case "slow-clients":
      return `${f.clients} ${f.variant} clients for ${f.holdMs} ms`;
  }
}
