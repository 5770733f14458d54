"""Conformance: check synthesized output against the upstream contracts.

`python -m tests.conformance build/dev build/prod ...` prints a summary per build directory
and exits 1 if any error was found. The test suite runs the same functions.

- Built-in Kubernetes objects: the Kubernetes OpenAPI schema of the cluster's version,
  strict (unknown fields rejected), through ``kubernetes-validate``.
- Custom resources: the upstream CRD schema of their kind and version, made strict
  (``additionalProperties: false`` wherever the schema lists properties and does not
  preserve unknown fields), patterns matched with RE2 (Go's regex syntax, as the API
  server does: Python's ``re`` cannot compile ``^(?i)(abort|warn)?$``), and every
  ``x-kubernetes-validations`` CEL rule evaluated with cel-python. Transition rules (those
  that read ``oldSelf``) need a previous object and are skipped and listed.
- Helm values: every key path we set must exist in the chart's default values at the
  pinned version, unless it lies under a free-form map listed in ``FREE_FORM``.
- IAM: no statement allows ``*`` on ``*``; an Allow on every resource needs a condition
  unless its actions support no resource-level scoping; every ARN has a valid form.
"""

from __future__ import annotations

import functools
import json
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import celpy
import jsonschema
import kubernetes_validate
import re2
import yaml
from celpy import celtypes

UPSTREAM = Path(__file__).resolve().parent / "upstream"
ACCOUNT_ID = "123456789012"
DEFAULT_K8S = "1.35"

