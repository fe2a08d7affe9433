// One endpoint's last metrics page, remembered as fixed text around its sample values.
// A model server sends the same series 20 times a second with new numbers; the page structure (names,
// labels, HELP/TYPE lines, order) changes only when a series appears or disappears. A template turns the
// next scrape into a comparison of the fixed text (a memcmp per line) plus a parse of the wanted values,
// instead of a search for every wanted name. Any difference outside a value span is a miss, and the
// caller parses the page the normal way (and learns a new template from it).
//
// Why a match gives exactly what the parser would: value spans run from the blank after a line's name or
// label set to the end of the line and never contain a newline, so every line start, metric name, label
// set, comment and TYPE line of the new page is the same text as in the learned page. The parser decides
// which samples exist from those alone; only the wanted lines' value and timestamp can differ, and those
// are parsed here with the parser's own code.
import { parseValueTail } from "./prom-parser.ts";
import type { Sample, SamplePositions } from "./prom-parser.ts";

/** A learned page structure. Endpoints whose pages have the same structure share one (see SHAPES). */
interface Shape {
  /** literals[i] precedes span i; the last one follows the last span. */
  readonly literals: string[];
  /** The wanted sample each span's value belongs to, or undefined for a line nobody reads. */
  readonly slots: (Sample | undefined)[];
  readonly samples: Map<string, Sample[]>;
  /** The learned parse included the mapping's fallback names. */
  readonly includesFallback: boolean;
}

/**
 * Learned shapes by their text. The pods of a pool run the same server build and serve the same series, so
 * their pages differ only in values: 1000 endpoints then read through one shape, whose text stays in the
 * CPU cache instead of 1000 copies competing for it. Sharing the samples is safe because match() writes
 * every slot before the caller reads them, and the caller reads them before the next page is matched
 * (scrape results are handled one at a time). Bounded: emptied when full (endpoints keep their shapes).
 */
const SHAPES = new Map<string, Shape>();
const MAX_SHAPES = 512;

function shared(shape: Shape): Shape {
  const key = JSON.stringify([
    shape.literals,
    shape.slots.map((s) => (s === undefined ? 0 : 1)),
    shape.includesFallback,
  ]);
  const known = SHAPES.get(key);
  if (known !== undefined) return known;
  if (SHAPES.size >= MAX_SHAPES) SHAPES.clear();
  SHAPES.set(key, shape);
  return shape;
}

export class PageTemplate {
  private shape?: Shape;
  private consecutiveMisses = 0;
  /** Pages read through the template, and pages that were not (for tests and benchmarks). */
  hits = 0;
  misses = 0;

  /** The learned parse included the mapping's fallback names (set by the caller through learn()). */
  get includesFallback(): boolean {
    return this.shape?.includesFallback ?? false;
  }

  /**
   * The samples of `text` if it has the learned structure, with their values updated in place;
   * undefined on a miss. The returned map and samples are the template's own (and may be shared with
   * other endpoints' templates): read them before matching another page, and don't keep them.
   */
  match(text: string): Map<string, Sample[]> | undefined {
    const shape = this.shape;
    if (shape === undefined) return this.miss();
    const { literals, slots } = shape;
    const n = text.length;
    let pos = 0;
    for (let i = 0; i < slots.length; i++) {
      const lit = literals[i]!;
      // slice + === compares with memcmp; startsWith(lit, pos) goes char by char (7× slower in V8).
      if (text.slice(pos, pos + lit.length) !== lit) return this.miss();
      pos += lit.length;
      let lineEnd = text.indexOf("\n", pos);
      if (lineEnd < 0) lineEnd = n;
      if (lineEnd > pos && text.charCodeAt(lineEnd - 1) === 13) lineEnd--; // CRLF, as the parser does
      const slot = slots[i];
      if (slot !== undefined && parseValueTail(text, pos, lineEnd, slot) !== undefined) return this.miss();
      pos = lineEnd;
    }
    const tail = literals[slots.length]!;
    if (n - pos !== tail.length || text.slice(pos) !== tail) return this.miss();
    this.consecutiveMisses = 0;
    this.hits++;
    return shape.samples;
  }

  /**
   * Whether the caller should pass `positions` to the parser and call learn() after this miss. A page
   * whose structure changes on every scrape would pay for learning every time; after three misses in a
   * row, learning is tried again only every 16th scrape.
   */
  wantsToLearn(): boolean {
    return this.consecutiveMisses <= 3 || this.consecutiveMisses % 16 === 0;
  }

  /**
   * Learns `text`, parsed without errors into `samples` (whose sample objects the template now owns), with
   * `positions` recorded by that parse. Every other sample line gets a span too, so its value may change.
   */
  learn(
    text: string,
    samples: Map<string, Sample[]>,
    positions: SamplePositions,
    includesFallback: boolean,
  ): void {
    const starts = positions.valueStarts;
    const order = starts.map((_, i) => i).sort((a, b) => starts[a]! - starts[b]!);
    const literals: string[] = [];
    const slots: (Sample | undefined)[] = [];
    let next = 0; // index into `order`
    let literalStart = 0;
    const n = text.length;
    for (let lineStart = 0; lineStart < n;) {
      let e = text.indexOf("\n", lineStart);
      if (e < 0) e = n;
      let lineEnd = e;
      if (lineEnd > lineStart && text.charCodeAt(lineEnd - 1) === 13) lineEnd--;
      let spanStart = -1;
      let slot: Sample | undefined;
      if (next < order.length && starts[order[next]!]! <= lineEnd) {
        spanStart = starts[order[next]!]!;
        slot = positions.samples[order[next]!];
        next++;
      } else spanStart = unreadValueStart(text, lineStart, lineEnd);
      if (spanStart >= 0) {
        literals.push(text.slice(literalStart, spanStart));
        slots.push(slot);
        literalStart = lineEnd;
      }
      lineStart = e + 1;
    }
    if (next !== order.length) return this.forget(); // a position not on any line: learn nothing
    literals.push(text.slice(literalStart));
    this.shape = shared({ literals, slots, samples, includesFallback });
  }

  forget(): void {
    this.shape = undefined;
  }

  private miss(): undefined {
    this.consecutiveMisses++;
    this.misses++;
    return undefined;
  }
}

/**
 * Where the value of a sample line nobody reads begins: after the blank that follows its name or its label
 * set, so the name (and the character ending it) stays in the fixed text. -1 for comments, blank lines and
 * lines that do not look like samples (they stay fixed text whole).
 */
function unreadValueStart(text: string, i: number, lineEnd: number): number {
  while (i < lineEnd && isBlank(text.charCodeAt(i))) i++;
  if (i === lineEnd || text.charCodeAt(i) === 35) return -1;
  while (i < lineEnd && isNameChar(text.charCodeAt(i))) i++;
  if (i < lineEnd && text.charCodeAt(i) === 123) {
    // Skip the label set; quoted values may hold "}" and escaped quotes.
    i++;
    let quoted = false;
    for (; i < lineEnd; i++) {
      const c = text.charCodeAt(i);
      if (quoted) {
        if (c === 92) i++;
        else if (c === 34) quoted = false;
      } else if (c === 34) quoted = true;
      else if (c === 125) break;
    }
    if (i >= lineEnd) return -1;
    i++;
  }
  return i < lineEnd && isBlank(text.charCodeAt(i)) ? i + 1 : -1;
}

function isBlank(c: number): boolean {
  return c === 32 || c === 9;
}

function isNameChar(c: number): boolean {
  return (c >= 97 && c <= 122) || (c >= 65 && c <= 90) || (c >= 48 && c <= 57) || c === 95 || c === 58;
}
