"""BatchInference: Redis, ScaledJob, authentication, isolation, and the shared cache init."""

from __future__ import annotations

import pytest

from tests.conformance import check_manifest
from tests.conftest import build, by_type, load, load_with

KINDS = {
    "kubernetes:apps/v1:StatefulSet", "kubernetes:core/v1:Service", "kubernetes:core/v1:Secret",
    "kubernetes:networking.k8s.io/v1:NetworkPolicy", "kubernetes:keda.sh/v1alpha1:TriggerAuthentication",
    "kubernetes:keda.sh/v1alpha1:ScaledJob",
}


@pytest.fixture(scope="module")
def staging():
    return build(load("staging"))


def _children(result):
    (component,) = by_type(result, "gpu-platform:batch:BatchInference")
    return [r for r in result.resources if r.parent == component.urn]


def _manifest(r) -> dict:
    _, gv, kind = r.type.split(":", 2)
    return {"apiVersion": r.inputs.get("apiVersion", gv.removeprefix("core/")), "kind": kind, **r.inputs,
            "metadata": r.outputs["metadata"]}


def test_worker_synthesizes_every_object_and_each_validates(staging):
    children = _children(staging)
    assert KINDS <= {r.type for r in children}
    for r in children:
        if r.type in KINDS:
            assert check_manifest(_manifest(r), "1.35", set()) == [], r.type


def test_scaled_job_shape(staging):
    (job,) = [r.inputs for r in by_type(staging, "kubernetes:keda.sh/v1alpha1:ScaledJob")]
    spec = job["spec"]
    assert spec["minReplicaCount"] == 0 and spec["maxReplicaCount"] == 2
    assert spec["scalingStrategy"] == {"strategy": "accurate"}
    assert spec["jobTargetRef"]["backoffLimit"] == 3 and spec["jobTargetRef"]["activeDeadlineSeconds"] == 3600
    pod = spec["jobTargetRef"]["template"]["spec"]
    assert pod["restartPolicy"] == "OnFailure"
    (c,) = pod["containers"]
    assert c["resources"]["requests"]["nvidia.com/gpu"] == c["resources"]["limits"]["nvidia.com/gpu"] == "1"
    env = {e["name"]: e for e in c["env"]}
    assert env["QUEUE_NAME"]["value"] == "embed"
    assert env["REDIS_URL"]["valueFrom"]["secretKeyRef"] == {"name": "embed-redis-auth", "key": "url"}
    assert pod["affinity"]["nodeAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"][0]["preference"][
        "matchExpressions"][0]["values"] == ["spot"]
    (trigger,) = spec["triggers"]
    assert trigger["type"] == "redis" and trigger["authenticationRef"] == {"name": "embed-redis"}
    assert trigger["metadata"] == {"listName": "embed", "listLength": "20", "activationListLength": "0",
                                   "databaseIndex": "0", "address": "embed-redis.batch.svc:6379"}


def test_redis_requires_auth_from_the_generated_secret(staging):
    (sts,) = [r.inputs for r in by_type(staging, "kubernetes:apps/v1:StatefulSet")]
    c = sts["spec"]["template"]["spec"]["containers"][0]
    assert "--requirepass" in c["command"][2] and c["image"] == (
        "123456789012.dkr.ecr.us-east-1.amazonaws.com/mirror/docker-hub/library/redis:7.4.6-alpine")  # staging's cache
    assert c["env"][0]["valueFrom"]["secretKeyRef"] == {"name": "embed-redis-auth", "key": "password"}
    assert sts["spec"]["volumeClaimTemplates"][0]["spec"]["storageClassName"] == "gp3"
    (secret,) = [r for r in by_type(staging, "kubernetes:core/v1:Secret")]
    assert secret.inputs["stringData"] == {"password": "[secret]", "url": "[secret]"}
    (ta,) = [r.inputs for r in by_type(staging, "kubernetes:keda.sh/v1alpha1:TriggerAuthentication")]
    assert ta["spec"]["secretTargetRef"] == [{"parameter": "password", "name": "embed-redis-auth", "key": "password"}]


def test_network_policy_admits_workers_producers_and_keda_only(staging):
    (np,) = [r.inputs for r in by_type(staging, "kubernetes:networking.k8s.io/v1:NetworkPolicy")
             if r.inputs["metadata"]["name"] == "embed-redis"]
    (rule,) = np["spec"]["ingress"]
    workers = {"app.kubernetes.io/name": "batch-worker", "app.kubernetes.io/instance": "embed",
               "app.kubernetes.io/component": "batch-worker"}
    assert rule["from"][0] == {"podSelector": {"matchLabels": workers}}
    # The selector admits the pods the ScaledJob actually creates.
    (job,) = [r.inputs for r in by_type(staging, "kubernetes:keda.sh/v1alpha1:ScaledJob")]
    assert workers.items() <= job["spec"]["jobTargetRef"]["template"]["metadata"]["labels"].items()
    assert rule["from"][1]["namespaceSelector"]["matchExpressions"][0]["values"] == ["inference", "keda"]
    assert rule["ports"] == [{"protocol": "TCP", "port": 6379}]