# Free-form maps: keys below these paths are the chart's pass-through, not its schema.
FREE_FORM: dict[str, dict[str, str]] = {
    "karpenter": {
        "controller.resources": "Kubernetes ResourceRequirements, passed through to the container",
        "nodeSelector": "a label map: its keys are node labels, not chart settings",
    },
    "kube-prometheus-stack": {
        "prometheus.prometheusSpec.storageSpec": "a Prometheus StorageSpec, passed through to the CR",
        "prometheus.prometheusSpec.resources": "ResourceRequirements, passed through",
        "prometheusOperator.resources": "ResourceRequirements, passed through",
        "prometheus.prometheusSpec.nodeSelector": "a label map",
        "prometheusOperator.nodeSelector": "a label map",
        "prometheusOperator.admissionWebhooks.patch.nodeSelector": "a label map",
        "alertmanager.alertmanagerSpec.nodeSelector": "a label map",
        "grafana.nodeSelector": "grafana subchart value; its defaults are not in this chart's values.yaml",
        "grafana.tolerations": "grafana subchart value; its defaults are not in this chart's values.yaml",
        "kube-state-metrics.nodeSelector": "kube-state-metrics subchart value, not in this chart's values.yaml",
        "kube-state-metrics.tolerations": "kube-state-metrics subchart value, not in this chart's values.yaml",
        # Subchart ResourceRequirements; the keys exist (empty) in ../shared/upstream/charts/grafana
        # and kube-state-metrics values.yaml.
        "grafana.resources": "grafana subchart ResourceRequirements, not in this chart's values.yaml",
        "grafana.sidecar.resources": "grafana subchart sidecar ResourceRequirements, not in this chart's values.yaml",
        "kube-state-metrics.resources": "kube-state-metrics subchart ResourceRequirements, not in this chart's values.yaml",
        # Subchart images moved through the pull-through cache (components/render/chart_images.py);
        # registry and repository keys of each subchart's values.yaml at the pinned version.
        "grafana.image": "grafana subchart image (registry, repository), not in this chart's values.yaml",
        "grafana.sidecar.image": "grafana subchart sidecar image (registry, repository), not in this chart's values.yaml",
        "kube-state-metrics.image": "kube-state-metrics subchart image (registry, repository), not in this chart's values.yaml",
        "prometheus-node-exporter.image": "node-exporter subchart image (registry, repository), not in this chart's values.yaml",
    },
    "keda": {
        "resources": "per-component ResourceRequirements, passed through",
        "nodeSelector": "a label map",
    },
    "gpu-operator": {
        "migManager.config.data": "ConfigMap data: file name -> mig-parted config",
        "devicePlugin.config.data": "ConfigMap data: config name -> device plugin config",
        "operator.nodeSelector": "a label map",
        # Commented out in values.yaml at v26.7.0; templates/clusterpolicy.yaml copies it into the
        # ClusterPolicy's spec.operator.metrics.serviceMonitor (OperatorMetricsSpec).
        "operator.metrics": "the operator's ServiceMonitor settings, documented as a commented-out default",
        "node-feature-discovery.master.nodeSelector": "NFD subchart value, not in this chart's values.yaml",
        "node-feature-discovery.master.tolerations": "NFD subchart value, not in this chart's values.yaml",
        "node-feature-discovery.gc": "NFD subchart value (garbage collector placement), not in this chart's values.yaml",
        "node-feature-discovery.image": "NFD subchart image (repository with its host), not in this chart's values.yaml",
    },
    "prometheus-adapter": {
        "resources": "ResourceRequirements, passed through",
        "nodeSelector": "a label map",
    },
    "llm-d-router-standalone": {
        "router.modelServers.matchLabels": "required by the chart (values.yaml: `# matchLabels: # REQUIRED`); "
                                           "a label map of the model-server pods",
        "router.proxy.image": "the chart's documented override of the preset's proxy image (values.yaml: "
                              "`set proxy.image to replace the preset image`), not a default key",
    },
}
# Actions AWS offers no resource-level permissions for: "*" is the only Resource they take.
UNSCOPABLE_ACTIONS = {
    "pricing:GetProducts": "the Price List API has no resources",
    "iam:ListInstanceProfiles": "List* on IAM takes no resource ARN",
}
CHART_DIRS = {
    "oci://public.ecr.aws/karpenter/karpenter": "karpenter",
    "kube-prometheus-stack": "kube-prometheus-stack",
    "prometheus-adapter": "prometheus-adapter",
    "keda": "keda",
    "gpu-operator": "gpu-operator",
    "oci://ghcr.io/llm-d/charts/llm-d-router-standalone": "llm-d-router-standalone",
}
# Library charts whose defaults a chart takes under an alias (Chart.yaml dependencies): the
# standalone router chart depends on routerlib as `router`.
LIBRARY_CHARTS = {"llm-d-router-standalone": ("router", "llm-d-router-routerlib")}
# Charts whose Chart.yaml in git is unstamped: the release tag is the published version.
RELEASE_TAG_VERSIONS = {"gpu-operator": "v26.7.0", "llm-d-router-standalone": "v0.10.0"}
# Charts whose only values are optional annotations: we set none, and none may be set.
CHARTS_WITHOUT_VALUES = {"oci://public.ecr.aws/karpenter/karpenter-crd"}
DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


@dataclass
class Summary:
    name: str
    objects: int = 0
    errors: list[str] = field(default_factory=list)
    skipped_cel: set[str] = field(default_factory=set)

    def render(self) -> str:
        lines = [f"{self.name}: {self.objects} objects checked, {len(self.errors)} errors, "
                 f"{len(self.skipped_cel)} transition CEL rules skipped"]
        lines += [f"  error: {e}" for e in self.errors]
        lines += [f"  skipped (needs oldSelf): {r}" for r in sorted(self.skipped_cel)]
        return "\n".join(lines)


# --------------------------------------------------------------------------- CRD schemas


def _pattern(validator, pattern, instance, schema):
    """JSON Schema 'pattern' with RE2, the regex engine (and syntax) of the API server."""
    if isinstance(instance, str) and not re2.search(pattern, instance):
        yield jsonschema.ValidationError(f"{instance!r} does not match {pattern!r}")


