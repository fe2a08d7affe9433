#!/usr/bin/env node
// Runs the sidecar from source through tsx (container images run the esbuild bundle instead).
// The larger young generation keeps garbage collection from stalling the 50 ms scrape loop.
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";

const main = fileURLToPath(new URL("../sidecar/main.ts", import.meta.url));
const child = spawn(
  process.execPath,
  ["--max-semi-space-size=64", "--import", import.meta.resolve("tsx"), main, ...process.argv.slice(2)],
  { stdio: "inherit" },
);
for (const sig of ["SIGINT", "SIGTERM"]) process.on(sig, () => child.kill(sig));
child.on("exit", (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
