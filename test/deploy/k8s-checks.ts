// Static checks for Kubernetes objects: shape, structural CRD schemas, and names that must agree across objects.
// Each check returns a list of problems (empty = fine) so a failing test names every offender at once.
import { at, arr, isObj, objs, str, type Json } from "./json-path.ts";

/** Kinds that are build inputs rather than API objects; they carry no metadata.name. */
const NOT_API_OBJECTS = new Set(["Kustomization", "Component"]);

export function looksLikeK8sObject(v: unknown): v is Json {
  return isObj(v) && ("apiVersion" in v || "kind" in v);
}

export function checkObjectShape(o: Json, where: string): string[] {
  const problems: string[] = [];
  if (!str(o.apiVersion)) problems.push(`${where}: missing apiVersion`);
  if (!str(o.kind)) problems.push(`${where}: missing kind`);
  if (NOT_API_OBJECTS.has(String(o.kind))) return problems;
  if (!str(at(o, "metadata.name"))) problems.push(`${where}: ${String(o.kind)} has no metadata.name`);
  return problems;
}

export function describe(o: Json): string {
  const ns = str(at(o, "metadata.namespace"));
  return `${String(o.kind)} ${ns ? ns + "/" : ""}${String(at(o, "metadata.name"))}`;
}

/**
 * Structural schema rules (the subset apiextensions enforces that a hand-written CRD most often breaks):
 * every node states a type (or int-or-string / preserve-unknown-fields), objects describe their fields,
 * arrays describe their items. Inside allOf/anyOf/oneOf/not, types are forbidden rather than required.
 */
export function checkStructuralSchema(schema: unknown, path: string): string[] {
  if (!isObj(schema)) return [`${path}: schema node is not an object`];
  const problems: string[] = [];
  const preserve = schema["x-kubernetes-preserve-unknown-fields"] === true;
  const intOrString = schema["x-kubernetes-int-or-string"] === true;
  const type = str(schema.type);
  if (!type && !preserve && !intOrString) problems.push(`${path}: no type`);
  if (type === "object") {
    const hasFields = isObj(schema.properties) || schema.additionalProperties !== undefined;
    // An object without fields prunes everything stored in it; only the root metadata may be bare (the API
    // server validates ObjectMeta itself).
    const rootMetadata = path.endsWith("openAPIV3Schema.properties.metadata");
    if (!hasFields && !preserve && !rootMetadata)
      problems.push(`${path}: object without properties or additionalProperties`);
    if (isObj(schema.properties) && schema.additionalProperties !== undefined)
      problems.push(`${path}: both properties and additionalProperties`);
  }
  if (type === "array") {
    if (!isObj(schema.items)) problems.push(`${path}: array without items`);
    else problems.push(...checkStructuralSchema(schema.items, `${path}.items`));
  }
  if (isObj(schema.properties))
    for (const [k, v] of Object.entries(schema.properties))
      problems.push(...checkStructuralSchema(v, `${path}.properties.${k}`));
  if (isObj(schema.additionalProperties))
    problems.push(...checkStructuralSchema(schema.additionalProperties, `${path}.additionalProperties`));
  for (const junctor of ["allOf", "anyOf", "oneOf"]) {
    for (const [i, sub] of objs(schema[junctor]).entries())
      if ("type" in sub) problems.push(`${path}.${junctor}[${i}]: type inside a logical junctor`);
  }
  return problems;
}

export function checkCrd(crd: Json, where: string): string[] {
  const problems: string[] = [];
  const versions = objs(at(crd, "spec.versions"));
  if (versions.length === 0) problems.push(`${where}: CRD without spec.versions`);
  for (const v of versions) {
    const schema = at(v, "schema.openAPIV3Schema");
    const name = `${where} ${String(v.name)}`;
    if (!isObj(schema)) problems.push(`${name}: no schema.openAPIV3Schema`);
    else {
      if (schema.type !== "object") problems.push(`${name}: root schema type must be object`);
      problems.push(...checkStructuralSchema(schema, `${name} openAPIV3Schema`));
    }
  }
  const storage = versions.filter((v) => v.storage === true);
  if (versions.length > 0 && storage.length !== 1)
    problems.push(`${where}: exactly one version must be storage`);
  return problems;
}

const WORKLOADS = new Set(["Deployment", "StatefulSet", "DaemonSet", "Job", "ReplicaSet"]);