def test_init_container_fills_the_shared_node_cache(staging):
    (job,) = [r.inputs for r in by_type(staging, "kubernetes:keda.sh/v1alpha1:ScaledJob")]
    pod = job["spec"]["jobTargetRef"]["template"]["spec"]
    owner, init = pod["initContainers"]  # the hostPath owner step first (tests/test_pod_security.py)
    assert owner["name"] == "model-cache-owner"
    (worker,) = pod["containers"]
    assert init["name"] == "model-cache" and init["image"] == (
        "123456789012.dkr.ecr.us-east-1.amazonaws.com/mirror/ecr-public/aws-cli/aws-cli:2.31.12")  # through staging's pull-through cache
    assert init["env"] == [
        {"name": "MODEL_SOURCE", "value": "s3://llm-staging-models/BAAI/bge-large-en-v1.5"},
        {"name": "CACHE_DIR", "value": "/models/llm-staging-models/BAAI/bge-large-en-v1.5"},
        {"name": "HOME", "value": "/tmp"},  # the scratch emptyDir: the root filesystem is read-only
        {"name": "AWS_REGION", "value": "us-east-1"},
        {"name": "AWS_DEFAULT_REGION", "value": "us-east-1"},
    ]
    assert init["volumeMounts"] == [{"name": "model-cache", "mountPath": "/models"},
                                   {"name": "model-cache-tmp", "mountPath": "/tmp"}]
    cache_volume = {"name": "model-cache", "hostPath": {"path": "/mnt/k8s-disks/0/models", "type": "DirectoryOrCreate"}}
    assert [v for v in pod["volumes"] if "hostPath" in v] == [cache_volume]
    assert {"name": "MODEL_PATH", "value": "/models/llm-staging-models/BAAI/bge-large-en-v1.5"} in worker["env"]
    assert worker["volumeMounts"][0] == {"name": "model-cache", "mountPath": "/models", "readOnly": True}
    # Jobs and vLLM replicas on one node share the hostPath cache, so they must write it the
    # same way (same sync script and marker, same image, same mount), or one would redo or
    # break the other's copy.
    svc_pod = next(r.inputs for r in by_type(staging, "kubernetes:apps/v1:Deployment")
                   if r.inputs["metadata"]["name"] == "chat-baseline")["spec"]["template"]["spec"]
    # (staging's chat also persists its compile cache: a third init step after these two.)
    svc_init = next(c for c in svc_pod["initContainers"] if c["name"] == "model-cache")
    for key in ("image", "command", "volumeMounts", "resources"):
        assert init[key] == svc_init[key], key
    assert cache_volume in svc_pod["volumes"]


def test_existing_redis_with_tls():
    cfg = load_with("staging", lambda v: v["batchWorkers"][0].update(redis={
        "addressSecret": {"name": "elasticache", "key": "address"},
        "passwordSecret": {"name": "elasticache", "key": "password"}}))
    result = build(cfg)
    assert not by_type(result, "kubernetes:apps/v1:StatefulSet") and not by_type(result, "kubernetes:core/v1:Secret")
    (job,) = [r.inputs for r in by_type(result, "kubernetes:keda.sh/v1alpha1:ScaledJob")]
    meta = job["spec"]["triggers"][0]["metadata"]
    assert meta["addressFromEnv"] == "REDIS_ADDRESS" and meta["enableTLS"] == "true" and "address" not in meta
    (ta,) = [r.inputs for r in by_type(result, "kubernetes:keda.sh/v1alpha1:TriggerAuthentication")]
    assert ta["spec"]["secretTargetRef"] == [{"parameter": "password", "name": "elasticache", "key": "password"}]


def test_on_demand_capacity_is_required_when_asked():
    cfg = load_with("staging", lambda v: v["batchWorkers"][0].update(capacity="onDemand"))
    (job,) = [r.inputs for r in by_type(build(cfg), "kubernetes:keda.sh/v1alpha1:ScaledJob")]
    affinity = job["spec"]["jobTargetRef"]["template"]["spec"]["affinity"]["nodeAffinity"]
    assert "preferredDuringSchedulingIgnoredDuringExecution" not in affinity
    assert affinity["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"][0]["matchExpressions"][1][
        "values"] == ["on-demand"]


def test_outputs(staging):
    assert staging.outputs["batch"] == {"embed": {"redisAddress": "embed-redis.batch.svc:6379", "queue": "embed",
                                                  "scaledJob": "embed-worker"}}
