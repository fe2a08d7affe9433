// The EndpointPickerConfig loader: upstream-shaped files load unchanged, each refusal names the file, the
// plugin and the field, and the typed output is what the encoder writes as the PLUGINS section.
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { ConfigError, loadConfig } from "../../sidecar/scheduling-config/load.ts";
import { parseDurationMs } from "../../sidecar/scheduling-config/duration.ts";
import { CATALOGUE } from "../../sidecar/scheduling-config/catalogue.ts";
import { shippedConfigPath } from "../../sidecar/scheduling-config/shipped.ts";
import { encodeSnapshot } from "../../sidecar/snapshot/encoder.ts";
import { decodeSnapshot } from "../../sidecar/snapshot/decoder.ts";
import { minimalSnapshot } from "./snapshot-samples.ts";

const load = (text: string, source = "test.yaml") => loadConfig(text, { source, displayName: "test" });

/** GIE v1.5's in-binary default (pkg/epp/config/loader/defaults.go) written out as a file, with the
 *  data layer and parser sections its chart adds. */
export const GIE_V15_DEFAULT = `apiVersion: inference.networking.x-k8s.io/v1alpha1
kind: EndpointPickerConfig
plugins:
- type: queue-scorer
- type: kv-cache-utilization-scorer
- type: prefix-cache-scorer
  parameters:
    blockSizeTokens: 16
    maxPrefixBlocksToMatch: 256
    lruCapacityPerServer: 31250
    autoTune: true
- type: metrics-data-source
- type: core-metrics-extractor
- type: openai-parser
schedulingProfiles:
- name: default
  plugins:
  - pluginRef: queue-scorer
    weight: 2
  - pluginRef: kv-cache-utilization-scorer
    weight: 2
  - pluginRef: prefix-cache-scorer
    weight: 3
dataLayer:
  sources:
  - pluginRef: metrics-data-source
    extractors:
    - pluginRef: core-metrics-extractor
parser:
  pluginRef: openai-parser
`;

/** llm-d Router's shape: its API group, a named picker, session affinity with nested parameters, a
 *  detector with a duration. */
export const LLM_D_CONFIG = `apiVersion: llm-d.ai/v1alpha1
kind: EndpointPickerConfig
plugins:
- type: single-profile-handler
- name: sessions
  type: session-affinity-scorer
  parameters:
    encodedEndpointHeaderConfig:
      header: x-session-token
- type: queue-scorer
- type: max-score-picker
  parameters:
    maxNumOfEndpoints: 1
- type: utilization-detector
  parameters:
    queueDepthThreshold: 8
    kvCacheUtilThreshold: 0.9
    metricsStalenessThreshold: 150ms
schedulingProfiles:
- name: default
  plugins:
  - pluginRef: sessions
    weight: 10
  - pluginRef: queue-scorer
  - pluginRef: max-score-picker
saturationDetector:
  pluginRef: utilization-detector
`;

test("a GIE v1.5 default config loads: substituted data-layer/parser plugins dropped, picker left to the default", () => {
  const c = load(GIE_V15_DEFAULT);
  assert.deepEqual(c.section, {
    plugins: [
      { type: "queue-scorer", name: "queue-scorer", params: {} },
      { type: "kv-cache-utilization-scorer", name: "kv-cache-utilization-scorer", params: {} },
      {
        type: "prefix-cache-scorer",
        name: "prefix-cache-scorer",
        params: {
          blockSizeTokens: 16,
          maxPrefixBlocksToMatch: 256,
          lruCapacityPerServer: 31250,
          autoTune: true,
        },
      },
    ],
    profiles: [
      {
        name: "default",
        entries: [
          { plugin: 0, weight: 2 },
          { plugin: 1, weight: 2 },
          { plugin: 2, weight: 3 },
        ],
      },
    ],
    handler: null,
    saturation: null,
  });
  assert.deepEqual(c.thresholds, { queueThreshold: 5, kvThreshold: 0.8, metricsStalenessMs: 200 });
  assert.equal(c.notes.length, 4, c.notes.join("\n"));
});

