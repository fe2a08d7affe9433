// Regenerates the pinned upstream schemas under test/fixtures/upstream/k8s from local git clones of the upstream
// repositories (run by hand when a pin moves; tests never run it):
//   node --import tsx test/deploy/k8s-schema-pin.ts DIR [SOURCE-DIR...]   (e.g. llm-d-router: only that one)
// DIR holds one clone (bare or not) per repository, as DIR/<owner>+<name>/repo, DIR/<owner>/<name> or DIR/<name>.
// GIE CRDs are copied byte for byte (deploy/crds ships the same files). The other CRDs and the Kubernetes
// OpenAPI definitions are trimmed to what we validate and lose their `description` keywords: the schemas keep
// every validation keyword, the prose would only add megabytes.
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseAllDocuments } from "yaml";
import { repoRoot } from "./yaml-files.ts";

interface FilePin {
  tag: string;
  path: string;
  /** CRD names to keep (metadata.name); all CRDs of the file when absent. */
  crds?: string[];
}
interface Source {
  dir: string;
  repo: string;
  title: string;
  /** Tag whose LICENSE is copied. */
  licenseTag: string;
  mode: "verbatim" | "stripped-crds" | "openapi-closure";
  files: FilePin[];
  /** openapi-closure: the kinds whose definitions (and everything they reference) are kept. */
  kinds?: string[];
  note?: string;
}

const GIE_CRDS = "config/crd/bases/";
const EG_CRDS = "charts/gateway-helm/crds/generated/gateway.envoyproxy.io_";

