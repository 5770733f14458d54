"""Conformance of every synthesized stack, and proof that the checks catch planted defects."""

from __future__ import annotations

import copy

import pytest
import yaml

from tests import conformance
from tests.conformance import (
    arn_errors,
    check_build,
    check_helm_release,
    check_manifest,
    iam_errors,
)
from tests.conftest import STACKS


@pytest.mark.parametrize("stack", STACKS)
def test_stack_conforms(synthesized, stack):
    summary = check_build(synthesized[stack])
    print(summary.render())
    assert summary.objects > 0
    assert summary.errors == []
    # Only transition rules (oldSelf) may be skipped.
    assert all("oldSelf" in r for r in summary.skipped_cel)


def _manifest(synthesized, kind_prefix: str) -> dict:
    path = next(p for p in sorted((synthesized["prod"] / "manifests").glob("*.yaml")) if f"-{kind_prefix}-" in p.name)
    return yaml.safe_load(path.read_text())


def _check(obj) -> list[str]:
    return check_manifest(obj, "1.35", set())


def test_valid_nodepool_passes(synthesized):
    assert _check(_manifest(synthesized, "nodepool")) == []


def test_misspelled_nodepool_field_is_caught(synthesized):
    obj = _manifest(synthesized, "nodepool")
    obj["spec"]["template"]["spec"]["expireAfterr"] = obj["spec"]["template"]["spec"].pop("expireAfter")
    assert any("'expireAfterr' was unexpected" in e for e in _check(obj))


def test_thirty_days_expire_after_is_caught(synthesized):
    obj = _manifest(synthesized, "nodepool")
    obj["spec"]["template"]["spec"]["expireAfter"] = "30d"
    assert any("'30d' does not match" in e for e in _check(obj))


def test_integer_volume_size_is_caught(synthesized):
    obj = _manifest(synthesized, "ec2nodeclass")
    assert _check(obj) == []
    obj["spec"]["blockDeviceMappings"][0]["ebs"]["volumeSize"] = 200
    assert any("volumeSize" in e and "200 is not of type 'string'" in e for e in _check(obj))


def test_cel_rule_is_evaluated(synthesized):
    obj = _manifest(synthesized, "nodepool")
    obj["spec"]["template"]["spec"]["requirements"].append(
        {"key": "karpenter.k8s.aws/instance-local-nvme", "operator": "Gt", "values": ["0", "1"]})
    errors = _check(obj)
    assert any("requirements" in e and "rule:" in e for e in errors), errors
    obj = _manifest(synthesized, "nodepool")
    obj["spec"]["template"]["metadata"]["labels"]["karpenter.sh/custom"] = "x"
    assert any("karpenter.sh" in e for e in _check(obj))


SCALED_OBJECT = {
    "apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject",
    "metadata": {"name": "chat-burst", "namespace": "inference"},
    "spec": {
        "scaleTargetRef": {"name": "chat-burst"},
        "minReplicaCount": 0, "maxReplicaCount": 4,
        "triggers": [{"type": "prometheus", "name": "waiting",
                      "metadata": {"serverAddress": "http://kps-prometheus.monitoring.svc:9090",
                                   "query": "sum(vllm:num_requests_waiting)", "threshold": "5"}}],
    },
}


def test_scaled_object_trigger_metadata_type_is_caught():
    assert _check(copy.deepcopy(SCALED_OBJECT)) == []
    bad = copy.deepcopy(SCALED_OBJECT)
    bad["spec"]["triggers"][0]["metadata"]["threshold"] = 5
    assert any("threshold" in e and "5 is not of type 'string'" in e for e in _check(bad))


def test_scaled_object_cel_min_above_max_is_caught():
    bad = copy.deepcopy(SCALED_OBJECT)
    bad["spec"]["minReplicaCount"] = 5
    assert any("minReplicaCount" in e or "rule:" in e for e in _check(bad))


def test_namespace_scope_is_checked():
    bad = copy.deepcopy(SCALED_OBJECT)
    del bad["metadata"]["namespace"]
    assert any("metadata.namespace: required" in e for e in _check(bad))


def test_builtin_objects_are_strict():
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x", "namespace": "default"}, "data": {"a": "b"}}
    assert _check(cm) == []
    cm["dta"] = {}
    assert any("'dta' was unexpected" in e for e in _check(cm))


def test_go_regex_pattern_is_checked_not_skipped():
    rule = {"apiVersion": "monitoring.coreos.com/v1", "kind": "PrometheusRule",
            "metadata": {"name": "r", "namespace": "monitoring"},
            "spec": {"groups": [{"name": "g", "partial_response_strategy": "WARN",
                                 "rules": [{"alert": "A", "expr": "up == 0"}]}]}}
    assert _check(rule) == []
    rule["spec"]["groups"][0]["partial_response_strategy"] = "ignore"
    assert any("partial_response_strategy" in e for e in _check(rule))


def test_unknown_helm_key_is_caught(synthesized):
    rel = yaml.safe_load((synthesized["prod"] / "helm" / "karpenter.yaml").read_text())
    assert check_helm_release(rel) == []
    rel["values"]["setings"] = rel["values"].pop("settings")
    assert any("'setings' is not in the chart's defaults" in e for e in check_helm_release(rel))
    rel = yaml.safe_load((synthesized["prod"] / "helm" / "karpenter.yaml").read_text())
    rel["values"]["settings"]["clusterNme"] = "x"
    assert any("'settings.clusterNme'" in e for e in check_helm_release(rel))


def test_helm_version_must_match_vendored_defaults(synthesized):
    rel = yaml.safe_load((synthesized["prod"] / "helm" / "karpenter.yaml").read_text())
    rel["version"] = "1.13.0"
    assert any("vendored defaults are for 1.14.1" in e for e in check_helm_release(rel))


def test_iam_lint():
    star = {"Statement": [{"Sid": "All", "Effect": "Allow", "Action": "*", "Resource": "*"}]}
    assert list(iam_errors("aws:iam/policy:Policy", "p", star)) == ["p: statement All allows * on *"]
    unscoped = {"Statement": [{"Sid": "S", "Effect": "Allow", "Action": ["s3:GetObject"], "Resource": "*"}]}
    assert "without a condition" in list(iam_errors("aws:iam/policy:Policy", "p", unscoped))[0]
    pricing = {"Statement": [{"Effect": "Allow", "Action": "pricing:GetProducts", "Resource": "*"}]}
    assert list(iam_errors("aws:iam/policy:Policy", "p", pricing)) == []


def test_arn_lint():
    good = {"a": "arn:aws:sqs:us-east-1:123456789012:q", "b": "arn:aws:iam::aws:policy/AmazonEKS_CNI_Policy"}
    assert list(arn_errors("r", good, "us-east-1")) == []
    assert list(arn_errors("r", {"a": "arn:aws:sqs:eu-west-1:123456789012:q"}, "us-east-1"))
    assert list(arn_errors("r", {"a": "arn:aws:iam:us-east-1:123456789012:role/x"}, "us-east-1"))
    assert list(arn_errors("r", {"a": "arn:aws:sqs:us-east-1:12345:q"}, "us-east-1"))


def test_free_form_exceptions_have_reasons():
    for chart, paths in conformance.FREE_FORM.items():
        assert chart in conformance.CHART_DIRS.values()
        assert all(reason for reason in paths.values())
