// The flowControl feature gate and block of an EndpointPickerConfig: upstream's shape (GIE v1.5, llm-d
// Router v0.10) loads into the FLOW_CONTROL section, quantities as Kubernetes parses them, and every
// setting the filter does not implement is refused with a message naming the field.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { ConfigError, loadConfig } from "../../sidecar/scheduling-config/load.ts";
import type { ConfigRejectReason } from "../../sidecar/scheduling-config/load.ts";
import { quantityValue } from "../../sidecar/scheduling-config/quantity.ts";
import { shippedConfigPath } from "../../sidecar/scheduling-config/shipped.ts";
import { encodeSnapshot } from "../../sidecar/snapshot/encoder.ts";
import { decodeSnapshot } from "../../sidecar/snapshot/decoder.ts";
import { DEFAULT_FLOW_BAND } from "../../sidecar/snapshot/types.ts";
import { minimalSnapshot } from "./snapshot-samples.ts";

const GIE = "apiVersion: inference.networking.x-k8s.io/v1alpha1\nkind: EndpointPickerConfig\n";
const LLMD = "apiVersion: llm-d.ai/v1alpha1\nkind: EndpointPickerConfig\n";
const PLUGINS = "plugins:\n- type: queue-scorer\n";
const GATE = "featureGates: [flowControl]\n";
const load = (text: string) => loadConfig(text, { source: "fc.yaml", displayName: "fc" });

test("GIE v1.5's documented flowControl example loads (config-text.md, Flow Control Configuration)", () => {
  const c = load(`${GIE}${GATE}${PLUGINS}flowControl:
  maxBytes: 10Gi
  defaultRequestTTL: 60s
  defaultPriorityBand:
    maxBytes: 10Gi
    maxRequests: 5000
  priorityBands:
  - priority: 100
    maxBytes: 5Gi
    maxRequests: 500
    orderingPolicyRef: fcfs-ordering-policy
    fairnessPolicyRef: global-strict-fairness-policy
`);
  assert.deepEqual(c.flowControl, {
    maxRequests: 0,
    maxBytes: 10 * 2 ** 30,
    defaultTtlMs: 60_000,
    fairness: "global-strict",
    defaultBand: { maxRequests: 5000, maxBytes: 10 * 2 ** 30, ttlMs: 0 },
    bands: [{ priority: 100, maxRequests: 500, maxBytes: 5 * 2 ** 30, ttlMs: 0 }],
  });
  assert.deepEqual(c.notes, []);
});

test("the gate alone: no pool-wide limits, no TTL, round-robin, upstream's per-band defaults", () => {
  const c = load(`${GIE}${GATE}${PLUGINS}`);
  assert.deepEqual(c.flowControl, {
    maxRequests: 0,
    maxBytes: 0,
    defaultTtlMs: 0,
    fairness: "round-robin",
    defaultBand: { ...DEFAULT_FLOW_BAND },
    bands: [],
  });
  assert.equal(load(`${GIE}${PLUGINS}`).flowControl, undefined, "no gate, no block: flow control off");
});

test("llm-d Router files: flowControl=true, a 60s default TTL, flowControl.saturationDetector without the gate", () => {
  const on = load(`${LLMD}featureGates: [flowControl=true]\n${PLUGINS}`);
  assert.equal(on.flowControl?.defaultTtlMs, 60_000);
  assert.equal(
    load(`${LLMD}${GATE}${PLUGINS}flowControl:\n  defaultRequestTTL: 0s\n`).flowControl?.defaultTtlMs,
    0,
  );
  const off = load(`${LLMD}featureGates: [flowControl=false]\n${PLUGINS}`);
  assert.equal(off.flowControl, undefined);
  const detector = load(`${LLMD}plugins:
- type: queue-scorer
- type: utilization-detector
  name: sat
  parameters: {queueDepthThreshold: 9}
flowControl:
  saturationDetector: {pluginRef: sat}
`);
  assert.equal(detector.flowControl, undefined);
  assert.equal(detector.section.saturation, 1);
  assert.equal(detector.thresholds.queueThreshold, 9);
});

test("bands: any order in the file, sorted highest first; 0 means the default; requestTTL per band", () => {
  const c = load(`${GIE}${GATE}${PLUGINS}flowControl:
  maxRequests: 1k
  maxBytes: 1.5Gi
  priorityBands:
  - {priority: -10, maxRequests: 10, requestTTL: 5s}
  - {priority: 100, maxBytes: 500M, requestTTL: 1500us}
  - {priority: 0, maxRequests: 0, maxBytes: 0}
`);
  assert.equal(c.flowControl!.maxRequests, 1000);
  assert.equal(c.flowControl!.maxBytes, 1610612736);
  assert.deepEqual(c.flowControl!.bands, [
    { priority: 100, maxRequests: 5000, maxBytes: 500_000_000, ttlMs: 2 },
    { priority: 0, maxRequests: 5000, maxBytes: 2 ** 30, ttlMs: 0 },
    { priority: -10, maxRequests: 10, maxBytes: 2 ** 30, ttlMs: 5000 },
  ]);
});

