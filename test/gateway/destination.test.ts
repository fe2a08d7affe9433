// The destination header as Envoy reads it: ORIGINAL_DST parses one whole value
// (Utility::parseInternetAddressAndPortNoThrow), override_host splits a list (getSelectedHosts). Hostile inputs.
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  firstHeaderValue,
  hostKey,
  parseInternetAddressAndPort,
  splitOverrideHosts,
} from "../../gateway/destination.ts";

function key(value: string): string | undefined {
  const d = parseInternetAddressAndPort(value);
  return d && hostKey(d);
}

test("ORIGINAL_DST parses one IPv4 ip:port", () => {
  assert.deepEqual(parseInternetAddressAndPort("10.0.0.1:8000"), {
    host: "10.0.0.1",
    port: 8000,
    family: "ipv4",
  });
  assert.equal(key("255.255.255.255:65535"), "255.255.255.255:65535");
});

test("a comma list is not one address: the whole value fails, no first-entry reading", () => {
  for (const v of [
    "10.0.0.1:80,10.0.0.2:80",
    "10.0.0.1:80,",
    "10.0.0.1:80, 10.0.0.2:80",
    ",10.0.0.1:80",
    ",",
  ]) {
    assert.equal(parseInternetAddressAndPort(v), undefined, v);
  }
});

test("whitespace: around the address it fails, around the port digits SimpleAtoi tolerates it", () => {
  assert.equal(parseInternetAddressAndPort(" 10.0.0.1:80"), undefined);
  assert.equal(parseInternetAddressAndPort("10.0.0.1 :80"), undefined);
  assert.equal(parseInternetAddressAndPort("\t10.0.0.1:80"), undefined);
  // absl::SimpleAtoi strips ASCII whitespace around the number and takes a leading '+'.
  assert.equal(key("10.0.0.1:80 "), "10.0.0.1:80");
  assert.equal(key("10.0.0.1: 80"), "10.0.0.1:80");
  assert.equal(key("10.0.0.1:80\t"), "10.0.0.1:80");
  assert.equal(key("10.0.0.1:+80"), "10.0.0.1:80");
  assert.equal(key("10.0.0.1:0080"), "10.0.0.1:80");
  assert.equal(parseInternetAddressAndPort("10.0.0.1:- 80"), undefined);
  assert.equal(parseInternetAddressAndPort("10.0.0.1:-80"), undefined);
  assert.equal(parseInternetAddressAndPort("10.0.0.1:+"), undefined);
  assert.equal(parseInternetAddressAndPort("10.0.0.1:8 0"), undefined);
});

test("ports: 0 and 65535 parse, 65536 and huge numbers do not", () => {
  assert.equal(parseInternetAddressAndPort("10.0.0.1:0")?.port, 0);
  assert.equal(parseInternetAddressAndPort("10.0.0.1:65535")?.port, 65535);
  assert.equal(parseInternetAddressAndPort("10.0.0.1:65536"), undefined);
  assert.equal(parseInternetAddressAndPort("10.0.0.1:99999999999999999999999"), undefined);
  assert.equal(parseInternetAddressAndPort("10.0.0.1:000000000000000000000080")?.port, 80);
  assert.equal(parseInternetAddressAndPort("10.0.0.1:"), undefined);
  assert.equal(parseInternetAddressAndPort("10.0.0.1:0x50"), undefined);
  assert.equal(parseInternetAddressAndPort("10.0.0.1:80a"), undefined);
});

test("hostnames and malformed IPv4 are rejected: Envoy wants IP literals", () => {
  for (const v of [
    "localhost:80",
    "pod-0.pool.default.svc:8000",
    "example.com:443",
    "010.0.0.1:80", // inet_pton: no leading zeros
    "10.0.0:80",
    "10.0.0.256:80",
    "10.0.0.1.5:80",
    "10.0.0.1",
    ":80",
    "",
    "http://10.0.0.1:80",
  ]) {
    assert.equal(parseInternetAddressAndPort(v), undefined, v);
  }
});

test("IPv6 needs brackets; the key is the canonical [addr]:port", () => {
  assert.deepEqual(parseInternetAddressAndPort("[::1]:8000"), {
    host: "::1",
    port: 8000,
    family: "ipv6",
  });
  assert.equal(key("[0:0:0:0:0:0:0:1]:8000"), "[::1]:8000");
  assert.equal(key("[FD00::A]:80"), "[fd00::a]:80");
  for (const v of [
    "::1:8000", // no brackets: taken as IPv4 "::1" → fails
    "[::1]",
    "[::1]8000",
    "[::1]:",
    "[::1]:65536",
    "[1.2.3.4]:80",
    "[::1]:80]:90",
    "[not-an-ip]:80",
    " [::1]:80",
  ]) {
    assert.equal(parseInternetAddressAndPort(v), undefined, v);
  }
});

test("override_host list: split on ',', empty and blank entries dropped, entries stripped", () => {
  assert.deepEqual(splitOverrideHosts("10.0.0.1:80,10.0.0.2:80"), ["10.0.0.1:80", "10.0.0.2:80"]);
  assert.deepEqual(splitOverrideHosts(" 10.0.0.1:80 ,\t10.0.0.2:80\t"), ["10.0.0.1:80", "10.0.0.2:80"]);
  assert.deepEqual(splitOverrideHosts("10.0.0.1:80,,10.0.0.2:80,"), ["10.0.0.1:80", "10.0.0.2:80"]);
  assert.deepEqual(splitOverrideHosts(",, , \t,"), []);
  assert.deepEqual(splitOverrideHosts(""), []);
  assert.deepEqual(splitOverrideHosts(undefined), []);
  // Entries are not parsed: they are matched as strings later, so junk passes through here.
  assert.deepEqual(splitOverrideHosts("pod-0:80, [::1]:80 ,10.0.0.1:080"), [
    "pod-0:80",
    "[::1]:80",
    "10.0.0.1:080",
  ]);
});

test("a very long list splits in order and ORIGINAL_DST still rejects it", () => {
  const entries = Array.from({ length: 20_000 }, (_, i) => `10.${(i >> 8) & 255}.${i & 255}.1:8000`);
  const value = entries.join(",");
  assert.deepEqual(splitOverrideHosts(value), entries);
  assert.equal(parseInternetAddressAndPort(value), undefined);
});

test("only the first value of a repeated header counts", () => {
  const headers: Array<[string, string]> = [
    ["x-gateway-destination-endpoint", "10.0.0.1:80"],
    ["x-gateway-destination-endpoint", "10.0.0.2:80"],
  ];
  assert.equal(firstHeaderValue(headers, "x-gateway-destination-endpoint"), "10.0.0.1:80");
  assert.equal(firstHeaderValue(headers, "x-other"), undefined);
});
