"""Rollouts that can finish: await timeouts from the cold-start model, dependencies on what pods
need at admission and scheduling, and objects that wait for nothing else."""

from __future__ import annotations

import pytest

from components.config import MAX_SURGE_REPLICAS
from components.render import rollout, vllm
from tests.conftest import STACKS, build, by_type, load, load_plain_prod, load_with

DEPLOYMENT = "kubernetes:apps/v1:Deployment"
ASSOCIATION = "aws:eks/podIdentityAssociation:PodIdentityAssociation"


@pytest.fixture(scope="module")
def results():
    """Every stack, and prod before its re-tune (``plain_prod``): the timeout arithmetic below is
    checked on that fixed profile, so a re-tune of the stack file does not move it."""
    return {**{s: build(load(s)) for s in STACKS}, "plain-prod": build(load_plain_prod())}


def _named(result, rtype, name):
    (r,) = [r for r in by_type(result, rtype) if r.inputs["metadata"]["name"] == name]
    return r


def _release(result, name):
    (r,) = [r for r in by_type(result, "kubernetes:helm.sh/v3:Release") if r.inputs["name"] == name]
    return r.urn


def _urns(result, rtype, prefix=""):
    return {r.urn for r in by_type(result, rtype) if r.inputs["metadata"]["name"].startswith(prefix)}


# --------------------------------------------------------------------------- await timeouts


def test_rollout_arithmetic():
    assert rollout.ready_within_seconds(node_ready=600, image_pull=360, download=522, startup_budget=760,
                                        first_ready=80) == 2322
    assert [rollout.rollout_steps(n, 1) for n in (0, 1, 3)] == [1, 1, 3]
    assert rollout.rollout_steps(5, 2) == 3
    # 3 waves of 2322 s, plus a tenth: 7662.6 s, rounded up to 128 minutes.
    assert rollout.await_timeout_minutes(2322, 3) == 128
    assert rollout.await_timeout_minutes(2322, 1) == 43


def test_seventy_b_readiness_and_timeouts():
    cfg = load_plain_prod()
    svc = cfg.model_services[1]
    tier = cfg.tier(svc.tier)
    # p5 node 600 + image pull 360 + 130.4 GiB at 0.25 GiB/s 522 + startup probe 120 x 10 s
    # + startup period 10 + first readiness 70.
    assert vllm.ready_within_seconds(svc.model, tier) == 2762
    # A baseline of 4 surging one pod at a time: four waves on update, one on create.
    assert vllm.await_timeouts(svc, tier, "baseline") == {"create": "51m", "update": "203m"}
    # Burst (created at 0, rolls at most its 1 burst replica).
    assert vllm.await_timeouts(svc, tier, "burst") == {"create": "51m", "update": "51m"}


def test_eight_b_burst_update_is_judged_at_its_maximum():
    cfg = load_plain_prod()
    svc = cfg.model_services[0]
    tier = cfg.tier(svc.tier)
    # g6e node 300 + pull 360 + 14.9 GiB download 60 + startup 62 x 10 + 80.
    assert vllm.ready_within_seconds(svc.model, tier) == 1420
    # 6 burst replicas (8 - 2) roll one at a time when the autoscaler holds the burst at its max.
    assert vllm.await_timeouts(svc, tier, "burst") == {"create": "27m", "update": "157m"}
    assert vllm.await_timeouts(svc, tier, "baseline") == {"create": "27m", "update": "53m"}


def test_prod_deployments_carry_the_timeouts_and_the_annotations(results):
    base = _named(results["plain-prod"], DEPLOYMENT, "reason-70b-baseline")
    assert base.options["customTimeouts"] == {"create": "51m", "update": "203m"}
    annotations = base.inputs["metadata"]["annotations"]
    assert annotations["platform.gpu/ready-within-seconds"] == "2762"
    assert annotations["platform.gpu/rollout-steps"] == "4"
    burst = _named(results["plain-prod"], DEPLOYMENT, "chat-8b-burst")
    assert burst.options["customTimeouts"] == {"create": "27m", "update": "157m"}
    assert burst.options["ignoreChanges"] == ["spec.replicas"]
    assert burst.inputs["metadata"]["annotations"]["platform.gpu/rollout-steps"] == "6"