test("an llm-d Router config loads: nested parameters flattened, duration in ms, picker, handler, detector", () => {
  const c = load(LLM_D_CONFIG);
  assert.deepEqual(c.section.plugins[1], {
    type: "session-affinity-scorer",
    name: "sessions",
    params: { "encodedEndpointHeaderConfig.header": "x-session-token" },
  });
  assert.deepEqual(c.section.plugins[4]!.params, {
    queueDepthThreshold: 8,
    kvCacheUtilThreshold: 0.9,
    metricsStalenessThreshold: 150,
  });
  assert.deepEqual(c.section.profiles[0]!.entries, [
    { plugin: 1, weight: 10 },
    { plugin: 2, weight: 1 }, // unweighted scorer: 1, as upstream
    { plugin: 3, weight: 1 },
  ]);
  assert.equal(c.section.handler, 0);
  assert.equal(c.section.saturation, 4);
  assert.deepEqual(c.thresholds, { queueThreshold: 8, kvThreshold: 0.9, metricsStalenessMs: 150 });
});

test("the loaded config travels through the encoder and decoder unchanged", () => {
  for (const text of [GIE_V15_DEFAULT, LLM_D_CONFIG]) {
    const c = load(text);
    const s = { ...minimalSnapshot(), scheduling: c.section };
    const { crc, ...back } = decodeSnapshot(encodeSnapshot(s)).scheduling!;
    assert.deepEqual(back, c.section);
    assert.equal(typeof crc, "number");
  }
});

test("the PLUGINS bytes, and so their CRC, do not move when pods change", () => {
  const c = load(LLM_D_CONFIG);
  const a = minimalSnapshot();
  const b = minimalSnapshot();
  b.endpoints[0]!.podName = "another-pod";
  b.endpoints.push({ ...b.endpoints[0]!, podName: "third", address: "10.9.9.9" });
  const crcOf = (s: typeof a) =>
    decodeSnapshot(encodeSnapshot({ ...s, scheduling: c.section })).scheduling!.crc;
  assert.equal(crcOf(a), crcOf(b));
});

test("no schedulingProfiles: one default profile of every filter, scorer and picker (upstream's rule)", () => {
  const c = load(`apiVersion: inference.networking.x-k8s.io/v1alpha1
kind: EndpointPickerConfig
plugins:
- type: queue-scorer
- type: utilization-detector
- type: random-picker
`);
  assert.deepEqual(c.section.profiles, [
    {
      name: "default",
      entries: [
        { plugin: 0, weight: 1 },
        { plugin: 2, weight: 1 },
      ],
    },
  ]);
  assert.equal(c.section.saturation, 1, "a plugin named utilization-detector is the default detector");
});

const HEAD = "apiVersion: inference.networking.x-k8s.io/v1alpha1\nkind: EndpointPickerConfig\n";
const REFUSALS: [string, string, { reason: string; plugin?: string; field: string; message: RegExp }][] = [
  [
    "unknown type",
    `${HEAD}plugins:\n- type: magic-scorer\nschedulingProfiles:\n- name: p\n  plugins:\n  - pluginRef: magic-scorer\n`,
    {
      reason: "unknown_type",
      plugin: "magic-scorer",
      field: "plugins[0].type",
      message: /supported: queue-scorer, /,
    },
  ],
  [
    "unknown parameter",
    `${HEAD}plugins:\n- type: prefix-cache-scorer\n  parameters:\n    hashBlockSize: 64\n`,
    {
      reason: "unknown_parameter",
      plugin: "prefix-cache-scorer",
      field: "plugins[0].parameters.hashBlockSize",
      message: /known: autoTune/,
    },
  ],
  [
    "mistyped parameter",
    `${HEAD}plugins:\n- name: d\n  type: utilization-detector\n  parameters:\n    queueDepthThreshold: five\n`,
    {
      reason: "bad_parameter",
      plugin: "d",
      field: "plugins[0].parameters.queueDepthThreshold",
      message: /expected an integer/,
    },
  ],
  [
    "bad duration",
    `${HEAD}plugins:\n- type: utilization-detector\n  parameters:\n    metricsStalenessThreshold: 200\n`,
    {
      reason: "bad_parameter",
      plugin: "utilization-detector",
      field: "plugins[0].parameters.metricsStalenessThreshold",
      message: /duration/,
    },
  ],
  [
    "negative weight",
    `${HEAD}plugins:\n- type: queue-scorer\nschedulingProfiles:\n- name: p\n  plugins:\n  - pluginRef: queue-scorer\n    weight: -2\n`,
    {
      reason: "bad_weight",
      plugin: "queue-scorer",
      field: "schedulingProfiles[0].plugins[0].weight",
      message: /negative/,
    },
  ],
  [
    "profile names a missing plugin",
    `${HEAD}plugins:\n- type: queue-scorer\nschedulingProfiles:\n- name: p\n  plugins:\n  - pluginRef: kv-scorer\n`,
    {
      reason: "unknown_plugin_ref",
      plugin: "kv-scorer",
      field: "schedulingProfiles[0].plugins[0].pluginRef",
      message: /no plugin named kv-scorer/,
    },
  ],
  [
    "upstream type we do not implement",
    `${HEAD}plugins:\n- type: token-load-scorer\n`,
    {
      reason: "unsupported_type",
      plugin: "token-load-scorer",
      field: "plugins[0].type",
      message: /upstream type token-load-scorer is not implemented; supported: .*max-score-picker/,
    },
  ],
  [
    "unknown top-level field",
    `${HEAD}plugin: []\n`,
    { reason: "unknown_field", field: "plugin", message: /unknown field/ },
  ],
  [
    "flowControl settings without the gate",
    `${HEAD}plugins: []\nflowControl:\n  maxRequests: 10\n`,
    {
      reason: "bad_flow_control",
      field: "flowControl.maxRequests",
      message: /featureGates: \[flowControl\]/,
    },
  ],
  [
    "two profiles with the single-profile handler",
    `${HEAD}plugins:\n- type: queue-scorer\nschedulingProfiles:\n- name: a\n  plugins: []\n- name: b\n  plugins: []\n`,
    { reason: "bad_handler", field: "schedulingProfiles", message: /exactly one profile/ },
  ],
  [
    "YAML syntax",
    `${HEAD}plugins: [\n`,
    { reason: "parse_error", field: "(document)", message: /test\.yaml/ },
  ],
];

