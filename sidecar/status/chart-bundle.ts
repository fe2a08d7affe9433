// Builds the status page's chart code (browser/charts.ts with uPlot and its CSS) with esbuild: one IIFE and
// one stylesheet, as text for the page to inline. The sidecar bundle runs this at bundle time
// (scripts/bundle-sidecar.ts); from source (tsx) chart-assets.ts runs it once at the first page request.
import { build } from "esbuild";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

// uPlot is MIT-licensed: its licence travels with the minified copy (esbuild keeps no ordinary comments).
function uplotLicence(): string {
  const dir = dirname(createRequire(import.meta.url).resolve("uplot/package.json"));
  const { version } = JSON.parse(readFileSync(join(dir, "package.json"), "utf8")) as { version: string };
  const text = readFileSync(join(dir, "LICENSE"), "utf8").replaceAll("*/", "* /");
  return `/*! uPlot ${version} (https://github.com/leeoniya/uPlot)\n${text}*/`;
}

/** The browser-side chart code and its stylesheet, as text to inline into the page. */
export interface ChartAssets {
  js: string;
  css: string;
}

export async function buildChartAssets(): Promise<ChartAssets> {
  const out = await build({
    entryPoints: [fileURLToPath(new URL("./browser/charts.ts", import.meta.url))],
    bundle: true,
    format: "iife",
    platform: "browser",
    target: "es2020",
    minify: true,
    banner: { js: uplotLicence() },
    write: false,
    outdir: "status-charts",
    logLevel: "silent",
  });
  const text = (ext: string) => out.outputFiles.find((f) => f.path.endsWith(ext))?.text ?? "";
  return { js: text(".js"), css: text(".css") };
}