export const SOURCES: Source[] = [
  {
    dir: "gateway-api-inference-extension",
    repo: "kubernetes-sigs/gateway-api-inference-extension",
    title: "Gateway API Inference Extension CRDs",
    licenseTag: "v1.6.0",
    mode: "verbatim",
    note:
      "each CRD comes from the newest release that still has it (the repository dropped InferenceModel after " +
      "v0.5.x, the x-k8s InferencePool after v1.4.0, InferenceObjective and InferenceModelRewrite after v1.5.0). " +
      "deploy/crds ships these same files; a test keeps the copies identical.",
    files: [
      // Newest release of each CRD: InferencePool v1 (endpointPickerRef optional from v1.6.0); the x-k8s
      // InferencePool v1alpha2 was dropped after v1.4.0; InferenceObjective and InferenceModelRewrite after v1.5.0;
      // InferenceModel after v0.5.x.
      { tag: "v1.6.0", path: `${GIE_CRDS}inference.networking.k8s.io_inferencepools.yaml` },
      { tag: "v1.4.0", path: `${GIE_CRDS}inference.networking.x-k8s.io_inferencepools.yaml` },
      { tag: "v0.5.1", path: `${GIE_CRDS}inference.networking.x-k8s.io_inferencemodels.yaml` },
      { tag: "v1.5.0", path: `${GIE_CRDS}inference.networking.x-k8s.io_inferenceobjectives.yaml` },
      { tag: "v1.5.0", path: `${GIE_CRDS}inference.networking.x-k8s.io_inferencemodelrewrites.yaml` },
    ],
  },
  {
    dir: "llm-d-router",
    repo: "llm-d/llm-d-router",
    title: "llm-d Router CRDs",
    licenseTag: "v0.10.0",
    mode: "verbatim",
    note:
      "v0.10.0 is llm-d Router's newest release; InferenceObjective and InferenceModelRewrite live under the " +
      "llm-d.ai group since GIE v1.6.0 dropped them (same v1alpha2 schemas). deploy/crds ships these same files; " +
      "a test keeps the copies identical.",
    files: ["inferenceobjectives", "inferencemodelrewrites"].map((p) => ({
      tag: "v0.10.0",
      path: `${GIE_CRDS}llm-d.ai_${p}.yaml`,
    })),
  },
  {
    dir: "gateway-api",
    repo: "kubernetes-sigs/gateway-api",
    title: "Gateway API standard-channel CRDs",
    licenseTag: "v1.3.0",
    mode: "stripped-crds",
    note:
      "v1.3.0 is the Gateway API release Envoy Gateway v1.5.x bundles (v1.5.5 is the oldest Envoy Gateway " +
      "docs/deploy.md supports); the standard channel is the strictest one a cluster may have installed.",
    files: ["gatewayclasses", "gateways", "httproutes", "grpcroutes", "referencegrants"].map((p) => ({
      tag: "v1.3.0",
      path: `config/crd/standard/gateway.networking.k8s.io_${p}.yaml`,
    })),
  },
  {
    dir: "envoy-gateway",
    repo: "envoyproxy/gateway",
    title: "Envoy Gateway CRDs",
    licenseTag: "v1.5.5",
    mode: "stripped-crds",
    note: "v1.5.5 is the oldest Envoy Gateway docs/deploy.md and deploy/envoy-gateway support.",
    files: [
      "envoyextensionpolicies",
      "envoypatchpolicies",
      "backendtrafficpolicies",
      "clienttrafficpolicies",
      "securitypolicies",
      "envoyproxies",
      "backends",
      "httproutefilters",
    ].map((p) => ({ tag: "v1.5.5", path: `${EG_CRDS}${p}.yaml` })),
  },
  {
    dir: "istio",
    repo: "istio/istio",
    title: "Istio CRDs",
    licenseTag: "1.28.0",
    mode: "stripped-crds",
    note: "1.28 is the oldest Istio docs/deploy.md and deploy/istio support.",
    files: [
      {
        tag: "1.28.0",
        path: "manifests/charts/base/files/crd-all.gen.yaml",
        crds: [
          "wasmplugins.extensions.istio.io",
          "envoyfilters.networking.istio.io",
          "destinationrules.networking.istio.io",
          "gateways.networking.istio.io",
          "virtualservices.networking.istio.io",
        ],
      },
    ],
  },
  {
    dir: "kubernetes",
    repo: "kubernetes-client/python",
    title: "Kubernetes OpenAPI (swagger 2.0) definitions of the built-in kinds",
    licenseTag: "v34.1.0",
    mode: "openapi-closure",
    note:
      "kubernetes/swagger.json.unprocessed in the Kubernetes Python client is Kubernetes' own " +
      "api/openapi-spec/swagger.json of the branch its scripts/constants.py names (KUBERNETES_BRANCH = release-1.34 " +
      "at v34.1.0), stored before the client generator rewrites it; it is read from there because the " +
      "kubernetes/kubernetes repository is too large to mirror here. Kubernetes 1.34 is also the API our " +
      "@kubernetes/client-node 1.4.0 is generated from.",
    files: [{ tag: "v34.1.0", path: "kubernetes/swagger.json.unprocessed" }],
    kinds: [
      "io.k8s.api.core.v1.ConfigMap",
      "io.k8s.api.core.v1.Namespace",
      "io.k8s.api.core.v1.Pod",
      "io.k8s.api.core.v1.Secret",
      "io.k8s.api.core.v1.Service",
      "io.k8s.api.core.v1.ServiceAccount",
      "io.k8s.api.apps.v1.Deployment",
      "io.k8s.api.apps.v1.StatefulSet",
      "io.k8s.api.apps.v1.DaemonSet",
      "io.k8s.api.batch.v1.Job",
      "io.k8s.api.autoscaling.v2.HorizontalPodAutoscaler",
      "io.k8s.api.networking.v1.NetworkPolicy",
      "io.k8s.api.policy.v1.PodDisruptionBudget",
      "io.k8s.api.rbac.v1.Role",
      "io.k8s.api.rbac.v1.RoleBinding",
      "io.k8s.api.rbac.v1.ClusterRole",
      "io.k8s.api.rbac.v1.ClusterRoleBinding",
      "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.CustomResourceDefinition",
      // Every object's metadata is checked against it, CRs included.
      "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta",
    ],
  },
];