test("fairness: named by a declared plugin or by type; bands without a ref follow the one that has one", () => {
  const byName = load(`${GIE}${GATE}plugins:
- type: queue-scorer
- type: round-robin-fairness-policy
  name: rr
flowControl:
  priorityBands:
  - {priority: 1, fairnessPolicyRef: rr}
  - {priority: 0}
`);
  assert.equal(byName.flowControl!.fairness, "round-robin");
  assert.equal(byName.section.plugins.length, 1, "policies are not scheduling plugins");
  const follow = load(`${GIE}${GATE}${PLUGINS}flowControl:
  defaultPriorityBand: {fairnessPolicyRef: global-strict-fairness-policy}
  priorityBands:
  - {priority: 1}
`);
  assert.equal(follow.flowControl!.fairness, "global-strict");
});

test("config/scheduling/flow-control.yaml schedules exactly as default.yaml", () => {
  const read = (name: string) =>
    loadConfig(readFileSync(shippedConfigPath(name), "utf8"), { source: name, displayName: name });
  assert.deepEqual(read("flow-control").section, read("default").section);
  assert.equal(read("default").flowControl, undefined);
});

test("the loaded section travels through the encoder and decoder unchanged", () => {
  const path = shippedConfigPath("flow-control");
  const c = loadConfig(readFileSync(path, "utf8"), { source: path, displayName: "flow-control" });
  assert.equal(c.flowControl!.bands.length, 3);
  const s = { ...minimalSnapshot(), scheduling: c.section, flowControl: c.flowControl! };
  const { crc, ...decoded } = decodeSnapshot(encodeSnapshot(s)).flowControl!;
  assert.equal(typeof crc, "number");
  assert.deepEqual(decoded, c.flowControl);
});

