"""Write the synth contract (DESIGN.md) for one run: deterministic bytes for the same run.

``resources.json`` is ``Recorded.contract()`` per resource, keys sorted; the shape of its
``options`` object is described in ``synth/engine.py``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from synth.engine import Recorded, RunResult

# Kinds that live outside namespaces (everything else gets metadata.namespace).
CLUSTER_SCOPED = {
    "Namespace", "Node", "PersistentVolume", "StorageClass", "PriorityClass", "ClusterRole",
    "ClusterRoleBinding", "CustomResourceDefinition", "APIService", "MutatingWebhookConfiguration",
    "ValidatingWebhookConfiguration", "RuntimeClass", "CSIDriver", "IngressClass",
    "NodePool", "NodeClaim", "EC2NodeClass", "ClusterPolicy", "ClusterTriggerAuthentication",
}
NOT_MANIFESTS = ("kubernetes:helm.sh/", "kubernetes:yaml/", "kubernetes:kustomize/")


def _dump_json(data: Any) -> str:
    return json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def _sorted(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _sorted(obj[k]) for k in sorted(obj)}
    if isinstance(obj, list):
        return [_sorted(v) for v in obj]
    return obj


def _dump_yaml(data: Any) -> str:
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=False, allow_unicode=True, width=120)


def is_manifest(r: Recorded) -> bool:
    return r.custom and r.type.startswith("kubernetes:") and not r.type.startswith(NOT_MANIFESTS)


def manifest(r: Recorded) -> dict[str, Any]:
    """The object as it would be applied: apiVersion, kind, metadata (name, namespace), body."""
    body = dict(r.inputs)
    api_version, kind = body.pop("apiVersion", None), body.pop("kind", None)
    if api_version is None or kind is None:
        # Typed resources carry them; fall back to the type token kubernetes:<group/version>:<Kind>.
        _, gv, kind = r.type.split(":", 2)
        api_version = gv.removeprefix("core/")
    meta = dict(r.outputs.get("metadata") or body.get("metadata") or {})
    body.pop("metadata", None)
    if kind not in CLUSTER_SCOPED:
        meta.setdefault("namespace", "default")
    head = {"apiVersion": api_version, "kind": kind, "metadata": _sorted(meta)}
    return {**head, **_sorted(body)}


def helm_release(r: Recorded) -> dict[str, Any]:
    i, o = r.inputs, r.outputs
    repo = (i.get("repositoryOpts") or {}).get("repo")
    return {
        "name": o.get("name") or i.get("name"),
        "namespace": o.get("namespace") or i.get("namespace") or "default",
        "chart": i.get("chart"),
        "version": i.get("version"),
        "repository": repo,
        "values": _sorted(i.get("values") or {}),
    }


def write_contract(out: Path, run: RunResult, report: dict[str, Any]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "resources.json").write_text(_dump_json([r.contract() for r in run.resources]))
    manifests = out / "manifests"
    manifests.mkdir()
    n = 0
    for r in run.resources:
        if is_manifest(r):
            obj = manifest(r)
            name = obj["metadata"].get("name", r.name)
            (manifests / f"{n:03d}-{obj['kind'].lower()}-{name}.yaml").write_text(_dump_yaml(obj))
            n += 1
    helm = out / "helm"
    helm.mkdir()
    for r in run.resources:
        if r.type == "kubernetes:helm.sh/v3:Release":
            rel = helm_release(r)
            (helm / f"{rel['name']}.yaml").write_text(_dump_yaml(rel))
    (out / "policy-report.json").write_text(_dump_json(report))
    (out / "outputs.json").write_text(_dump_json(run.outputs))
