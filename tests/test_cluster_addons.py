"""Cluster storage and add-ons (issue 14, items 1 and 10): what claims a volume names a
StorageClass the stack creates and waits for it; the EBS CSI driver, CoreDNS, the control-plane
log group, the Pod Identity agent before Karpenter, kube-prometheus-stack's CRD upgrades and
the spot service-linked role preflight."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

import synth.engine
from components import versions
from components.cluster import SPOT_ROLE_OWNER_TAG, SYSTEM_POOL_LABEL
from components.config import ConfigError
from synth.mocks import RecordingMocks
from tests.conftest import STACKS, build, load, load_with


def _resources(out: Path) -> list[dict]:
    return json.loads((out / "resources.json").read_text())


def _upstream(resources: list[dict], urn: str) -> set[str]:
    """Every resource ``urn`` waits for, directly or through what it waits for."""
    by_urn = {r["urn"]: r for r in resources}
    seen: set[str] = set()
    todo = list(by_urn[urn]["depends_on"])
    while todo:
        u = todo.pop()
        if u not in seen:
            seen.add(u)
            todo += by_urn[u]["depends_on"] if u in by_urn else []
    return seen


def _one(resources: list[dict], rtype: str, **inputs) -> dict:
    found = [r for r in resources if r["type"] == rtype and all(r["inputs"].get(k) == v for k, v in inputs.items())]
    assert len(found) == 1, f"{rtype} {inputs}: {len(found)} found"
    return found[0]


def _claims(resources: list[dict]) -> list[tuple[dict, str | None]]:
    """(consumer, storageClassName) for every PVC, volumeClaimTemplate and Prometheus storageSpec."""
    out = []
    for r in resources:
        inputs = r["inputs"]
        if r["type"] == "kubernetes:core/v1:PersistentVolumeClaim":
            out.append((r, inputs["spec"].get("storageClassName")))
        if r["type"] == "kubernetes:apps/v1:StatefulSet":
            out += [(r, t["spec"].get("storageClassName")) for t in inputs["spec"].get("volumeClaimTemplates", [])]
        if r["type"] == "kubernetes:helm.sh/v3:Release":
            spec = (inputs.get("values") or {}).get("prometheus", {}).get("prometheusSpec", {})
            if "storageSpec" in spec:
                out.append((r, spec["storageSpec"]["volumeClaimTemplate"]["spec"].get("storageClassName")))
    return out


# --------------------------------------------------------------------------- 1. storage


@pytest.mark.parametrize("stack", STACKS)
def test_every_claim_names_a_class_the_stack_creates_and_waits_for_it(synthesized, stack):
    resources = _resources(synthesized[stack])
    classes = {r["inputs"]["metadata"]["name"]: r for r in resources
               if r["type"] == "kubernetes:storage.k8s.io/v1:StorageClass"}
    claims = _claims(resources)
    assert claims, "nothing claims a volume: the check would be empty"
    for consumer, class_name in claims:
        assert class_name in classes, f"{consumer['name']} claims {class_name!r}; the stack creates {sorted(classes)}"
        assert classes[class_name]["urn"] in _upstream(resources, consumer["urn"]), (
            f"{consumer['name']} does not wait for StorageClass {class_name}")


@pytest.mark.parametrize("stack", STACKS)
def test_the_gp3_class_is_encrypted_csi_and_waits_for_the_driver(synthesized, stack):
    resources = _resources(synthesized[stack])
    sc = _one(resources, "kubernetes:storage.k8s.io/v1:StorageClass")
    assert sc["inputs"]["metadata"]["name"] == "gp3"
    assert sc["inputs"]["provisioner"] == "ebs.csi.aws.com"
    assert sc["inputs"]["volumeBindingMode"] == "WaitForFirstConsumer"
    assert sc["inputs"]["allowVolumeExpansion"] is True
    assert sc["inputs"]["reclaimPolicy"] == "Delete"
    assert sc["inputs"]["parameters"] == {"type": "gp3", "encrypted": "true", "csi.storage.k8s.io/fstype": "ext4"}
    driver = _one(resources, "aws:eks/addon:Addon", addonName="aws-ebs-csi-driver")
    assert driver["urn"] in sc["depends_on"]
    assert driver["inputs"]["addonVersion"] == versions.EBS_CSI_DRIVER_ADDON


@pytest.mark.parametrize("stack", STACKS)
def test_the_ebs_csi_controller_has_its_own_role_by_pod_identity(synthesized, stack):
    resources = _resources(synthesized[stack])
    driver = _one(resources, "aws:eks/addon:Addon", addonName="aws-ebs-csi-driver")
    (association,) = driver["inputs"]["podIdentityAssociations"]
    assert association["serviceAccount"] == "ebs-csi-controller-sa"
    role = next(r for r in resources if r["type"] == "aws:iam/role:Role" and r["name"].endswith("-ebs-csi"))
    assert f":role/{role['name']}-" in association["roleArn"]  # the engine's ARN of that role
    trust = json.loads(role["inputs"]["assumeRolePolicy"])
    assert trust["Statement"][0]["Principal"] == {"Service": "pods.eks.amazonaws.com"}
    attached = [r["inputs"]["policyArn"] for r in resources
                if r["type"] == "aws:iam/rolePolicyAttachment:RolePolicyAttachment" and r["urn"] in driver["depends_on"]]
    assert attached == ["arn:aws:iam::aws:policy/service-role/AmazonEBSCSIDriverPolicy"]
    controller = json.loads(driver["inputs"]["configurationValues"])["controller"]
    assert controller["nodeSelector"] == SYSTEM_POOL_LABEL
    assert {"key": "CriticalAddonsOnly", "operator": "Exists", "effect": "NoSchedule"} in controller["tolerations"]
    agent = _one(resources, "eks:index:Addon", addonName="eks-pod-identity-agent")
    assert agent["urn"] in driver["depends_on"]


# --------------------------------------------------------------------------- 10. add-ons


@pytest.mark.parametrize("stack", STACKS)
def test_coredns_is_an_addon_on_the_system_nodes(synthesized, stack):
    resources = _resources(synthesized[stack])
    coredns = _one(resources, "aws:eks/addon:Addon", addonName="coredns")
    assert coredns["inputs"]["resolveConflictsOnCreate"] == "OVERWRITE"
    assert coredns["inputs"]["addonVersion"] == versions.COREDNS_ADDON[load(stack).cluster.kubernetes_version]
    values = json.loads(coredns["inputs"]["configurationValues"])
    assert values["tolerations"] == [{"key": "CriticalAddonsOnly", "operator": "Exists", "effect": "NoSchedule"}]
    assert values["nodeSelector"] == SYSTEM_POOL_LABEL
    node_group = _one(resources, "eks:index:ManagedNodeGroup")
    assert node_group["urn"] in coredns["depends_on"]
    # pulumi-eks does not manage a second copy.
    cluster = _one(resources, "eks:index:Cluster")
    assert cluster["inputs"]["corednsAddonOptions"]["enabled"] is False


def test_every_supported_kubernetes_version_has_a_coredns_build():
    from platform_facts.aws import KUBERNETES_VERSIONS

    assert set(versions.COREDNS_ADDON) == set(KUBERNETES_VERSIONS)


@pytest.mark.parametrize("stack", STACKS)
def test_control_plane_logs_go_to_a_log_group_created_first_with_retention(synthesized, stack):
    resources = _resources(synthesized[stack])
    config = load(stack).cluster
    group = _one(resources, "aws:cloudwatch/logGroup:LogGroup")
    assert group["inputs"]["name"] == f"/aws/eks/{config.name}/cluster"
    assert group["inputs"]["retentionInDays"] == config.log_retention_days == 90
    cluster = _one(resources, "eks:index:Cluster")
    assert group["urn"] in cluster["depends_on"]
    assert [r["urn"] for r in resources].index(group["urn"]) < [r["urn"] for r in resources].index(cluster["urn"])


def test_log_retention_is_one_cloudwatch_accepts():
    with pytest.raises(ConfigError) as err:
        load_with("dev", lambda v: v["cluster"].update(logRetentionDays=100))
    assert "cluster.logRetentionDays" in str(err.value)
    assert "100 is not a CloudWatch retention; use one of 1, 3, 5" in str(err.value)
    config = load_with("dev", lambda v: v["cluster"].update(logRetentionDays=365))
    assert config.cluster.log_retention_days == 365


@pytest.mark.parametrize("stack", STACKS)
def test_karpenter_waits_for_the_pod_identity_agent(synthesized, stack):
    resources = _resources(synthesized[stack])
    agent = _one(resources, "eks:index:Addon", addonName="eks-pod-identity-agent")
    controller = _one(resources, "kubernetes:helm.sh/v3:Release", name="karpenter")
    assert agent["urn"] in controller["depends_on"]


@pytest.mark.parametrize("stack", STACKS)
def test_kube_prometheus_stack_upgrades_its_crds_from_the_system_nodes(synthesized, stack):
    values = yaml.safe_load((synthesized[stack] / "helm" / "kps.yaml").read_text())["values"]
    job = values["crds"]["upgradeJob"]
    assert job["enabled"] is True
    assert job["nodeSelector"] == SYSTEM_POOL_LABEL
    assert job["image"]["busybox"]["tag"] != "latest"


# --------------------------------------------------------------------------- spot role preflight

SPOT_ROLE = "aws:iam/serviceLinkedRole:ServiceLinkedRole"


def _with_roles(monkeypatch, roles: dict[str, dict[str, str]]) -> None:
    """The recording engine answers aws.iam.get_role from ``roles`` (name -> tags)."""
    monkeypatch.setattr(synth.engine, "RecordingMocks",
                        lambda region, refs=None: RecordingMocks(region, refs, existing_roles=roles))


def _spot_roles(config) -> list:
    return [r for r in build(config).resources if r.type == SPOT_ROLE]


def test_the_spot_role_is_not_created_where_the_account_has_it():
    assert _spot_roles(load("dev")) == []  # the engine's default account has used spot


def test_the_spot_role_is_created_where_the_account_has_none(monkeypatch):
    _with_roles(monkeypatch, {})
    (role,) = _spot_roles(load("dev"))
    assert role.inputs["awsServiceName"] == "spot.amazonaws.com"
    assert role.inputs["tags"][SPOT_ROLE_OWNER_TAG] == "llm-dev"


def test_a_spot_role_this_stack_created_stays_declared(monkeypatch):
    _with_roles(monkeypatch, {"AWSServiceRoleForEC2Spot": {SPOT_ROLE_OWNER_TAG: "llm-dev"}})
    assert len(_spot_roles(load("dev"))) == 1
    _with_roles(monkeypatch, {"AWSServiceRoleForEC2Spot": {SPOT_ROLE_OWNER_TAG: "someone-else"}})
    assert _spot_roles(load("dev")) == []


def test_skip_leaves_the_spot_role_alone(monkeypatch):
    _with_roles(monkeypatch, {})
    config = load_with("dev", lambda v: v["cluster"].update(spotServiceLinkedRole="skip"))
    assert _spot_roles(config) == []