type Json = Record<string, unknown>;
const isObj = (v: unknown): v is Json => typeof v === "object" && v !== null && !Array.isArray(v);

/** Drops `description` keywords from a schema tree; property names (which may be "description") are kept. */
export function stripDescriptions(schema: unknown): unknown {
  if (Array.isArray(schema)) return schema.map(stripDescriptions);
  if (!isObj(schema)) return schema;
  const out: Json = {};
  for (const [k, v] of Object.entries(schema)) {
    if (k === "description") continue;
    if (k === "properties" || k === "patternProperties" || k === "definitions") {
      out[k] = isObj(v)
        ? Object.fromEntries(Object.entries(v).map(([n, s]) => [n, stripDescriptions(s)]))
        : v;
    } else if (["items", "additionalProperties", "not", "allOf", "anyOf", "oneOf"].includes(k)) {
      out[k] = stripDescriptions(v);
    } else out[k] = v; // default, example, enum, x-kubernetes-*: data, kept as is
  }
  return out;
}

function stripCrd(crd: Json): Json {
  const spec = crd.spec as Json;
  const versions = (spec.versions as Json[]).map((v) => {
    const copy: Json = { ...v };
    const schema = (v.schema as Json | undefined)?.openAPIV3Schema;
    if (schema) copy.schema = { openAPIV3Schema: stripDescriptions(schema) };
    if (Array.isArray(v.additionalPrinterColumns))
      copy.additionalPrinterColumns = (v.additionalPrinterColumns as Json[]).map(
        ({ description: _d, ...rest }) => rest,
      );
    return copy;
  });
  return { ...crd, spec: { ...spec, versions } };
}

