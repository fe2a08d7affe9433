// The status page's chart code and stylesheet. From source they are built on first use (chart-bundle.ts,
// esbuild); scripts/bundle-sidecar.ts replaces this module in dist/sidecar.mjs with the same text, built at
// bundle time, so the image needs neither esbuild nor node_modules.
import type { ChartAssets } from "./chart-bundle.ts";

export type { ChartAssets };

let assets: Promise<ChartAssets> | undefined;

export function chartAssets(): Promise<ChartAssets> {
  // A failed build is not kept: the next page request tries again (and shows the error meanwhile).
  assets ??= import("./chart-bundle.ts")
    .then((m) => m.buildChartAssets())
    .catch((err: unknown) => {
      assets = undefined;
      throw err;
    });
  return assets;
}