RE2Validator = jsonschema.validators.extend(jsonschema.Draft7Validator, {"pattern": _pattern})


def _strict(schema: Any) -> Any:
    if isinstance(schema, dict):
        out = {k: _strict(v) for k, v in schema.items()}
        if ("properties" in out and "additionalProperties" not in out
                and not out.get("x-kubernetes-preserve-unknown-fields")):
            out["additionalProperties"] = False
        return out
    if isinstance(schema, list):
        return [_strict(v) for v in schema]
    return schema


@functools.cache
def crd_schema(api_version: str, kind: str) -> dict[str, Any] | None:
    if "/" not in api_version:
        return None
    group, version = api_version.split("/", 1)
    path = UPSTREAM / "schemas" / f"{group}_{kind.lower()}_{version}.json"
    return json.loads(path.read_text()) if path.is_file() else None


@functools.cache
def _strict_validator(api_version: str, kind: str) -> Any:
    return RE2Validator(_strict(crd_schema(api_version, kind)))


def _cel_find(s, pattern):
    m = re2.search(str(pattern), str(s))
    return celtypes.StringType(m.group(0) if m else "")


def _cel_split(s, sep):
    return celtypes.ListType([celtypes.StringType(x) for x in str(s).split(str(sep))])


CEL_FUNCTIONS = {"find": _cel_find, "split": _cel_split}
_CEL = celpy.Environment()


@functools.cache
def _cel_program(rule: str):
    return _CEL.program(_CEL.compile(rule), functions=CEL_FUNCTIONS)


def cel_errors(schema: Any, value: Any, path: str, skipped: set[str]) -> Iterator[str]:
    """Evaluate every CEL rule on the value it governs, walking schema and value together."""
    if value is None or not isinstance(schema, dict):
        return
    for v in schema.get("x-kubernetes-validations", ()):
        rule = v["rule"]
        if "oldSelf" in rule:
            skipped.add(rule)
            continue
        try:
            ok = _cel_program(rule).evaluate({"self": celpy.json_to_cel(value)})
        except Exception as exc:  # noqa: BLE001 - a rule that cannot evaluate is an error too
            yield f"{path}: CEL rule {rule!r} failed to evaluate: {exc}"
            continue
        if ok is not True and not (isinstance(ok, celtypes.BoolType) and bool(ok)):
            yield f"{path}: {v.get('message') or 'CEL rule failed'} (rule: {rule})"
    if isinstance(value, dict):
        for key, sub in (schema.get("properties") or {}).items():
            if key in value:
                yield from cel_errors(sub, value[key], f"{path}.{key}", skipped)
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            for key, item in value.items():
                yield from cel_errors(extra, item, f"{path}.{key}", skipped)
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for i, item in enumerate(value):
            yield from cel_errors(schema["items"], item, f"{path}[{i}]", skipped)


def check_custom_resource(obj: dict[str, Any], skipped: set[str]) -> list[str]:
    schema = crd_schema(obj["apiVersion"], obj["kind"])
    assert schema is not None
    errors = [f"{'.'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}"
              for e in _strict_validator(obj["apiVersion"], obj["kind"]).iter_errors(obj)]
    meta = obj.get("metadata") or {}
    if not DNS1123_SUBDOMAIN.match(str(meta.get("name", ""))) or len(str(meta.get("name", ""))) > 253:
        errors.append(f"metadata.name: {meta.get('name')!r} is not a DNS-1123 subdomain")
    namespaced = schema.get("x-upstream", {}).get("scope") == "Namespaced"
    if namespaced != ("namespace" in meta):
        errors.append(f"metadata.namespace: {'required' if namespaced else 'not allowed'} for a "
                      f"{'namespaced' if namespaced else 'cluster-scoped'} {obj['kind']}")
    errors += list(cel_errors(schema, obj, "", skipped))
    return errors


