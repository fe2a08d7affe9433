// The live status page served at `/`: one HTML document with everything inlined — the chart code (uPlot,
// bundled by esbuild: chart-assets.ts) and the page's script (page-script.ts) — so it works offline and
// with no CDN (the network may be closed); its only other request is /status.json.
import { chartAssets, type ChartAssets } from "./chart-assets.ts";
import { PAGE_SCRIPT } from "./page-script.ts";

// Inline text must not close its element early.
const inline = (text: string, tag: string) => text.replace(new RegExp(`</${tag}`, "gi"), `<\\/${tag}`);

export function statusPageHtml(assets: ChartAssets): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>epp-wasm sidecar</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<style>
${inline(assets.css, "style")}
</style>
<style>
  body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5rem; color: #1d2530; background: #f6f7f9; }
  h1 { font-size: 1.3rem; margin: 0 0 .3rem; }
  h2 { font-size: 1.1rem; margin: 1.6rem 0 .4rem; }
  .meta { color: #5b6675; margin-bottom: .6rem; }
  table { border-collapse: collapse; width: 100%; background: #fff; box-shadow: 0 1px 2px #0001; }
  th, td { padding: .35rem .6rem; border-bottom: 1px solid #e6e9ee; text-align: left; white-space: nowrap; }
  th { background: #eef1f5; font-weight: 600; }
  td.num { text-align: right; font-variant-numeric: tabular-nums; }
  .ok { color: #137333; } .bad { color: #b3261e; font-weight: 600; } .warn { color: #9a6700; }
  .bar { display: inline-block; width: 90px; height: .7rem; background: #e6e9ee; vertical-align: middle; margin-right: .4rem; }
  .bar > span { display: block; height: 100%; background: #3a7bd5; }
  #state { font-weight: 600; }
  h3 { font-size: .95rem; margin: 1rem 0 .3rem; }
  .charts { display: flex; flex-wrap: wrap; gap: .6rem; }
  figure { margin: 0; background: #fff; box-shadow: 0 1px 2px #0001; padding: .3rem .4rem; }
  figcaption { font-size: .8rem; color: #5b6675; }
  .uplot { font-family: system-ui, sans-serif; }
  .uplot .u-legend { font-size: .8rem; text-align: left; }
  td .chart { display: inline-block; vertical-align: middle; margin-right: .3rem; }
  .note { color: #5b6675; max-width: 60rem; }
</style>
</head>
<body>
<h1>epp-wasm sidecar</h1>
<div class="meta">State: <span id="state">loading…</span> · updated <span id="updated">–</span></div>
<div id="pools"></div>
<script>
${inline(assets.js, "script")}
</script>
<script>
${PAGE_SCRIPT}</script>
</body>
</html>
`;
}

let page: Promise<string> | undefined;

/** The page, built once (from source the chart code is built at the first call). */
export function statusPage(): Promise<string> {
  page ??= chartAssets().then(statusPageHtml, (err: unknown) => {
    page = undefined;
    throw err;
  });
  return page;
}
