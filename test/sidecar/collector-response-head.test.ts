// readResponseHead reads a scrape response's head from its bytes. Its rules are simple to state over a
// Latin-1 string, so a string version of them is the oracle here, compared on seeded random heads built
// from the cases that matter: header-name case, blanks around values, duplicated and malformed headers,
// bare LF or CR inside lines, non-ASCII bytes, short or odd status lines.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readResponseHead } from "../../sidecar/collector/lean-http.ts";
import type { ResponseHead } from "../../sidecar/collector/lean-http.ts";
import { mulberry32 } from "../../sim/rng.ts";

/** The rules, over the head as a Latin-1 string (head = bytes before the CRLFCRLF). */
function oracle(head: string): ResponseHead | string {
  if (!head.startsWith("HTTP/1.")) return "not an HTTP/1.x response";
  const out: ResponseHead = {
    status: Number(head.slice(9, 12)),
    contentLength: -1,
    chunked: false,
    close: head.startsWith("HTTP/1.0"),
  };
  const lines = head.split("\r\n").slice(1);
  for (const line of lines) {
    const colon = line.indexOf(":");
    if (colon <= 0) continue;
    const name = line.slice(0, colon).toLowerCase();
    const value = line.slice(colon + 1).trim();
    if (name === "content-length") {
      if (out.contentLength < 0) {
        const n = /^[0-9]+$/.test(value) ? Number(value) : NaN;
        if (!Number.isSafeInteger(n)) return "bad Content-Length";
        out.contentLength = n;
      }
    } else if (name === "transfer-encoding") out.chunked ||= /chunked/i.test(value);
    else if (name === "connection") out.close ||= /close/i.test(value);
  }
  return out;
}

function read(head: string): ResponseHead | string {
  const bytes = Buffer.from(head + "\r\n\r\nbody", "latin1");
  const out: ResponseHead = { status: 0, contentLength: -1, chunked: false, close: false };
  return readResponseHead(bytes, head.length, out) ?? out;
}

const STATUS = [
  "HTTP/1.1 200 OK",
  "HTTP/1.0 200 OK",
  "HTTP/1.1 404 Not Found",
  "HTTP/1.1 2e2 odd",
  "HTTP/1.1 20",
  "HTTP/1.",
  "HTTP/1.1 abc",
  "HTTP/2 200",
  "http/1.1 200 OK",
  "HTtp/1.1 200 OK",
  "HTTP/1.1 200",
  "ICY 200 OK",
  "",
];
const NAMES = [
  "Content-Length",
  "content-length",
  "CONTENT-LENGTH",
  "Content-Length ",
  "Transfer-Encoding",
  "transfer-encoding",
  "Connection",
  "CONNECTION",
  "Keep-Alive",
  "Date",
  "X-Connection",
  "Content-Lengt\xe9",
  "",
];
const VALUES = [
  "907",
  " 907 ",
  "\t12\t",
  "0",
  "007",
  "12 34",
  "-1",
  "1e3",
  "",
  "\xa042\xa0",
  "9007199254740991",
  "9007199254740992",
  "99999999999999999999",
  "chunked",
  "gzip, Chunked",
  "close",
  "keep-alive",
  "Keep-Alive, CLOSE",
  "clos",
  "cl\xf6se",
  "x:y",
  "a\nb",
  "a\rb",
];

test("response head: the byte reader follows the rules exactly on 5000 seeded random heads", () => {
  const r = mulberry32(20261203);
  const pick = <T>(xs: readonly T[]) => xs[Math.floor(r() * xs.length)]!;
  for (let n = 0; n < 5000; n++) {
    const lines = [pick(STATUS)];
    const count = Math.floor(r() * 6);
    for (let i = 0; i < count; i++) {
      const roll = r();
      if (roll < 0.08) lines.push("no colon here");
      else if (roll < 0.12) lines.push(":" + pick(VALUES));
      else lines.push(`${pick(NAMES)}:${pick(VALUES)}`);
    }
    const head = lines.join(r() < 0.05 ? "\n" : "\r\n");
    assert.deepEqual(read(head), oracle(head), JSON.stringify(head));
  }
});

test("response head: typical server heads", () => {
  assert.deepEqual(
    read("HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\nContent-Length: 907\r\nConnection: keep-alive"),
    { status: 200, contentLength: 907, chunked: false, close: false },
  );
  assert.deepEqual(read("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close"), {
    status: 200,
    contentLength: -1,
    chunked: true,
    close: true,
  });
  assert.deepEqual(read("HTTP/1.0 503 Service Unavailable"), {
    status: 503,
    contentLength: -1,
    chunked: false,
    close: true,
  });
  assert.equal(read("HTTP/1.1 200 OK\r\nContent-Length: 12x"), "bad Content-Length");
  assert.equal(read("<html>"), "not an HTTP/1.x response");
});