/** Names of every definition reachable from `roots` through $ref. */
export function refClosure(definitions: Record<string, unknown>, roots: string[]): string[] {
  const seen = new Set<string>();
  const visit = (v: unknown): void => {
    if (Array.isArray(v)) v.forEach(visit);
    else if (isObj(v)) {
      for (const [k, x] of Object.entries(v)) {
        if (k === "$ref" && typeof x === "string") add(x.replace(/^#\/definitions\//, ""));
        else visit(x);
      }
    }
  };
  const add = (name: string) => {
    if (seen.has(name)) return;
    if (!(name in definitions)) throw new Error(`definition ${name} not found`);
    seen.add(name);
    visit(definitions[name]);
  };
  roots.forEach(add);
  return [...seen].sort();
}

function gitDir(root: string, repo: string): string {
  const [owner, name] = repo.split("/");
  for (const c of [join(root, `${owner}+${name}`, "repo"), join(root, owner, name), join(root, name)])
    if (existsSync(c)) return c;
  throw new Error(`no clone of ${repo} under ${root}`);
}

function git(dir: string, ...args: string[]): Buffer {
  const r = spawnSync("git", ["-C", dir, ...args], { maxBuffer: 1 << 30 });
  if (r.status !== 0) throw new Error(`git ${args.join(" ")} in ${dir}: ${r.stderr.toString()}`);
  return r.stdout;
}

const sha256 = (b: Buffer | string) => createHash("sha256").update(b).digest("hex");

function readme(src: Source, rows: string[], outputs: string[]): string {
  const how = {
    verbatim: "Each file is the upstream file unchanged (byte for byte).",
    "stripped-crds":
      "Each `<crd name>.json` is one CustomResourceDefinition document of the upstream file, as JSON, with every " +
      "`description` keyword removed from its schemas and printer columns (nothing else changed).",
    "openapi-closure":
      "`definitions.json` holds the upstream `definitions` needed by the kinds below (the kinds' definitions and " +
      "everything they reference), with every `description` keyword removed (nothing else changed).",
  }[src.mode];
  return [
    `# ${src.title} (pinned test fixture)`,
    "",
    "Upstream schemas that `test/deploy/k8s-schema.ts` validates our shipped Kubernetes objects against.",
    "Data, not product code. Regenerate with `node --import tsx test/deploy/k8s-schema-pin.ts DIR` (see that file).",
    "",
    `- Source repository: https://github.com/${src.repo}`,
    `- Licence: Apache License 2.0 (copy in \`LICENSE\`, from tag ${src.licenseTag}). The files here are derived`,
    `  from that repository's files, modified only as described below.`,
    ...(src.note ? [`- Version and provenance: ${src.note}`] : []),
    `- Transformation: ${how}`,
    ...(src.kinds ? [`- Kinds: ${src.kinds.map((k) => `\`${k}\``).join(", ")}`] : []),
    "",
    "| upstream tag | commit | upstream path | upstream sha256 | kept |",
    "| --- | --- | --- | --- | --- |",
    ...rows,
    "",
    `Files: ${outputs.map((o) => `\`${o}\``).join(", ")}`,
    "",
  ].join("\n");
}

/** Re-pins every source, or only those whose `dir` is in `only`. */
export function pin(root: string, only: string[] = []): void {
  const base = join(repoRoot, "test/fixtures/upstream/k8s");
  for (const src of SOURCES) {
    if (only.length > 0 && !only.includes(src.dir)) continue;
    const dir = gitDir(root, src.repo);
    const out = join(base, src.dir);
    rmSync(out, { recursive: true, force: true });
    mkdirSync(out, { recursive: true });
    writeFileSync(join(out, "LICENSE"), git(dir, "show", `${src.licenseTag}:LICENSE`));
    const rows: string[] = [];
    const outputs: string[] = [];
    for (const f of src.files) {
      const commit = git(dir, "rev-parse", `${f.tag}^{commit}`).toString().trim();
      const raw = git(dir, "show", `${f.tag}:${f.path}`);
      let kept: string[];
      if (src.mode === "verbatim") {
        const name = f.path.split("/").pop()!;
        writeFileSync(join(out, name), raw);
        outputs.push(name);
        kept = ["whole file"];
      } else if (src.mode === "stripped-crds") {
        const docs = parseAllDocuments(raw.toString("utf8"))
          .map((d) => d.toJS() as unknown)
          .filter(isObj)
          .filter((d) => d.kind === "CustomResourceDefinition");
        const wanted = f.crds ?? docs.map((d) => String((d.metadata as Json).name));
        kept = [];
        for (const name of wanted) {
          const crd = docs.find((d) => (d.metadata as Json).name === name);
          if (!crd) throw new Error(`${src.repo}@${f.tag}:${f.path} has no CRD ${name}`);
          writeFileSync(join(out, `${name}.json`), JSON.stringify(stripCrd(crd)) + "\n");
          outputs.push(`${name}.json`);
          kept.push(name);
        }
      } else {
        const spec = JSON.parse(raw.toString("utf8")) as { definitions: Record<string, unknown> };
        const names = refClosure(spec.definitions, src.kinds ?? []);
        const definitions = Object.fromEntries(names.map((n) => [n, stripDescriptions(spec.definitions[n])]));
        writeFileSync(join(out, "definitions.json"), JSON.stringify({ definitions }, null, 1) + "\n");
        outputs.push("definitions.json");
        kept = [`${names.length} definitions`];
      }
      rows.push(`| ${f.tag} | ${commit} | \`${f.path}\` | ${sha256(raw)} | ${kept.join(", ")} |`);
    }
    writeFileSync(join(out, "README.md"), readme(src, rows, outputs));
    console.log(`${src.dir}: ${outputs.length} files`);
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const root = process.argv[2];
  if (!root) {
    console.error("usage: node --import tsx test/deploy/k8s-schema-pin.ts DIR-WITH-CLONES [SOURCE-DIR...]");
    process.exit(2);
  }
  pin(root, process.argv.slice(3));
}
