// Browser side of the status page's charts (bundled by esbuild into an IIFE with uPlot and its CSS, inlined
// into the page: no CDN, no extra request). The page rebuilds its DOM on every poll; each chart keeps one
// uPlot instance across polls, keyed by the caller, and only gets new data (setData). A chart not placed
// during a frame is destroyed at its end. Every chart's element records in data-points how many non-null
// values it holds (the browser tests read it).
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";

export interface Line {
  label: string;
  color: string;
  values: Array<number | null>;
}

/** How the y axis prints its values. */
export type Unit = "count" | "pct" | "ms";

export interface LineChart {
  /** data-chart on the element (what tests and CSS select). */
  name: string;
  width: number;
  height: number;
  /** Step end times, ms since the epoch, aligned with every line's values. */
  t: number[];
  /** The x range to show, ms since the epoch. */
  from: number;
  to: number;
  lines: Line[];
  unit?: Unit;
  /** A fixed top of the y axis (KV use: 1); otherwise the largest value. */
  max?: number;
  /** A sparkline: no axes, legend or cursor. */
  spark?: boolean;
  title?: string;
}

/** What a chart's scales read at each redraw: the x range (seconds) and a fixed y top. */
interface View {
  x: [number, number];
  max: number | undefined;
}

interface Held {
  u: uPlot;
  el: HTMLElement;
  shape: string;
  frame: number;
  view: View;
}

const COUNT_STEPS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1e3, 2e3, 5e3, 1e4, 2e4, 5e4, 1e5, 1e6];
const held = new Map<string, Held>();
let frame = 0;

function yValues(unit: Unit | undefined): (u: uPlot, splits: number[]) => string[] {
  if (unit === "pct") return (_u, s) => s.map((v) => `${Math.round(v * 100)}%`);
  if (unit === "ms") return (_u, s) => s.map((v) => (v < 1000 ? `${v} ms` : `${(v / 1000).toFixed(1)} s`));
  return (_u, s) => s.map((v) => (Number.isInteger(v) ? String(v) : v.toFixed(1)));
}

function options(spec: LineChart, view: View, series: uPlot.Series[]): uPlot.Options {
  const spark = spec.spark === true;
  return {
    width: spec.width,
    height: spec.height,
    padding: spark ? [2, 1, 2, 1] : [8, 8, 0, 0],
    legend: { show: !spark },
    cursor: spark ? { show: false } : { drag: { x: false, y: false } },
    select: { show: false, left: 0, top: 0, width: 0, height: 0 },
    scales: {
      x: { time: true, range: () => view.x },
      // From 0, with a little room above the largest value so a line along the top stays visible.
      y: { range: (_u, _min, max) => [0, view.max ?? (max > 0 ? max * 1.08 : 1)] },
    },
    axes: spark
      ? [{ show: false }, { show: false }]
      : [
          { space: 60, size: 28, font: "10px system-ui, sans-serif" },
          {
            values: yValues(spec.unit),
            size: 54,
            font: "10px system-ui, sans-serif",
            // Counts tick at whole numbers.
            ...(spec.unit === undefined || spec.unit === "count" ? { incrs: COUNT_STEPS } : {}),
          },
        ],
    series: [{}, ...series],
  };
}

/** Places (or refreshes) a chart keyed by `key` and returns its element for the caller to put in the page. */
function place(
  key: string,
  spec: LineChart,
  series: uPlot.Series[],
  data: uPlot.AlignedData,
  points: number,
): HTMLElement {
  const shape = JSON.stringify([
    spec.name,
    spec.width,
    spec.height,
    spec.unit,
    spec.spark,
    series.map((s) => [s.label, s.stroke, s.fill]),
  ]);
  let h = held.get(key);
  if (h !== undefined && h.shape !== shape) {
    h.u.destroy();
    held.delete(key);
    h = undefined;
  }
  const view: View = { x: [spec.from / 1000, spec.to / 1000], max: spec.max };
  if (h === undefined) {
    const el = document.createElement("div");
    el.className = "chart";
    el.dataset.chart = spec.name;
    if (spec.title !== undefined) el.title = spec.title;
    h = { u: new uPlot(options(spec, view, series), data, el), el, shape, frame, view };
    held.set(key, h);
  } else {
    Object.assign(h.view, view);
    h.u.setData(data);
  }
  h.frame = frame;
  h.el.dataset.points = String(points);
  return h.el;
}

const seconds = (t: number[]) => t.map((v) => v / 1000);
const countValues = (vs: Array<number | null>) =>
  vs.reduce<number>((n, v) => (v === null || v === undefined ? n : n + 1), 0);

/** Lines over time: y from 0 to the largest value (or spec.max); gaps where a value is null. */
function line(key: string, spec: LineChart): HTMLElement {
  const series: uPlot.Series[] = spec.lines.map((l) => ({
    label: l.label,
    stroke: l.color,
    width: 1.5,
    points: { size: 3 },
    value: (_u, v) => (v === null ? "–" : yValues(spec.unit)(_u, [v])[0]!),
  }));
  const data = [seconds(spec.t), ...spec.lines.map((l) => l.values)] as uPlot.AlignedData;
  return place(
    key,
    spec,
    series,
    data,
    spec.lines.reduce((n, l) => n + countValues(l.values), 0),
  );
}

const HEALTH = [
  { label: "ok", color: "#2e9e5b" },
  { label: "stale", color: "#e0a800" },
  { label: "not ready", color: "#b3261e" },
];

/** A strip of one colour per step: a pod's scrape health (0 ok, 1 stale, 2 not ready). */
function health(
  key: string,
  spec: Omit<LineChart, "lines" | "max" | "unit" | "spark">,
  values: Array<number | null>,
): HTMLElement {
  const bars = uPlot.paths.bars!({ size: [1, Infinity], gap: 0 });
  const series: uPlot.Series[] = HEALTH.map((h) => ({
    label: h.label,
    stroke: h.color,
    fill: h.color,
    width: 0,
    paths: bars,
    points: { show: false },
  }));
  const data = [
    seconds(spec.t),
    ...HEALTH.map((_, level) => values.map((v) => (v === level ? 1 : null))),
  ] as uPlot.AlignedData;
  return place(key, { ...spec, lines: [], max: 1, spark: true }, series, data, countValues(values));
}

/** Starts a render: charts not placed before the matching end() are destroyed there. */
function begin(): void {
  frame++;
}

function end(): void {
  for (const [key, h] of held)
    if (h.frame !== frame) {
      h.u.destroy();
      held.delete(key);
    }
}

const Charts = { line, health, begin, end };
export type ChartsApi = typeof Charts;
(globalThis as unknown as { Charts: ChartsApi }).Charts = Charts;