/** Pod specs of workloads (and bare Pods), with the namespace and labels their pods get. */
export function podSpecs(objects: Json[]): { owner: Json; ns: string; labels: Json; spec: Json }[] {
  const out: { owner: Json; ns: string; labels: Json; spec: Json }[] = [];
  for (const o of objects) {
    const ns = str(at(o, "metadata.namespace")) ?? "default";
    if (WORKLOADS.has(String(o.kind))) {
      const spec = at(o, "spec.template.spec");
      const labels = at(o, "spec.template.metadata.labels");
      if (isObj(spec)) out.push({ owner: o, ns, labels: isObj(labels) ? labels : {}, spec });
    } else if (o.kind === "Pod" && isObj(o.spec)) {
      const labels = at(o, "metadata.labels");
      out.push({ owner: o, ns, labels: isObj(labels) ? labels : {}, spec: o.spec });
    }
  }
  return out;
}

export function allContainers(spec: Json): Json[] {
  return [...objs(spec.initContainers), ...objs(spec.containers)];
}

function index(objects: Json[]): Set<string> {
  return new Set(
    objects.map(
      (o) =>
        `${String(o.kind)}/${str(at(o, "metadata.namespace")) ?? "default"}/${String(at(o, "metadata.name"))}`,
    ),
  );
}

/**
 * Names one object uses to find another: ServiceAccounts, Secrets and ConfigMaps of pods, volume mounts,
 * Service selectors and target ports, RoleBinding roles and subjects.
 */
export function checkCrossReferences(objects: Json[]): string[] {
  const have = index(objects);
  const exists = (kind: string, ns: string, name: unknown) => have.has(`${kind}/${ns}/${String(name)}`);
  const problems: string[] = [];
  const pods = podSpecs(objects);

  for (const { owner, ns, spec } of pods) {
    const who = describe(owner);
    const sa = str(spec.serviceAccountName);
    if (sa && sa !== "default" && !exists("ServiceAccount", ns, sa))
      problems.push(`${who}: ServiceAccount ${sa} not found`);
    const volumes = new Set(objs(spec.volumes).map((v) => String(v.name)));
    for (const v of objs(spec.volumes)) {
      const secret = at(v, "secret.secretName");
      if (secret !== undefined && !exists("Secret", ns, secret))
        problems.push(`${who}: Secret ${String(secret)} not found`);
      const cm = at(v, "configMap.name");
      if (cm !== undefined && !exists("ConfigMap", ns, cm))
        problems.push(`${who}: ConfigMap ${String(cm)} not found`);
    }
    for (const c of allContainers(spec)) {
      for (const m of objs(c.volumeMounts))
        if (!volumes.has(String(m.name)))
          problems.push(`${who} container ${String(c.name)}: mounts undeclared volume ${String(m.name)}`);
      for (const e of objs(c.env)) {
        const ref = at(e, "valueFrom.secretKeyRef.name");
        if (ref !== undefined && !exists("Secret", ns, ref))
          problems.push(`${who}: env Secret ${String(ref)} not found`);
      }
      for (const p of [at(c, "livenessProbe.httpGet.port"), at(c, "readinessProbe.httpGet.port")]) {
        if (p === undefined) continue;
        const ports = objs(c.ports);
        const ok =
          typeof p === "number" ? ports.some((x) => x.containerPort === p) : ports.some((x) => x.name === p);
        if (!ok)
          problems.push(
            `${who} container ${String(c.name)}: probe port ${String(p)} is not a container port`,
          );
      }
    }
  }

  for (const svc of objects.filter((o) => o.kind === "Service")) {
    const ns = str(at(svc, "metadata.namespace")) ?? "default";
    const selector = at(svc, "spec.selector");
    if (!isObj(selector)) continue;
    // A Service over an InferencePool's pods (the model servers are the user's workload): its ports must be the
    // pool's target ports.
    const pool = objects.find(
      (o) =>
        o.kind === "InferencePool" &&
        (str(at(o, "metadata.namespace")) ?? "default") === ns &&
        JSON.stringify(at(o, "spec.selector.matchLabels")) === JSON.stringify(selector),
    );
    if (pool) {
      const targets = objs(at(pool, "spec.targetPorts")).map((p) => p.number);
      for (const port of objs(at(svc, "spec.ports")))
        if (!targets.includes(port.targetPort ?? port.port))
          problems.push(
            `${describe(svc)}: targetPort ${String(port.targetPort ?? port.port)} is not a target port of ${describe(pool)}`,
          );
      continue;
    }
    const matched = pods.filter(
      (p) => p.ns === ns && Object.entries(selector).every(([k, v]) => p.labels[k] === v),
    );
    if (matched.length === 0) {
      problems.push(`${describe(svc)}: selector matches no pod template`);
      continue;
    }
    for (const port of objs(at(svc, "spec.ports"))) {
      const target = port.targetPort ?? port.port;
      const ports = matched.flatMap((p) => objs(p.spec.containers).flatMap((c) => objs(c.ports)));
      const ok =
        typeof target === "number"
          ? ports.some((x) => x.containerPort === target)
          : ports.some((x) => x.name === target);
      if (!ok)
        problems.push(
          `${describe(svc)}: targetPort ${String(target)} is not a port of the selected containers`,
        );
    }
  }

  for (const rb of objects.filter((o) => o.kind === "RoleBinding" || o.kind === "ClusterRoleBinding")) {
    const ns = str(at(rb, "metadata.namespace")) ?? "default";
    const kind = String(at(rb, "roleRef.kind"));
    const role = at(rb, "roleRef.name");
    const roleNs = kind === "ClusterRole" ? "default" : ns;
    if (!exists(kind, roleNs, role)) problems.push(`${describe(rb)}: ${kind} ${String(role)} not found`);
    for (const s of objs(rb.subjects)) {
      if (s.kind !== "ServiceAccount") continue;
      const sNs = str(s.namespace);
      if (!sNs) problems.push(`${describe(rb)}: ServiceAccount subject ${String(s.name)} has no namespace`);
      else if (!exists("ServiceAccount", sNs, s.name))
        problems.push(`${describe(rb)}: ServiceAccount ${sNs}/${String(s.name)} not found`);
    }
  }
  return problems;
}