def check_builtin(obj: dict[str, Any], k8s_version: str) -> list[str]:
    try:
        kubernetes_validate.validate(obj, f"{k8s_version}.0", strict=True)
    except kubernetes_validate.ValidationError as exc:
        path = ".".join(map(str, exc.path)) or "<root>"
        return [f"{path}: {exc.message}"]
    except kubernetes_validate.SchemaNotFoundError:
        return [f"no Kubernetes {k8s_version} schema for {obj.get('apiVersion')}/{obj.get('kind')}"]
    return []


def check_manifest(obj: dict[str, Any], k8s_version: str, skipped: set[str]) -> list[str]:
    if crd_schema(obj.get("apiVersion", ""), obj.get("kind", "")) is not None:
        return check_custom_resource(obj, skipped)
    return check_builtin(obj, k8s_version)


# --------------------------------------------------------------------------- Helm values


def _merge(base: Any, over: Any) -> Any:
    """``over`` on ``base``; a key ``over`` leaves unset (None: only comments) keeps ``base``'s value."""
    if not isinstance(base, dict) or not isinstance(over, dict):
        return base if over is None else over
    return {**base, **{k: _merge(base.get(k), v) for k, v in over.items()}}


@functools.cache
def chart_defaults(chart_dir: str) -> dict[str, Any]:
    values = yaml.safe_load((UPSTREAM / "charts" / chart_dir / "values.yaml").read_text()) or {}
    if chart_dir in LIBRARY_CHARTS:
        alias, library = LIBRARY_CHARTS[chart_dir]
        values = {**values, alias: _merge(chart_defaults(library), values.get(alias))}
    return values


def chart_version(chart_dir: str) -> str:
    return str(yaml.safe_load((UPSTREAM / "charts" / chart_dir / "Chart.yaml").read_text())["version"])


def values_errors(chart_dir: str, values: Any, defaults: Any = None, path: str = "") -> Iterator[str]:
    """Key paths we set that the chart's default values.yaml does not have (typos, removed keys)."""
    defaults = chart_defaults(chart_dir) if defaults is None else defaults
    if not isinstance(values, dict):
        return
    free = FREE_FORM.get(chart_dir, {})
    for key, value in values.items():
        sub = f"{path}.{key}" if path else key
        if sub in free:
            continue
        if not isinstance(defaults, dict) or key not in defaults:
            yield f"{chart_dir}: values key {sub!r} is not in the chart's defaults (the chart ignores it)"
            continue
        default = defaults[key]
        if isinstance(value, dict) and isinstance(default, dict) and default:
            yield from values_errors(chart_dir, value, default, sub)
        # An empty default map, a list or a scalar: the chart takes our value whole.


def check_helm_release(rel: dict[str, Any]) -> list[str]:
    chart = rel["chart"]
    if chart in CHARTS_WITHOUT_VALUES:
        return [f"{chart}: takes no values, got {sorted(rel['values'])}"] if rel["values"] else []
    chart_dir = CHART_DIRS.get(chart)
    if chart_dir is None:
        return [f"{chart}: no vendored default values to check against"]
    errors = list(values_errors(chart_dir, rel["values"]))
    # Some Chart.yaml files in git are unstamped (v1.0.0-devel, 0.0.0); their release tag is the version.
    expected = RELEASE_TAG_VERSIONS.get(chart_dir) or chart_version(chart_dir)
    if rel["version"] != expected:
        errors.append(f"{chart}: version {rel['version']} but the vendored defaults are for {expected}")
    return errors


# --------------------------------------------------------------------------- IAM and ARNs

