"""Every rule fires on a resource that breaks it and stays quiet on one that does not."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from policies.rules import POLICIES, RULES
from tests.conftest import REPO
from tests.policy_helpers import gpu_deployment, violations

DEPLOYMENT = "kubernetes:apps/v1:Deployment"
C0 = "spec__template__spec__containers__0"


def test_importing_the_rules_starts_no_server():
    code = "import policies.rules as r; print(len(r.POLICIES))"
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and proc.stdout.strip() == str(len(POLICIES))


def test_names_are_kebab_case_and_unique():
    names = [p.name for p in POLICIES]
    assert len(names) == len(set(names))
    assert all(n == n.lower() and " " not in n and "_" not in n for n in names)
    assert all(r.description and r.fix for r in RULES)


def test_pack_entry_point_builds_the_pack_from_the_same_rules():
    text = (REPO / "policies" / "__main__.py").read_text()
    assert "from policies.rules import POLICIES" in text and "PolicyPack(" in text


CASES = [
    ("gpu-requests-equal-limits", DEPLOYMENT, gpu_deployment(),
     gpu_deployment(**{f"{C0}__resources__requests__nvidia.com/gpu": "2"}), "requests 2 and limits 1 differ"),
    ("gpu-requests-equal-limits", "kubernetes:keda.sh/v1alpha1:ScaledJob",
     {"spec": {"jobTargetRef": {"template": {"spec": {"containers": [{"name": "w", "image": "w:1", "resources": {"limits": {"nvidia.com/gpu": "1"}}}]}}}}},
     {"spec": {"jobTargetRef": {"template": {"spec": {"containers": [{"name": "w", "image": "w:1", "resources": {"requests": {"nvidia.com/gpu": "1"}}}]}}}}},
     "requests 1 and limits None differ"),
    ("image-tag-pinned", DEPLOYMENT, gpu_deployment(), gpu_deployment(**{f"{C0}__image": "vllm/vllm-openai:latest"}),
     "untagged or :latest"),
    ("image-tag-pinned", DEPLOYMENT, gpu_deployment(**{f"{C0}__image": "registry:5000/vllm@sha256:" + "a" * 64}),
     gpu_deployment(**{f"{C0}__image": "registry:5000/vllm"}), "'registry:5000/vllm' is untagged"),
    ("gpu-taint-toleration", DEPLOYMENT, gpu_deployment(), gpu_deployment(spec__template__spec__tolerations=[]),
     "does not tolerate the nvidia.com/gpu:NoSchedule taint"),
    ("gpu-prestop-hook", DEPLOYMENT, gpu_deployment(), gpu_deployment(**{f"{C0}__lifecycle": None}), "no preStop hook"),
    ("vllm-current-metric-names", "kubernetes:keda.sh/v1alpha1:ScaledObject",
     {"metadata": {"name": "so"}, "spec": {"triggers": [{"type": "prometheus", "metadata": {"query": "max(vllm:kv_cache_usage_perc)"}}]}},
     {"metadata": {"name": "so"}, "spec": {"triggers": [{"type": "prometheus", "metadata": {"query": "max(vllm:gpu_cache_usage_perc)"}}]}},
     "vllm:gpu_cache_usage_perc was removed"),
    ("eks-secrets-encryption", "eks:index:Cluster", {"encryptionConfigKeyArn": "arn:aws:kms:us-east-1:1:key/k"}, {},
     "does not encrypt Kubernetes secrets"),
    ("eks-control-plane-logs", "eks:index:Cluster", {"enabledClusterLogTypes": ["api", "audit", "authenticator"]},
     {"enabledClusterLogTypes": ["api"]}, "audit, authenticator are off"),
    ("iam-no-star-on-star", "aws:iam/policy:Policy",
     {"policy": json.dumps({"Statement": [{"Effect": "Allow", "Action": "sqs:*", "Resource": "arn:aws:sqs:us-east-1:1:q"}]})},
     {"policy": json.dumps({"Statement": [{"Sid": "All", "Effect": "Allow", "Action": ["*"], "Resource": "*"}]})},
     "statement All allows every action on every resource"),
]


@pytest.mark.parametrize("name,rtype,good,bad,fragment", CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_rule_passes_and_fails(name, rtype, good, bad, fragment):
    assert violations(name, rtype, good) == []
    found = violations(name, rtype, bad)
    assert found and any(fragment in m for m in found), found
    assert all("Fix:" in m for m in found)


def test_every_rule_has_a_case():
    assert {c[0] for c in CASES} == {p.name for p in POLICIES}


def test_rules_ignore_other_resource_types():
    for rule in RULES:
        assert list(rule.check("aws:s3/bucket:Bucket", {"bucket": "x"}, rule.defaults())) == []