const REFUSALS: [string, string, ConfigRejectReason, string, RegExp][] = [
  [
    "a flowControl block without the gate",
    `${GIE}${PLUGINS}flowControl:\n  maxBytes: 1Gi\n`,
    "bad_flow_control",
    "flowControl.maxBytes",
    /only with featureGates: \[flowControl\]/,
  ],
  [
    "a flowControl that is no mapping, without the gate",
    `${GIE}${PLUGINS}flowControl: on\n`,
    "bad_document",
    "flowControl",
    /expected a mapping/,
  ],
  [
    "the gate switched off",
    `${LLMD}featureGates: [flowControl=false]\n${PLUGINS}flowControl:\n  priorityBands: []\n`,
    "bad_flow_control",
    "flowControl.priorityBands",
    /featureGates/,
  ],
  [
    "a gate value other than true/false",
    `${LLMD}featureGates: [flowControl=yes]\n${PLUGINS}`,
    "bad_document",
    "featureGates",
    /=true or =false/,
  ],
  [
    "a policy plugin without the gate",
    `${GIE}plugins:\n- type: round-robin-fairness-policy\n`,
    "bad_flow_control",
    "plugins[0].type",
    /needs featureGates/,
  ],
  [
    "a policy plugin with parameters",
    `${GIE}${GATE}plugins:\n- type: fcfs-ordering-policy\n  parameters: {x: 1}\n`,
    "unknown_parameter",
    "plugins[0].parameters",
    /takes no parameters/,
  ],
  [
    "a policy plugin in a profile",
    `${GIE}${GATE}plugins:\n- type: fcfs-ordering-policy\nschedulingProfiles:\n- name: d\n  plugins:\n  - pluginRef: fcfs-ordering-policy\n`,
    "bad_profile",
    "schedulingProfiles[0].plugins[0].pluginRef",
    /cannot be in a profile/,
  ],
  [
    "an EDF ordering policy",
    `${GIE}${GATE}${PLUGINS}flowControl:\n  priorityBands:\n  - {priority: 0, orderingPolicyRef: edf-ordering-policy}\n`,
    "unsupported_feature",
    "flowControl.priorityBands[0].orderingPolicyRef",
    /only fcfs-ordering-policy/,
  ],
  [
    "an EDF ordering plugin",
    `${GIE}${GATE}plugins:\n- type: edf-ordering-policy\n`,
    "unsupported_type",
    "plugins[0].type",
    /not implemented/,
  ],
  [
    "two fairness policies",
    `${GIE}${GATE}${PLUGINS}flowControl:\n  priorityBands:\n  - {priority: 1, fairnessPolicyRef: round-robin-fairness-policy}\n  - {priority: 0, fairnessPolicyRef: global-strict-fairness-policy}\n`,
    "unsupported_feature",
    "flowControl.priorityBands[1].fairnessPolicyRef",
    /one fairness policy \(flowControl\.priorityBands\[0\]\.fairnessPolicyRef names round-robin\)/,
  ],
  [
    "a fairness ref that is no fairness policy",
    `${GIE}${GATE}${PLUGINS}flowControl:\n  priorityBands:\n  - {priority: 1, fairnessPolicyRef: queue-scorer}\n`,
    "bad_flow_control",
    "flowControl.priorityBands[0].fairnessPolicyRef",
    /expected one of round-robin-fairness-policy, global-strict-fairness-policy, got queue-scorer/,
  ],
  [
    "an adaptive usage-limit policy",
    `${GIE}${GATE}${PLUGINS}flowControl:\n  usageLimitPolicyPluginRef: adaptive\n`,
    "unsupported_feature",
    "flowControl.usageLimitPolicyPluginRef",
    /static-usage-limit-policy/,
  ],
  [
    "llm-d's negative-priority template",
    `${LLMD}${GATE}${PLUGINS}flowControl:\n  defaultNegativePriorityBand: {maxRequests: 5}\n`,
    "unsupported_feature",
    "flowControl.defaultNegativePriorityBand",
    /not implemented/,
  ],
  [
    "llm-d's eviction",
    `${LLMD}${GATE}${PLUGINS}flowControl:\n  enableEviction: true\n`,
    "unsupported_feature",
    "flowControl.enableEviction",
    /not implemented/,
  ],
  [
    "a repeated priority",
    `${GIE}${GATE}${PLUGINS}flowControl:\n  priorityBands:\n  - {priority: 5}\n  - {priority: 5}\n`,
    "bad_flow_control",
    "flowControl.priorityBands[1].priority",
    /also flowControl\.priorityBands\[0\]/,
  ],
  [
    "a band without a priority",
    `${GIE}${GATE}${PLUGINS}flowControl:\n  priorityBands:\n  - {maxRequests: 5}\n`,
    "bad_flow_control",
    "flowControl.priorityBands[0].priority",
    /expected an integer/,
  ],
  [
    "a priority on the default band",
    `${GIE}${GATE}${PLUGINS}flowControl:\n  defaultPriorityBand: {priority: 3}\n`,
    "bad_flow_control",
    "flowControl.defaultPriorityBand.priority",
    /takes no priority/,
  ],
  [
    "a negative quantity",
    `${GIE}${GATE}${PLUGINS}flowControl:\n  maxBytes: -1Gi\n`,
    "bad_flow_control",
    "flowControl.maxBytes",
    /negative/,
  ],
  [
    "a malformed quantity",
    `${GIE}${GATE}${PLUGINS}flowControl:\n  priorityBands:\n  - {priority: 0, maxBytes: 10GB}\n`,
    "bad_flow_control",
    "flowControl.priorityBands[0].maxBytes",
    /Kubernetes quantity/,
  ],
  [
    "a request count beyond 32 bits",
    `${GIE}${GATE}${PLUGINS}flowControl:\n  maxRequests: 5G\n`,
    "bad_flow_control",
    "flowControl.maxRequests",
    /more than the limit/,
  ],
  [
    "a TTL without a unit",
    `${GIE}${GATE}${PLUGINS}flowControl:\n  defaultRequestTTL: 30\n`,
    "bad_flow_control",
    "flowControl.defaultRequestTTL",
    /duration/,
  ],
  [
    "a negative band TTL",
    `${GIE}${GATE}${PLUGINS}flowControl:\n  priorityBands:\n  - {priority: 0, requestTTL: -1s}\n`,
    "bad_flow_control",
    "flowControl.priorityBands[0].requestTTL",
    /negative/,
  ],
  [
    "an unknown band field",
    `${GIE}${GATE}${PLUGINS}flowControl:\n  priorityBands:\n  - {priority: 0, ttl: 1s}\n`,
    "bad_flow_control",
    "flowControl.priorityBands[0].ttl",
    /unknown field/,
  ],
  [
    "an unknown flowControl field",
    `${GIE}${GATE}${PLUGINS}flowControl:\n  queues: 3\n`,
    "bad_flow_control",
    "flowControl.queues",
    /unknown field/,
  ],
];

for (const [what, text, reason, field, message] of REFUSALS) {
  test(`flow control refused, naming the field: ${what}`, () => {
    assert.throws(
      () => load(text),
      (e: unknown) => {
        assert.ok(e instanceof ConfigError, String(e));
        assert.equal(e.reason, reason, e.message);
        assert.equal(e.field, field, e.message);
        assert.ok(e.message.startsWith(`fc.yaml: `), e.message);
        assert.match(e.message, message);
        return true;
      },
    );
  });
}

test("quantities: Kubernetes' suffixes, exponents and fractions, rounded up like Quantity.Value()", () => {
  const cases: [unknown, bigint | undefined][] = [
    ["10Gi", 10n * 2n ** 30n],
    ["1.5Gi", 1610612736n],
    ["500M", 500_000_000n],
    ["1k", 1000n],
    ["1E", 10n ** 18n],
    ["1e3", 1000n],
    ["2E+2", 200n],
    [".5k", 500n],
    ["500m", 1n],
    ["1.2", 2n],
    ["+7", 7n],
    ["-1", -1n],
    [5000, 5000n],
    ["", undefined],
    [".", undefined],
    ["10GB", undefined],
    ["1Ki5", undefined],
    ["0x10", undefined],
    [" 1", undefined],
    ["1e-999", undefined],
    [Infinity, undefined],
    [true, undefined],
  ];
  for (const [v, want] of cases) assert.equal(quantityValue(v), want, JSON.stringify(v));
});
