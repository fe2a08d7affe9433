// Bundles the sidecar into one ESM file (dist/sidecar.mjs; the image runs it). Two esbuild passes: the
// status page's chart code (uPlot, browser side) first, then the sidecar, with sidecar/status/chart-assets.ts
// replaced by a module that holds that code as text — so the bundle serves the page without esbuild or
// node_modules, and from source the same module builds it on first use instead.
// Usage: node --import tsx scripts/bundle-sidecar.ts [--outfile=dist/sidecar.mjs]
import { build, type Plugin } from "esbuild";
import { parseArgs } from "node:util";
import { buildChartAssets } from "../sidecar/status/chart-bundle.ts";

const { values } = parseArgs({ options: { outfile: { type: "string", default: "dist/sidecar.mjs" } } });

const assets = await buildChartAssets();
const embedCharts: Plugin = {
  name: "embed-status-charts",
  setup(b) {
    b.onLoad({ filter: /[\\/]sidecar[\\/]status[\\/]chart-assets\.ts$/ }, () => ({
      loader: "ts",
      contents: `export const chartAssets = () => Promise.resolve(${JSON.stringify(assets)});`,
    }));
  },
};

await build({
  entryPoints: ["sidecar/main.ts"],
  bundle: true,
  platform: "node",
  target: "node20",
  format: "esm",
  // Bundled CommonJS dependencies call require().
  banner: {
    js: "import { createRequire } from 'node:module'; const require = createRequire(import.meta.url);",
  },
  // The Kubernetes client's node-fetch → whatwg-url → tr46 calls require("punycode"); left to Node's built-in,
  // Node 22+ warns (DEP0040), so the userland package is bundled instead.
  alias: { punycode: "punycode/" },
  outfile: values.outfile,
  plugins: [embedCharts],
  logLevel: "warning",
});