interface NetworkPolicyPort {
  protocol?: string;
  port?: number;
  endPort?: number;
}

function coversTcpPort(ports: unknown, port: number): boolean {
  const list = objs(ports) as NetworkPolicyPort[];
  if (list.length === 0) return true; // no ports: every port
  return list.some(
    (p) =>
      (p.protocol ?? "TCP") === "TCP" &&
      (p.port === undefined || (p.port <= port && port <= (p.endPort ?? p.port))),
  );
}

/**
 * A NetworkPolicy that leaves the gateway pods' ports as they were except the control port, which only the
 * sidecar's pods (namespace + labels) may open. `openPorts` must stay reachable by everyone.
 */
export function checkControlPortPolicy(
  policy: Json,
  want: {
    podLabels: Json;
    controlPort: number;
    openPorts: number[];
    sidecarNamespace: string;
    sidecarLabels: Json;
  },
): string[] {
  const who = describe(policy);
  const problems: string[] = [];
  if (JSON.stringify(at(policy, "spec.podSelector.matchLabels")) !== JSON.stringify(want.podLabels))
    problems.push(`${who}: podSelector must select the gateway pods ${JSON.stringify(want.podLabels)}`);
  if (!arr(at(policy, "spec.policyTypes")).includes("Ingress"))
    problems.push(`${who}: policyTypes must include Ingress`);
  const rules = objs(at(policy, "spec.ingress"));
  // Every peer of the rule must be the sidecar's pods: their namespace by its well-known label, and labels the
  // sidecar's pod template carries.
  const isSidecar = (peer: Json) => {
    const nsLabels = at(peer, "namespaceSelector.matchLabels");
    const podLabels = at(peer, "podSelector.matchLabels");
    return (
      isObj(nsLabels) &&
      nsLabels["kubernetes.io/metadata.name"] === want.sidecarNamespace &&
      isObj(podLabels) &&
      Object.keys(podLabels).length > 0 &&
      Object.entries(podLabels).every(([k, v]) => want.sidecarLabels[k] === v)
    );
  };
  const fromSidecar = (rule: Json) => objs(rule.from).length > 0 && objs(rule.from).every(isSidecar);
  const control = rules.filter((r) => coversTcpPort(r.ports, want.controlPort));
  if (control.length === 0)
    problems.push(`${who}: the sidecar cannot reach control port ${want.controlPort}`);
  for (const r of control)
    if (!fromSidecar(r))
      problems.push(`${who}: control port ${want.controlPort} is open to more than the sidecar's pods`);
  for (const port of want.openPorts)
    if (!rules.some((r) => objs(r.from).length === 0 && coversTcpPort(r.ports, port)))
      problems.push(`${who}: port ${port} is no longer open to everyone`);
  return problems;
}

/** Everything a set of Roles grants, as "group/resource:verb" strings. */
export function grantedPermissions(roles: Json[]): Set<string> {
  const out = new Set<string>();
  for (const r of roles)
    for (const rule of objs(r.rules))
      for (const g of arr(rule.apiGroups))
        for (const res of arr(rule.resources))
          for (const verb of arr(rule.verbs)) out.add(`${String(g)}/${String(res)}:${String(verb)}`);
  return out;
}