@pytest.mark.parametrize("stack", STACKS)
def test_every_deployment_timeout_covers_its_worst_case_rollout(results, stack):
    """What a policy can check from the manifest and the options alone."""
    deployments = by_type(results[stack], DEPLOYMENT)
    assert deployments
    for d in deployments:
        annotations = d.inputs["metadata"]["annotations"]
        ready = int(annotations["platform.gpu/ready-within-seconds"])
        steps = int(annotations["platform.gpu/rollout-steps"])
        surge = d.inputs["spec"]["strategy"]["rollingUpdate"]["maxSurge"]
        assert surge == MAX_SURGE_REPLICAS == vllm.MAX_SURGE
        assert steps >= d.inputs["spec"]["replicas"] / surge
        timeouts = d.options["customTimeouts"]
        assert int(timeouts["create"].removesuffix("m")) * 60 >= ready
        assert int(timeouts["update"].removesuffix("m")) * 60 >= steps * ready
        # Every GPU replica's worst case is beyond pulumi-kubernetes' 10-minute default.
        assert ready > 600


def test_service_and_pre_pull_are_not_awaited():
    cfg = load_with("prod", lambda v: v["modelServices"][0].update(prePull=True))
    result = build(cfg)
    (ds,) = by_type(result, "kubernetes:apps/v1:DaemonSet")
    assert ds.inputs["metadata"]["annotations"] == {"pulumi.com/skipAwait": "true"}
    for svc in by_type(result, "kubernetes:core/v1:Service"):
        if svc.inputs["metadata"]["name"] in ("chat-8b", "reason-70b"):
            assert svc.inputs["metadata"]["annotations"] == {"pulumi.com/skipAwait": "true"}


# --------------------------------------------------------------------------- dependencies


def test_deployments_wait_for_admission_and_scheduling_needs(results):
    prod = results["prod"]
    gpu_operator, kps, keda, karpenter = (_release(prod, n) for n in ("gpu-operator", "kps", "keda", "karpenter"))
    (namespace,) = _urns(prod, "kubernetes:core/v1:Namespace", "inference")
    h100 = (_urns(prod, "kubernetes:karpenter.sh/v1:NodePool", "h100-")
            | _urns(prod, "kubernetes:karpenter.k8s.aws/v1:EC2NodeClass", "h100"))
    l40s = _urns(prod, "kubernetes:karpenter.sh/v1:NodePool", "l40s-")
    (association,) = [r.urn for r in by_type(prod, ASSOCIATION) if r.name == "llm-prod-reason-70b-cache-reader"]
    (sa,) = [r.urn for r in by_type(prod, "kubernetes:core/v1:ServiceAccount") if r.inputs["metadata"]["name"] == "reason-70b"]
    assert len(h100) == 2  # one on-demand NodePool (no spot on h100) and the EC2NodeClass
    for role in ("baseline", "burst"):
        deps = set(_named(prod, DEPLOYMENT, f"reason-70b-{role}").depends_on)
        assert {association, sa, namespace, gpu_operator} | h100 <= deps
        # Nothing it does not need: no other tier, no CRD charts, not the Karpenter release itself.
        assert not deps & ({kps, keda, karpenter} | l40s)


def test_association_waits_for_its_policy(results):
    prod = results["prod"]
    (assoc,) = [r for r in by_type(prod, ASSOCIATION) if r.name == "llm-prod-reason-70b-cache-reader"]
    (policy,) = [r.urn for r in by_type(prod, "aws:iam/rolePolicy:RolePolicy") if r.name == "llm-prod-reason-70b-cache-reader"]
    assert policy in assoc.depends_on


