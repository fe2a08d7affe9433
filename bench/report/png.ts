// SVG → PNG without a browser: resvg compiled to wasm, with a system TrueType font (resvg-wasm
// cannot see system fonts by itself). Without a font the PNG still renders, minus the text.
import { existsSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { Resvg, initWasm } from "@resvg/resvg-wasm";

const FONT_CANDIDATES = [
  "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
  "/usr/share/fonts/dejavu/DejaVuSans.ttf",
  "/System/Library/Fonts/Supplemental/Arial.ttf",
  "C:\\Windows\\Fonts\\arial.ttf",
];

let ready: Promise<void> | undefined;
let fonts: Uint8Array[] = [];

function init(): Promise<void> {
  ready ??= (async () => {
    const wasmPath = createRequire(import.meta.url).resolve("@resvg/resvg-wasm/index_bg.wasm");
    await initWasm(readFileSync(wasmPath));
    fonts = FONT_CANDIDATES.filter((p) => existsSync(p))
      .slice(0, 1)
      .map((p) => readFileSync(p));
  })();
  return ready;
}

export async function svgToPng(svg: string): Promise<Uint8Array> {
  await init();
  const r = new Resvg(svg, {
    font: { fontBuffers: fonts, loadSystemFonts: false, defaultFontFamily: "DejaVu Sans" },
    background: "white",
  });
  return r.render().asPng();
}
