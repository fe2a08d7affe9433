// The metadata rules the API server applies in Go rather than in any OpenAPI schema (ObjectMeta's schema only
// says "map of strings"). Sources, kubernetes/kubernetes:
// - staging/src/k8s.io/apimachinery/pkg/api/validation/objectmeta.go ValidateObjectMeta: name by the kind's name
//   rule, namespace a DNS-1123 label, ValidateAnnotations (qualified keys, lower-cased; 256 KiB in total),
//   v1validation.ValidateLabels (qualified keys, label values).
// - staging/src/k8s.io/apimachinery/pkg/util/validation/validation.go: IsQualifiedName, IsValidLabelValue,
//   IsDNS1123Label, IsDNS1123Subdomain, IsDNS1035Label.
// - pkg/apis/core/validation/validation.go: ValidateServiceName = NameIsDNS1035Label, ValidateNamespaceName =
//   DNS-1123 label; pkg/apis/rbac/validation/validation.go ValidateRBACName = path.IsValidPathSegmentName;
//   everything else we ship (Pods, Deployments, Secrets, ConfigMaps, ServiceAccounts, custom resources)
//   NameIsDNSSubdomain.
type Json = Record<string, unknown>;
const isObj = (v: unknown): v is Json => typeof v === "object" && v !== null && !Array.isArray(v);

const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const DNS1035_LABEL = /^[a-z]([-a-z0-9]*[a-z0-9])?$/;
const QUALIFIED_NAME = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;
const ANNOTATIONS_MAX_BYTES = 256 * 1024;

const isLabel = (v: string) => v.length <= 63 && DNS1123_LABEL.test(v);
const isSubdomain = (v: string) => v.length <= 253 && DNS1123_SUBDOMAIN.test(v);

export function isQualifiedName(v: string): boolean {
  const parts = v.split("/");
  if (parts.length > 2) return false;
  const name = parts.at(-1)!;
  if (parts.length === 2 && !isSubdomain(parts[0])) return false;
  return name.length <= 63 && QUALIFIED_NAME.test(name);
}

export function isLabelValue(v: string): boolean {
  return v === "" || (v.length <= 63 && QUALIFIED_NAME.test(v));
}

const RBAC = new Set(["Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding"]);

function nameProblem(kind: string, name: string): string | undefined {
  if (kind === "Service")
    return name.length <= 63 && DNS1035_LABEL.test(name) ? undefined : "must be a DNS-1035 label";
  if (kind === "Namespace") return isLabel(name) ? undefined : "must be a DNS-1123 label";
  if (RBAC.has(kind))
    return name === "." || name === ".." || /[/%]/.test(name) ? "must be a valid path segment" : undefined;
  return isSubdomain(name) ? undefined : "must be a DNS-1123 subdomain";
}

/** Problems in `metadata` as "metadata.field: message" (types and unknown fields are the schema's job). */
export function checkMetadata(kind: string, meta: unknown): string[] {
  if (!isObj(meta)) return [];
  const out: string[] = [];
  if (typeof meta.name === "string") {
    const why = nameProblem(kind, meta.name);
    if (why) out.push(`metadata.name: ${JSON.stringify(meta.name)} ${why}`);
  }
  if (typeof meta.namespace === "string" && !isLabel(meta.namespace))
    out.push(`metadata.namespace: ${JSON.stringify(meta.namespace)} must be a DNS-1123 label`);
  if (isObj(meta.labels)) {
    for (const [k, v] of Object.entries(meta.labels)) {
      if (!isQualifiedName(k)) out.push(`metadata.labels: key ${JSON.stringify(k)} is not a qualified name`);
      if (typeof v === "string" && !isLabelValue(v))
        out.push(`metadata.labels.${k}: ${JSON.stringify(v)} is not a valid label value`);
    }
  }
  if (isObj(meta.annotations)) {
    let bytes = 0;
    for (const [k, v] of Object.entries(meta.annotations)) {
      if (!isQualifiedName(k.toLowerCase()))
        out.push(`metadata.annotations: key ${JSON.stringify(k)} is not a qualified name`);
      bytes += Buffer.byteLength(k) + (typeof v === "string" ? Buffer.byteLength(v) : 0);
    }
    if (bytes > ANNOTATIONS_MAX_BYTES)
      out.push(`metadata.annotations: ${bytes} bytes, more than the ${ANNOTATIONS_MAX_BYTES} allowed`);
  }
  return out;
}