def test_monitoring_and_scaling_objects_wait_only_for_their_crds(results):
    prod = results["prod"]
    kps, keda, karpenter, gpu_operator = (_release(prod, n) for n in ("kps", "keda", "karpenter", "gpu-operator"))
    (namespace,) = _urns(prod, "kubernetes:core/v1:Namespace", "inference")
    pools = _urns(prod, "kubernetes:karpenter.sh/v1:NodePool")
    for kind in ("ServiceMonitor", "PrometheusRule"):
        for r in by_type(prod, f"kubernetes:monitoring.coreos.com/v1:{kind}"):
            # The platform's own (Karpenter, KEDA, platform alerts) live in the monitoring namespace.
            own_namespace = {namespace} if r.inputs["metadata"]["namespace"] == "inference" else set()
            assert set(r.depends_on) == {kps, *own_namespace}, r.name
    burst = _named(prod, DEPLOYMENT, "chat-8b-burst").urn
    (so,) = [r for r in by_type(prod, "kubernetes:keda.sh/v1alpha1:ScaledObject") if r.name.endswith("chat-8b-scaler")]
    # kps comes in through the trigger's Prometheus URL (an output of the Monitoring release).
    assert set(so.depends_on) == {keda, namespace, burst, kps}
    for r in by_type(prod, "kubernetes:core/v1:Service") + by_type(prod, "kubernetes:policy/v1:PodDisruptionBudget"):
        if r.inputs["metadata"]["namespace"] == "inference":
            assert set(r.depends_on) == {namespace}, r.name
    assert not any({karpenter, gpu_operator, *pools} & set(r.depends_on)
                   for r in by_type(prod, "kubernetes:monitoring.coreos.com/v1:ServiceMonitor"))


def test_scaled_job_waits_for_identity_node_pools_gpu_operator_and_keda(results):
    staging = results["staging"]
    keda, gpu_operator, kps = (_release(staging, n) for n in ("keda", "gpu-operator", "kps"))
    (job,) = by_type(staging, "kubernetes:keda.sh/v1alpha1:ScaledJob")
    (association,) = [r.urn for r in by_type(staging, ASSOCIATION) if r.name.endswith("-embed-cache-reader")]
    l40s = (_urns(staging, "kubernetes:karpenter.sh/v1:NodePool", "l40s-")
            | _urns(staging, "kubernetes:karpenter.k8s.aws/v1:EC2NodeClass", "l40s"))
    deps = set(job.depends_on)
    assert {keda, gpu_operator, association} | l40s <= deps
    assert kps not in deps


# --------------------------------------------------------------------------- pre-pull labels, dtype


def test_service_selector_matches_no_pre_pull_pod():
    cfg = load_with("prod", lambda v: [s.update(prePull=True) for s in v["modelServices"]])
    result = build(cfg)
    selectors = [s.inputs["spec"]["selector"] for s in by_type(result, "kubernetes:core/v1:Service")
                 if "selector" in s.inputs["spec"]]
    pods = [d.inputs["spec"]["template"]["metadata"]["labels"] for d in by_type(result, "kubernetes:apps/v1:DaemonSet")]
    assert len(pods) == 2 and selectors
    for sel in selectors:
        for labels in pods:
            assert not sel.items() <= labels.items(), (sel, labels)
    assert pods[0] == {"app.kubernetes.io/name": "vllm-pre-pull", "app.kubernetes.io/instance": "chat-8b",
                       "platform.gpu/role": "pre-pull"}


def _args(result, name):
    (c,) = _named(result, DEPLOYMENT, name).inputs["spec"]["template"]["spec"]["containers"]
    return c["args"]


def test_dtype_reaches_vllm(results):
    args = _args(results["prod"], "reason-70b-baseline")
    assert args[args.index("--dtype") + 1] == "bfloat16"
    fp16 = build(load_with("prod", lambda v: v["modelServices"][0]["model"].update(dtype="float16")))
    args = _args(fp16, "chat-8b-baseline")
    assert args[args.index("--dtype") + 1] == "float16"


def test_quantized_weights_leave_the_method_to_the_checkpoint():
    fp8 = build(load_with("prod", lambda v: v["modelServices"][0]["model"].update(dtype="fp8")))
    args = _args(fp8, "chat-8b-baseline")
    assert args[args.index("--dtype") + 1] == "auto"
    assert "--quantization" not in args


def test_burst_without_fallback_requires_spot():
    result = build(load_with("prod", lambda v: v["modelServices"][0].update(burstFallback="none")))
    affinity = _named(result, DEPLOYMENT, "chat-8b-burst").inputs["spec"]["template"]["spec"]["affinity"]["nodeAffinity"]
    assert "preferredDuringSchedulingIgnoredDuringExecution" not in affinity
    terms = affinity["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
    assert terms == [{"matchExpressions": [{"key": "platform.gpu/tier", "operator": "In", "values": ["l40s"]},
                                           {"key": "karpenter.sh/capacity-type", "operator": "In", "values": ["spot"]}]}]
