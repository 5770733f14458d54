"""Least privilege: every rendered pod's security context, the namespaces' Pod Security
labels, and a clean checkov scan of every stack's manifests."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from components.render import batch as render_batch
from components.render import cache
from components.render import vllm as render_vllm
from components.render.pod_security import RUN_AS_GROUP, RUN_AS_USER
from tests.conftest import REPO, STACKS, load

CHECKOV = REPO / ".venv-checkov" / "bin" / "checkov"
REQUIRE_CHECKOV = "REQUIRE_CHECKOV"
ALLOWLIST = REPO / "tests" / "checkov-allowlist.yaml"
# Set aside by the brief for the whole scan: image digests, CPU limits, pull policy.
SET_ASIDE = ("CKV_K8S_43", "CKV_K8S_11", "CKV_K8S_15")
POD_KINDS = {"Deployment", "DaemonSet", "StatefulSet", "Job", "ScaledJob"}
PSA = "pod-security.kubernetes.io/"


def _manifests(build: Path) -> list[dict[str, Any]]:
    return [yaml.safe_load(p.read_text()) for p in sorted((build / "manifests").glob("*.yaml"))]


def _pod_spec(obj: dict[str, Any]) -> dict[str, Any]:
    if obj["kind"] == "ScaledJob":
        return obj["spec"]["jobTargetRef"]["template"]["spec"]
    return obj["spec"]["template"]["spec"]


def _pods(build: Path) -> list[tuple[str, dict[str, Any]]]:
    """Pod specs by kind/name; a StatefulSet's claims count as its pod's volumes."""
    out = []
    for o in _manifests(build):
        if o["kind"] in POD_KINDS:
            pod = _pod_spec(o)
            claims = [{"name": c["metadata"]["name"], "persistentVolumeClaim": {}}
                      for c in o["spec"].get("volumeClaimTemplates", [])]
            out.append((f"{o['kind']}/{o['metadata']['name']}", {**pod, "volumes": [*pod.get("volumes", []), *claims]}))
    return out


def _pre_pull_pods() -> list[tuple[str, dict[str, Any]]]:
    """No stack turns prePull on: the DaemonSet is rendered here for every service of every stack."""
    out = []
    for stack in STACKS:
        config = load(stack)
        for svc in config.model_services:
            ds = render_vllm.pre_pull_daemonset(svc.model_copy(update={"pre_pull": True}), config.tier(svc.tier), "ns",
                                                region=config.region)
            out.append((f"{stack}/DaemonSet/{ds['metadata']['name']}", ds["spec"]["template"]["spec"]))
    return out


UNPRIVILEGED = {
    "runAsNonRoot": True,
    "runAsUser": 10001,
    "runAsGroup": 10001,
    "allowPrivilegeEscalation": False,
    "readOnlyRootFilesystem": True,
    "privileged": False,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}
# The hostPath cache's owner step: root, CAP_CHOWN and nothing else.
OWNER = {**UNPRIVILEGED, "runAsNonRoot": False, "runAsUser": 0, "runAsGroup": 0,
         "capabilities": {"drop": ["ALL"], "add": ["CHOWN"]}}


def _assert_least_privilege(where: str, pod: dict[str, Any]) -> None:
    assert pod["automountServiceAccountToken"] is False, where
    assert pod["securityContext"] == {"runAsNonRoot": True, "runAsUser": 10001, "runAsGroup": 10001,
                                      "fsGroup": 10001, "seccompProfile": {"type": "RuntimeDefault"}}, where
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    host_path = [n for n, v in volumes.items() if "hostPath" in v]
    for c in pod.get("initContainers", []) + pod["containers"]:
        expected = OWNER if c["name"] == "model-cache-owner" else UNPRIVILEGED
        assert c["securityContext"] == expected, f"{where}: {c['name']}"
        # Read-only root: every path written is a volume; hostPath only for the cache.
        for m in c.get("volumeMounts", []):
            assert m["name"] in volumes, f"{where}: {c['name']} mounts {m['name']}"
    # The owner step exists exactly when the cache is a hostPath, and comes before every step
    # that writes it: the sync, and the compile-cache directory (loader.COMPILE_CONTAINER), which
    # runs alone when the weights stream from S3.
    names = [c["name"] for c in pod.get("initContainers", [])]
    assert host_path in ([], [cache.VOLUME]), where
    if host_path:
        writers = [n for n in names if n in ("model-cache", "compile-cache")]
        assert writers, where
        assert all(names.index("model-cache-owner") < names.index(n) for n in writers), where
    else:
        assert "model-cache-owner" not in names, where


def test_constants_are_the_literals_above():
    assert (RUN_AS_USER, RUN_AS_GROUP) == (10001, 10001)


@pytest.mark.parametrize("stack", STACKS)
def test_every_rendered_pod_is_least_privilege(synthesized, stack):
    pods = _pods(synthesized[stack])
    assert pods, f"{stack} renders no pod"
    for where, pod in pods:
        _assert_least_privilege(f"{stack}/{where}", pod)


def test_pre_pull_daemonset_is_least_privilege():
    pods = _pre_pull_pods()
    assert pods
    for where, pod in pods:
        _assert_least_privilege(where, pod)


def test_vllm_writes_only_to_its_volumes(synthesized):
    pod = next(p for w, p in _pods(synthesized["prod"]) if w == "Deployment/chat-8b-baseline")
    vllm = pod["containers"][0]
    env = {e["name"]: e.get("value") for e in vllm["env"]}
    mounts = {m["mountPath"]: m for m in vllm["volumeMounts"]}
    assert set(mounts) == {"/models", "/dev/shm", "/home/vllm", "/tmp"}
    assert mounts["/models"]["readOnly"] is True
    for var, path in {"HOME": "/home/vllm", "XDG_CACHE_HOME": "/home/vllm/.cache",
                      "HF_HOME": "/home/vllm/.cache/huggingface", "VLLM_CACHE_ROOT": "/home/vllm/.cache/vllm",
                      "VLLM_CONFIG_ROOT": "/home/vllm/.config/vllm", "TRITON_CACHE_DIR": "/home/vllm/.cache/triton",
                      "TORCHINDUCTOR_CACHE_DIR": "/home/vllm/.cache/torchinductor",
                      "CUDA_CACHE_PATH": "/home/vllm/.nv/ComputeCache", "TMPDIR": "/tmp"}.items():
        assert env[var] == path, var
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["vllm-home"] == {"name": "vllm-home", "emptyDir": {"sizeLimit": "8Gi"}}
    assert volumes["vllm-tmp"] == {"name": "vllm-tmp", "emptyDir": {"sizeLimit": "1Gi"}}


def test_redis_writes_only_its_claim(synthesized):
    sts = next(o for o in _manifests(synthesized["staging"]) if o["kind"] == "StatefulSet")
    (redis,) = _pod_spec(sts)["containers"]
    assert redis["volumeMounts"] == [{"name": "data", "mountPath": "/data"}]
    assert sts["spec"]["volumeClaimTemplates"][0]["metadata"]["name"] == "data"


def test_owner_step_chowns_the_cache_root_to_the_pod_user():
    (owner, sync) = cache.init_containers(load("prod").model_services[0].model, render_batch.HOST_CACHE,
                                           region="us-east-1")
    script = owner["command"][2]
    assert 'owner="10001:10001"' in script and 'chown "$owner" "$CACHE_ROOT"' in script
    assert owner["env"] == [{"name": "CACHE_ROOT", "value": "/models"}]
    assert owner["image"] == sync["image"]  # no extra image pull


# --------------------------------------------------------------------------- Pod Security Admission

EXPECTED_ENFORCE = {
    "dev": {"monitoring": "privileged", "keda": "restricted", "gpu-operator": "privileged", "inference": "privileged"},
    "staging": {"monitoring": "privileged", "keda": "restricted", "gpu-operator": "privileged",
                "inference": "privileged", "batch": "privileged",
                # The warm-capacity buffer's pause pods (render/buffer.py): restricted is enough.
                "capacity-buffers": "restricted"},
    "prod": {"monitoring": "privileged", "keda": "restricted", "gpu-operator": "privileged", "inference": "privileged"},
}


@pytest.mark.parametrize("stack", STACKS)
def test_namespaces_carry_pod_security_labels(synthesized, stack):
    namespaces = {o["metadata"]["name"]: o["metadata"]["labels"] for o in _manifests(synthesized[stack])
                  if o["kind"] == "Namespace"}
    assert {ns: labels[f"{PSA}enforce"] for ns, labels in namespaces.items()} == EXPECTED_ENFORCE[stack]
    for labels in namespaces.values():
        assert labels[f"{PSA}warn"] == "restricted"
        assert labels[f"{PSA}audit"] == "restricted"


def test_a_namespace_without_host_path_is_restricted():
    from tests.conftest import build, load_with

    def emptydir(values):
        for svc in values["modelServices"]:
            svc["cache"] = {"medium": "emptyDir", "sizeGib": 100}
            svc.pop("compileCache", None)  # the persisted compile cache needs the hostPath
    result = build(load_with("dev", emptydir))
    ns = next(r.inputs for r in result.resources
              if r.type == "kubernetes:core/v1:Namespace" and r.inputs["metadata"]["name"] == "inference")
    assert ns["metadata"]["labels"][f"{PSA}enforce"] == "restricted"


# --------------------------------------------------------------------------- checkov


def _allowlist() -> list[dict[str, str]]:
    entries = yaml.safe_load(ALLOWLIST.read_text())
    for e in entries:
        assert set(e) == {"check", "resource", "reason"} and e["reason"].strip(), e
    return entries


def _checkov(manifests: Path) -> list[dict[str, Any]]:
    proc = subprocess.run([str(CHECKOV), "-d", str(manifests), "--framework", "kubernetes", "-o", "json", "--quiet",
                           "--skip-check", ",".join(SET_ASIDE)], capture_output=True, text=True, timeout=600)
    assert proc.returncode in (0, 1), proc.stderr  # 1: failed checks, judged below
    reports = json.loads(proc.stdout)
    reports = reports if isinstance(reports, list) else [reports]
    assert all(r["summary"]["parsing_errors"] == 0 for r in reports), proc.stdout
    assert sum(r["summary"]["resource_count"] for r in reports) > 0
    return [f for r in reports for f in r["results"]["failed_checks"]]


@pytest.fixture(scope="module")
def checkov_findings(synthesized) -> dict[str, list[dict[str, Any]]]:
    if not CHECKOV.exists():
        if os.environ.get(REQUIRE_CHECKOV) == "1":
            pytest.fail(f"{CHECKOV} is missing (make checkov-venv); {REQUIRE_CHECKOV}=1 forbids skipping the scan")
        pytest.skip(f"checkov not installed ({CHECKOV}); `make checkov-venv` installs it")
    return {stack: _checkov(synthesized[stack] / "manifests") for stack in STACKS}


def test_checkov_finds_nothing_outside_the_allowlist(checkov_findings):
    allow = _allowlist()
    unexcused = [f"{stack}: {f['check_id']} {f['resource']} ({f['check_name']})"
                 for stack, findings in checkov_findings.items() for f in findings
                 if not any(e["check"] == f["check_id"] and re.fullmatch(e["resource"], f["resource"]) for e in allow)]
    assert unexcused == []


def test_every_allowlist_entry_excuses_a_finding(checkov_findings):
    findings = [f for fs in checkov_findings.values() for f in fs]
    stale = [e["check"] for e in _allowlist()
             if not any(e["check"] == f["check_id"] and re.fullmatch(e["resource"], f["resource"]) for f in findings)]
    assert stale == []