for (const [what, text, want] of REFUSALS) {
  test(`refused with one message naming file, plugin and field: ${what}`, () => {
    assert.throws(
      () => load(text, "configs/pool-a.yaml"),
      (e: unknown) => {
        assert.ok(e instanceof ConfigError, String(e));
        assert.equal(e.reason, want.reason);
        assert.equal(e.plugin, want.plugin);
        assert.equal(e.field, want.field);
        assert.ok(e.message.startsWith("configs/pool-a.yaml: "), e.message);
        if (want.plugin !== undefined) assert.ok(e.message.includes(`plugin "${want.plugin}"`), e.message);
        assert.ok(e.message.includes(`field ${want.field}`), e.message);
        assert.match(e.message.replace("configs/pool-a.yaml", "test.yaml"), want.message);
        return true;
      },
    );
  });
}

test("durations: Go's forms in milliseconds", () => {
  assert.equal(parseDurationMs("200ms"), 200);
  assert.equal(parseDurationMs("1.5s"), 1500);
  assert.equal(parseDurationMs("1m30s"), 90_000);
  assert.equal(parseDurationMs("500us"), 0.5);
  assert.equal(parseDurationMs("0"), 0);
  for (const bad of ["", "200", "ms", "1x", "1s2", " 1s"]) assert.equal(parseDurationMs(bad), undefined, bad);
});

test("every catalogue parameter's default passes its own type check", () => {
  for (const spec of CATALOGUE) {
    const params = Object.fromEntries(Object.entries(spec.params).map(([k, p]) => [k, p.default]));
    // Dotted keys are nested in a file; write them as one level (the loader accepts both).
    const yaml = `${HEAD}plugins:\n- type: ${spec.type}\n  parameters: ${JSON.stringify(params)}\n`;
    assert.doesNotThrow(() => load(yaml), spec.type);
  }
});

const SHIPPED = ["default", "gie-default", "legacy", "flow-control"];
const shippedMissing = SHIPPED.filter((p) => !existsSync(shippedConfigPath(p)));
test(
  "each shipped config file loads under its profile name",
  {
    skip:
      shippedMissing.length > 0
        ? `config/scheduling/{${shippedMissing.join(",")}}.yaml not written yet`
        : false,
  },
  () => {
    for (const p of SHIPPED) {
      const path = shippedConfigPath(p);
      const c = loadConfig(readFileSync(path, "utf8"), { source: path, displayName: p });
      assert.ok(c.section.profiles.length >= 1, p);
    }
  },
);
