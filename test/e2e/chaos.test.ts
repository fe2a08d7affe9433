// The chaos run of issue 21, short: `npm run chaos -- --minutes 1 --seed 7` exactly as a user runs it (real
// processes: one simulator per pod, two sidecars, the gateway on build/filter.wasm), one cycle of every fault.
// It must lose no non-streaming request except those a killed process held, and every cut stream must reach
// its client as an error. The chaos process runs in its own process group, and every process it starts watches
// its parent (scripts/chaos/orphan-guard.ts), so a cancelled test leaves nothing running.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { repoRoot } from "../support/local-stack.ts";
import { withDeadline, waitFor } from "../support/deadline.ts";
import type { ChaosReport } from "../../scripts/chaos/report.ts";
import { buildSchedule } from "../../scripts/chaos/schedule.ts";

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

test("chaos, one minute (seed 7): no non-streaming request lost to a fault the product absorbs, every cut stream reported", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "epp-chaos-test-"));
  const json = join(dir, "chaos.json");
  // npm test builds the filter first; a run of this file alone builds it if it is missing.
  const build = existsSync(join(repoRoot, "build/filter.wasm")) ? ["--no-build"] : [];
  const child = spawn(
    process.execPath,
    ["--import", "tsx", "scripts/chaos.ts", "--minutes", "1", "--seed", "7", "--json", json, ...build],
    { cwd: repoRoot, stdio: ["ignore", "pipe", "pipe"], detached: true },
  );
  let output = "";
  child.stdout.on("data", (c: Buffer) => (output += c.toString()));
  child.stderr.on("data", (c: Buffer) => (output += c.toString()));
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  const killGroup = () => {
    try {
      process.kill(-child.pid!, "SIGKILL");
    } catch {
      // already gone
    }
  };
  t.signal.addEventListener("abort", killGroup, { once: true });
  process.once("exit", killGroup);
  try {
    const code = await withDeadline(exited, 280_000, "the chaos run to finish");
    console.log(output.slice(output.indexOf("chaos run:")));
    assert.ok(existsSync(json), `the run wrote its report; output:\n${output}`);
    const r = JSON.parse(readFileSync(json, "utf8")) as ChaosReport;

    // The seed decides the schedule, and every fault of the cycle ran.
    assert.deepEqual(r.schedule, JSON.parse(JSON.stringify(buildSchedule(7, 60_000, 4, 2))));
    const kinds = new Set(r.faults.map((f) => f.kind));
    assert.deepEqual([...kinds].sort(), ["all-sidecars", "gateway", "pod", "sidecar"]);
    assert.deepEqual(
      r.badSnapshots.map((b) => `${b.variant} ${b.status}`).sort(),
      ["corrupt 400", "future-dated 400", "generation-poison 204", "wrong-pool 400"],
      `bad snapshots: ${JSON.stringify(r.badSnapshots)}`,
    );
    assert.deepEqual(r.slowClients.map((s) => s.variant).sort(), [
      "abandoned-upload",
      "slow-body",
      "slow-headers",
    ]);
    assert.ok(r.traffic.requests.ok > 0 && r.traffic.streams.ok > 0, "traffic flowed");

    // The verdict, restated from the losses themselves.
    const lostElsewhere = r.lost.filter(
      (g) => g.kind === "request" && g.during !== "gateway killed" && !g.during.startsWith("on "),
    );
    assert.deepEqual(lostElsewhere, [], "no non-streaming request lost to a fault the product absorbs");
    assert.equal(r.traffic.streams.cutSilent, 0, "no cut stream looked like a clean end");
    assert.equal(code, 0, `exit status (verdict ${JSON.stringify(r.verdict)})`);

    // The gateway reported its Wasm memory: one entry per worker VM.
    assert.equal(Object.keys(r.memory.wasm).length, r.stack.gatewayWorkers);
    for (const m of Object.values(r.memory.wasm)) assert.ok(m.last >= 64 * 1024, "at least one Wasm page");

    // Nothing the run started is left.
    const pids = Object.values(r.processes).flat();
    assert.ok(pids.length >= 7);
    await waitFor("every process of the run to be gone", () => pids.every((p) => !alive(p)), 10_000);
  } finally {
    killGroup();
    process.off("exit", killGroup);
    rmSync(dir, { recursive: true, force: true });
  }
});
