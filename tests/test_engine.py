"""The recording engine: what it records, the outputs it returns, and determinism."""

from __future__ import annotations

import json
import re

import pulumi
import pulumi_aws as aws
import pulumi_eks as eks
import pulumi_kubernetes as k8s

from synth.engine import ACCOUNT_ID, run_program


class _Box(pulumi.ComponentResource):
    def __init__(self, name: str, opts: pulumi.ResourceOptions | None = None):
        super().__init__("test:index:Box", name, None, opts)
        p = pulumi.ResourceOptions(parent=self)
        self.role = aws.iam.Role(f"{name}-role", assume_role_policy="{}", opts=p)
        self.queue = aws.sqs.Queue(f"{name}-queue", message_retention_seconds=300, opts=p)
        self.register_outputs({})


def _program() -> None:
    box = _Box("box")
    cluster = eks.Cluster("eks", name="demo", skip_default_node_group=True)
    provider = k8s.Provider("k8s", kubeconfig=cluster.kubeconfig_json)
    k8s.core.v1.ConfigMap(
        "cm",
        metadata={"name": "cm", "namespace": "default"},
        data={"queue": box.queue.url, "role": box.role.arn},
        opts=pulumi.ResourceOptions(provider=provider, depends_on=[box]),
    )
    pulumi.export("queueUrl", box.queue.url)
    pulumi.export("kubeconfig", pulumi.Output.secret(cluster.kubeconfig_json))


def _run():
    return run_program(_program, project="proj", stack="dev", config={}, region="eu-west-1")


def _by_name(result):
    return {r.name: r for r in result.resources}


def test_records_parent_provider_and_dependencies():
    res = _by_name(_run())
    box_urn = "urn:pulumi:dev::proj::test:index:Box::box"
    assert res["box"].urn == box_urn and res["box"].custom is False and res["box"].parent is None
    assert res["box-role"].parent == box_urn
    assert res["box-role"].urn == "urn:pulumi:dev::proj::test:index:Box$aws:iam/role:Role::box-role"
    cm = res["cm"]
    assert cm.provider == "urn:pulumi:dev::proj::pulumi:providers:kubernetes::k8s"
    # depends_on=[component] reaches the engine as the component's children (the SDK
    # expands it), together with the implicit dependencies through inputs.
    assert cm.depends_on == [
        "urn:pulumi:dev::proj::test:index:Box$aws:iam/role:Role::box-role",
        "urn:pulumi:dev::proj::test:index:Box$aws:sqs/queue:Queue::box-queue",
    ]
    assert cm.depends_on == sorted(cm.depends_on)


def test_outputs_are_realistic():
    result = _run()
    res = _by_name(result)
    role_arn = res["box-role"].outputs["arn"]
    assert re.fullmatch(rf"arn:aws:iam::{ACCOUNT_ID}:role/box-role-[0-9a-f]{{7}}", role_arn)
    url = res["box-queue"].outputs["url"]
    assert re.fullmatch(rf"https://sqs\.eu-west-1\.amazonaws\.com/{ACCOUNT_ID}/box-queue-[0-9a-f]{{7}}", url)
    assert res["box-queue"].outputs["arn"].startswith(f"arn:aws:sqs:eu-west-1:{ACCOUNT_ID}:box-queue-")
    # Inputs that came from outputs are resolved in the recorded inputs.
    assert res["cm"].inputs["data"] == {"queue": url, "role": role_arn}
    kube = json.loads(res["eks"].outputs["kubeconfigJson"])
    assert kube["users"][0]["user"]["exec"]["args"][:4] == ["eks", "get-token", "--cluster-name", "demo"]
    assert res["eks"].outputs["clusterSecurityGroupId"].startswith("sg-")
    assert result.outputs["queueUrl"] == url


def test_exported_secrets_are_redacted_but_kept_in_memory():
    result = _run()
    assert result.outputs["kubeconfig"] == "[secret]"
    assert json.loads(result.raw_outputs["kubeconfig"])["kind"] == "Config"