POLICY_INPUTS = {
    "aws:iam/policy:Policy": "policy",
    "aws:iam/rolePolicy:RolePolicy": "policy",
    "aws:iam/role:Role": "assumeRolePolicy",
    "aws:sqs/queuePolicy:QueuePolicy": "policy",
}
ARN = re.compile(r"^arn:(aws|aws-cn|aws-us-gov):([a-z0-9-]+):([a-z0-9-]*):([0-9]{12}|aws|\*|):(.+)$")
GLOBAL_SERVICES = {"iam", "s3", "route53", "cloudfront"}


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def iam_errors(rtype: str, name: str, document: dict[str, Any]) -> Iterator[str]:
    for i, st in enumerate(_as_list(document.get("Statement", []))):
        sid = st.get("Sid", i)
        actions = _as_list(st.get("Action", []))
        resources = _as_list(st.get("Resource", []))
        if st.get("Effect") != "Allow" or rtype == "aws:iam/role:Role":
            continue
        if "*" in actions and "*" in resources:
            yield f"{name}: statement {sid} allows * on *"
        elif "*" in resources and "Condition" not in st:
            unscoped = [a for a in actions if a not in UNSCOPABLE_ACTIONS]
            if unscoped:
                yield f"{name}: statement {sid} allows {unscoped} on every resource without a condition"


def _strings(obj: Any) -> Iterator[str]:
    if isinstance(obj, str):
        yield obj
    elif isinstance(obj, dict):
        for v in obj.values():
            yield from _strings(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from _strings(v)


def arn_errors(name: str, obj: Any, region: str) -> Iterator[str]:
    for s in _strings(obj):
        if s.startswith("{"):
            try:
                yield from arn_errors(name, json.loads(s), region)
            except json.JSONDecodeError:
                pass
            continue
        if not s.startswith("arn:"):
            continue
        m = ARN.match(s)
        if not m:
            yield f"{name}: malformed ARN {s!r}"
            continue
        _, service, arn_region, account, _ = m.groups()
        if service in GLOBAL_SERVICES and arn_region:
            yield f"{name}: {service} ARNs have no region: {s!r}"
        if service not in GLOBAL_SERVICES and service != "eks" and arn_region not in (region, ""):
            yield f"{name}: ARN {s!r} is not in {region}"
        if account not in (ACCOUNT_ID, "aws", "*", ""):
            yield f"{name}: ARN {s!r} has an unexpected account {account!r}"


# --------------------------------------------------------------------------- a build directory


def check_build(build: Path) -> Summary:
    summary = Summary(build.name)
    resources = json.loads((build / "resources.json").read_text())
    cluster = next((r for r in resources if r["type"] == "eks:index:Cluster"), None)
    k8s_version = (cluster or {}).get("inputs", {}).get("version") or DEFAULT_K8S
    region = next((r["urn"] and r["inputs"].get("region") for r in resources if r["inputs"].get("region")), None)
    for path in sorted((build / "manifests").glob("*.yaml")):
        obj = yaml.safe_load(path.read_text())
        summary.objects += 1
        summary.errors += [f"{path.name}: {e}" for e in check_manifest(obj, k8s_version, summary.skipped_cel)]
    for path in sorted((build / "helm").glob("*.yaml")):
        summary.objects += 1
        summary.errors += [f"helm/{path.name}: {e}" for e in check_helm_release(yaml.safe_load(path.read_text()))]
    stack_region = region or _region_from_arns(resources) or "us-east-1"
    for r in resources:
        key = POLICY_INPUTS.get(r["type"])
        if key and isinstance(r["inputs"].get(key), str):
            summary.objects += 1
            summary.errors += list(iam_errors(r["type"], r["name"], json.loads(r["inputs"][key])))
        summary.errors += list(arn_errors(r["name"], r["inputs"], stack_region))
    return summary


def _region_from_arns(resources: list[dict[str, Any]]) -> str | None:
    for r in resources:
        for s in _strings(r["inputs"]):
            m = ARN.match(s) if s.startswith("arn:") else None
            if m and m.group(3) and m.group(2) in ("sqs", "kms", "events"):
                return m.group(3)
    return None


def main(argv: list[str]) -> int:
    failed = False
    for arg in argv:
        summary = check_build(Path(arg))
        print(summary.render())
        failed |= bool(summary.errors)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