def test_integral_numbers_come_back_as_integers():
    res = _by_name(_run())
    value = res["box-queue"].inputs["messageRetentionSeconds"]
    assert value == 300 and isinstance(value, int)


def test_two_runs_record_the_same_resources_in_the_same_order():
    a, b = _run(), _run()
    assert [r.contract() for r in a.resources] == [r.contract() for r in b.resources]
    assert [r.outputs for r in a.resources] == [r.outputs for r in b.resources]


def _program_with_options() -> None:
    k8s.core.v1.ConfigMap(
        "with-options",
        metadata={"name": "with-options", "namespace": "default"},
        data={"a": "1"},
        opts=pulumi.ResourceOptions(
            custom_timeouts=pulumi.CustomTimeouts(create="30m", delete="5m"),
            ignore_changes=["data"],
            delete_before_replace=True,
            protect=True,
            aliases=[pulumi.Alias(name="old"), "urn:pulumi:dev::proj::kubernetes:core/v1:ConfigMap::older"],
        ),
    )
    box = _Box("box", opts=pulumi.ResourceOptions(protect=True))
    k8s.apps.v1.Deployment(
        "moved",
        metadata={"name": "moved", "namespace": "default"},
        spec={"selector": {"matchLabels": {"app": "x"}}, "template": {
            "metadata": {"labels": {"app": "x"}}, "spec": {"containers": [{"name": "x", "image": "x"}]}}},
        opts=pulumi.ResourceOptions(
            parent=box, ignore_changes=["spec.replicas"], delete_before_replace=False, protect=False,
            aliases=[pulumi.Alias(parent=None), pulumi.Alias(name="m", type_="test:index:Old", project="other")],
        ),
    )
    k8s.core.v1.ConfigMap("plain", metadata={"name": "plain", "namespace": "default"}, data={"a": "1"})


def test_resource_options_are_recorded_as_the_engine_receives_them():
    res = _by_name(run_program(_program_with_options, project="proj", stack="dev", config={}, region="eu-west-1"))
    assert res["with-options"].contract()["options"] == {
        "aliases": [
            "urn:pulumi:dev::proj::kubernetes:core/v1:ConfigMap::old",
            "urn:pulumi:dev::proj::kubernetes:core/v1:ConfigMap::older",
        ],
        "customTimeouts": {"create": "30m", "delete": "5m"},
        "ignoreChanges": ["data"],
        "deleteBeforeReplace": True,
        "protect": True,
    }
    # Aliases resolve against the resource's parent unless told otherwise; pulumi_kubernetes
    # adds one per older API group of the kind. An explicit False is recorded.
    assert res["moved"].options == {
        "aliases": [
            "urn:pulumi:dev::proj::kubernetes:apps/v1:Deployment::moved",
            "urn:pulumi:dev::other::test:index:Box$test:index:Old::m",
            "urn:pulumi:dev::proj::test:index:Box$kubernetes:apps/v1beta1:Deployment::moved",
            "urn:pulumi:dev::proj::test:index:Box$kubernetes:apps/v1beta2:Deployment::moved",
            "urn:pulumi:dev::proj::test:index:Box$kubernetes:extensions/v1beta1:Deployment::moved",
        ],
        "ignoreChanges": ["spec.replicas"],
        "deleteBeforeReplace": False,
        "protect": False,
    }
    # protect passes from a component to its children.
    assert res["box"].options == {"protect": True}
    assert res["box-queue"].options == {"protect": True}


def test_a_resource_without_options_records_an_empty_options_object():
    res = _by_name(run_program(_program_with_options, project="proj", stack="dev", config={}, region="eu-west-1"))
    assert res["plain"].contract()["options"] == {}
    assert set(res["plain"].contract()) == {
        "type", "name", "urn", "parent", "custom", "provider", "depends_on", "inputs", "options"}
