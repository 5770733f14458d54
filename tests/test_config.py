"""Config models: the stacks load, and malformed configs fail with one readable line each."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import pytest
from pydantic import ValidationError

from components.config import (
    ConfigError,
    GpuTier,
    ModelServiceConfig,
    OnDemandGpuLimit,
    StackConfig,
    check_service_on_tier,
    load_model,
    load_stack_config,
    stack_file_schema,
)
from tests.conftest import REPO, STACKS, assert_config_rejected, load, load_plain_prod, load_with, stack_values


@pytest.mark.parametrize("stack", STACKS)
def test_stacks_load(stack):
    cfg = load(stack)
    assert isinstance(cfg, StackConfig)
    assert cfg.environment == stack
    assert cfg.model_services, "every stack serves at least one model"


def test_defaults_are_filled_once_in_the_model():
    cfg = load("dev")
    svc = cfg.model_services[0]
    assert svc.namespace == "inference"
    assert svc.drain.pre_stop_seconds == 15
    assert svc.drain.termination_grace_seconds == 15 + 60 + 10
    assert cfg.gpu_tiers[0].expire_after == "720h"
    assert cfg.addons.monitoring.retention == "15d"


def test_config_is_frozen():
    cfg = load("dev")
    with pytest.raises(ValidationError, match="frozen"):
        cfg.environment = "prod"  # type: ignore[misc]


def test_on_demand_limit_is_derived_from_services():
    cfg = load_plain_prod()
    # chat-8b (1 GPU, 2..8): 2 baseline, 6 spot burst that may fall back to on-demand, one surge
    # pod each for the baseline and burst Deployments, one g6e node (1 GPU) for replacement, and
    # the stack's headroomGpus 1.
    assert cfg.on_demand_gpu_terms("l40s") == OnDemandGpuLimit(
        baseline=2, canary=0, burst_on_demand=0, burst_fallback=6, surge=2, batch=0, packing=0, replacement=1,
        headroom=1)
    assert cfg.on_demand_gpu_limit("l40s") == 12
    # reason-70b (TP 4, 4..5, burst on-demand): 16 baseline + 4 burst + 8 surge GPUs = 28 GPUs of
    # pods in whole p5.48xlarge (two replicas each): 32, plus one p5 (8 GPUs) so drift can
    # replace a node while all are in use: five nodes.
    assert cfg.on_demand_gpu_terms("h100") == OnDemandGpuLimit(
        baseline=16, canary=0, burst_on_demand=4, burst_fallback=0, surge=8, batch=0, packing=4, replacement=8,
        headroom=0)
    assert cfg.on_demand_gpu_limit("h100") == 40


def test_on_demand_limit_leaves_room_for_a_baseline_rollout_in_staging():
    """Staging's limit used to equal its one baseline GPU: a surge pod stayed Pending forever."""
    cfg = load("staging")
    terms = cfg.on_demand_gpu_terms("l40s")
    # 1 baseline, 2 fallback burst, 2 surge (baseline, burst), 2 GPUs of the embed batch worker
    # (spotPreferred, so it may land on on-demand), one g6e node, and the capacity buffer's one
    # warm g6e node (one chat replica's worth).
    assert (terms.baseline, terms.burst_fallback, terms.surge, terms.batch, terms.replacement, terms.buffer) == (
        1, 2, 2, 2, 1, 1)
    assert cfg.on_demand_gpu_limit("l40s") == 9
    assert cfg.on_demand_gpu_limit("l40s") > cfg.baseline_gpus("l40s") + 1


def test_burst_fallback_none_takes_the_burst_out_of_the_on_demand_limit():
    cfg = load_plain_prod(_set("modelServices.0.burstFallback", "none"))
    terms = cfg.on_demand_gpu_terms("l40s")
    # No fallback: no burst GPUs, and the burst Deployment no longer surges on on-demand.
    assert (terms.burst_fallback, terms.surge) == (0, 1)
    assert cfg.on_demand_gpu_limit("l40s") == 2 + 1 + 1 + 1


def test_packing_rounds_to_whole_nodes():
    # reason-70b at 3..5: 3 + 2 burst + 2 surge = 7 replicas of 4 GPUs need four p5.48xlarge (32
    # GPUs) for 28 GPUs of pods.
    cfg = load_with("prod", lambda v: (_set("modelServices.1.scaling.maxReplicas", 5)(v),
                                       _set("modelServices.1.scaling.minReplicas", 3)(v)))
    terms = cfg.on_demand_gpu_terms("h100")
    assert (terms.baseline, terms.burst_on_demand, terms.surge, terms.packing) == (12, 8, 8, 4)
    assert terms.total == 40


def test_on_demand_override_wins_over_the_terms():
    cfg = load_plain_prod(_set("gpuTiers.1.onDemand.gpuLimit", 48))
    assert cfg.on_demand_gpu_terms("h100").computed == 40
    assert cfg.on_demand_gpu_limit("h100") == 48


def test_business_hours_freeze_with_keep_empty_nodes_is_accepted():
    def mutate(values: dict) -> None:
        budget = values["gpuTiers"][0]["disruptionBudgets"][1]
        del budget["reasons"]
        budget["keepEmptyNodes"] = True

    cfg = load_with("prod", mutate)
    assert cfg.gpu_tiers[0].disruption_budgets[1].reasons == ()


def _set(path: str, value: Any) -> Callable[[dict], None]:
    """A mutation that sets a dotted/indexed path, e.g. 'modelServices.0.scaling.maxReplicas'."""

    def mutate(values: dict) -> None:
        *head, last = path.split(".")
        node: Any = values
        for part in head:
            node = node[int(part)] if part.isdigit() else node.setdefault(part, {})
        if last.isdigit():
            node[int(last)] = value
        else:
            node[last] = value

    return mutate


def _delete(path: str) -> Callable[[dict], None]:
    def mutate(values: dict) -> None:
        *head, last = path.split(".")
        node: Any = values
        for part in head:
            node = node[int(part)] if part.isdigit() else node[part]
        del node[last]

    return mutate


BAD: list[tuple[str, str, Callable[[dict], None], list[str]]] = [
    ("typo-top-level", "dev", _set("modelService", []),
     ["modelService: unknown key", "did you mean modelServices?"]),
    ("typo-nested", "dev", _set("modelServices.0.scaling.maxReplica", 3),
     ["modelServices[0].scaling.maxReplica: unknown key", "maxReplicas"]),
    ("max-below-min", "prod", _set("modelServices.0.scaling.maxReplicas", 1),
     ["modelServices[0].scaling.maxReplicas: 1 is below minReplicas 2"]),
    ("max-zero", "staging", _set("modelServices.0.scaling.maxReplicas", 0),
     ["modelServices[0].scaling.maxReplicas:", "greater than or equal to 1", "(got 0)"]),
    ("environment-enum", "dev", _set("environment", "production"),
     ["environment:", "'dev', 'staging' or 'prod'", "'production'"]),
    ("missing-cluster", "dev", _delete("cluster"), ["cluster: required key is missing"]),
    ("cluster-name-dns", "dev", _set("cluster.name", "LLM_Dev"), ["cluster.name:", "'LLM_Dev'"]),
    ("k8s-version", "dev", _set("cluster.kubernetesVersion", "1.29"), ["cluster.kubernetesVersion:", "'1.29'", "1.35"]),
    ("nodepool-weight", "dev", _set("gpuTiers.0.spot.weight", 0),
     ["gpuTiers[0].spot.weight:", "greater than or equal to 1", "(got 0)"]),
    ("nodepool-weight-high", "dev", _set("gpuTiers.0.onDemand.weight", 101),
     ["gpuTiers[0].onDemand.weight:", "less than or equal to 100"]),
    ("expire-after-days", "dev", _set("gpuTiers.0.expireAfter", "30d"), ["gpuTiers[0].expireAfter:", "'30d'"]),
    ("consolidate-too-fast", "dev", _set("gpuTiers.0.consolidateAfter", "1m"),
     ["gpuTiers[0].consolidateAfter: 1m is under 5m"]),
    ("spot-weight-above-od", "dev", _set("gpuTiers.0.spot.weight", 100),
     ["gpuTiers[0].spot.weight: 100 must be below onDemand.weight 100"]),
    ("unknown-instance", "dev", _set("gpuTiers.0.instanceTypes", ["g9.mega"]),
     ["gpuTiers[0].instanceTypes[0]: 'g9.mega' is not in the catalog"]),
    ("instance-wrong-gpu", "dev", _set("gpuTiers.0.instanceTypes", ["g6e.xlarge"]),
     ["gpuTiers[0].instanceTypes[0]: g6e.xlarge has l40s GPUs, not l4"]),
    ("unknown-tier", "dev", _set("modelServices.0.tier", "h200"),
     ["modelServices[0].tier: 'h200' is not a gpuTiers name; defined: l4"]),
    ("model-too-big", "dev", _set("modelServices.0.model.parametersBillion", 70),
     ["modelServices[0].model: 70B at bfloat16 needs ~130 GiB", "l4 GPU offers", "use a tier with larger GPUs"]),
    ("tp-beyond-node", "dev", _set("modelServices.0.tensorParallelSize", 4),
     ["modelServices[0].tensorParallelSize: 4 exceeds the 1 GPUs of the largest l4 instance"]),
    ("spot-drain-too-long", "staging", _set("modelServices.0.drain", {"shutdownTimeoutSeconds": 110}),
     ["modelServices[0].drain: preStop 15 + shutdownTimeout 110 + margin 10 = 135 s does not fit the 120 s spot notice"]),
    ("shutdown-below-p99", "staging", _set("modelServices.0.drain", {"shutdownTimeoutSeconds": 30}),
     ["modelServices[0].drain.shutdownTimeoutSeconds: 30 is below 2 x slo.p99GenerationSeconds = 60"]),
    ("scale-to-zero-no-keepalive", "dev", _set("modelServices.0.scaling.keepAlive", False),
     ["modelServices[0].scaling.keepAlive: scale to zero without a keep-alive trigger"]),
    ("scale-to-zero-in-prod", "prod", _set("modelServices.0.scaling", {"minReplicas": 0, "maxReplicas": 4, "scaleToZero": True, "activeHours": {}}),
     ["modelServices[0].scaling.scaleToZero: prod forbids scale to zero"]),
    ("min-zero-implicit", "staging", _set("modelServices.0.scaling.minReplicas", 0),
     ["modelServices[0].scaling.minReplicas: 0 needs scaleToZero: true"]),
    ("service-named-vllm", "dev", _set("modelServices.0.name", "vllm"), ["modelServices[0].name:", "VLLM_PORT"]),
    ("duplicate-service", "prod", _set("modelServices.1.name", "chat-8b"),
     ["modelServices[1].name: 'chat-8b' is used twice"]),
    ("prod-open-endpoint", "prod", _set("cluster.endpoint.publicAccessCidrs", ["0.0.0.0/0"]),
     ["cluster.endpoint.publicAccessCidrs: prod refuses a public endpoint open to the internet "
      "(all of IPv4 (0.0.0.0/0 covers 0.0.0.0/0)); list your own CIDRs"]),
    ("prod-endpoint-zero-padded", "prod", _set("cluster.endpoint.publicAccessCidrs", ["0.0.0.0/00"]),
     ["cluster.endpoint.publicAccessCidrs: prod refuses a public endpoint open to the internet "
      "(all of IPv4 (0.0.0.0/00 covers 0.0.0.0/0))"]),
    ("prod-endpoint-two-halves", "prod", _set("cluster.endpoint.publicAccessCidrs", ["0.0.0.0/1", "128.0.0.0/1"]),
     ["cluster.endpoint.publicAccessCidrs: prod refuses a public endpoint open to the internet "
      "(all of IPv4 (0.0.0.0/1, 128.0.0.0/1 together cover 0.0.0.0/0))"]),
    ("prod-endpoint-ipv6", "prod", _set("cluster.endpoint.publicAccessCidrs", ["198.51.100.0/24", "::/0"]),
     ["cluster.endpoint.publicAccessCidrs: prod refuses a public endpoint open to the internet "
      "(all of IPv6 (::/0 covers ::/0))"]),
    ("prod-endpoint-wider-than-a-slash-8", "prod", _set("cluster.endpoint.publicAccessCidrs", ["0.0.0.0/4"]),
     ["cluster.endpoint.publicAccessCidrs: prod refuses a public endpoint open to the internet "
      "(268,435,456 IPv4 addresses (0.0.0.0/4), more than one /8)"]),
    ("prod-endpoint-no-cidrs", "prod", _delete("cluster.endpoint.publicAccessCidrs"),
     ["cluster.endpoint.publicAccessCidrs: prod refuses a public endpoint open to the internet "
      "(no publicAccessCidrs means 0.0.0.0/0)"]),
    ("prod-latest-ami", "prod", _set("gpuTiers.1.amiAlias", "al2023@latest"),
     ["gpuTiers[1].amiAlias: al2023@latest: prod pins an AMI version"]),
    ("bad-cidr", "dev", _set("cluster.network.cidr", "10.0.0.0/8"), ["cluster.network.cidr:", "/16 to /20"]),
    ("bad-public-cidr", "staging", _set("cluster.endpoint.publicAccessCidrs", ["203.0.113.0/33"]),
     ["cluster.endpoint.publicAccessCidrs[0]: '203.0.113.0/33' is not a CIDR"]),
    ("retention-not-duration", "dev", _set("addons", {"monitoring": {"retention": "15 days"}}),
     ["addons.monitoring.retention:", "'15 days'"]),
    ("mig-on-l40s", "staging", _set("gpuTiers.0.mig", {"profiles": {"1g.10gb": 7}}),
     ["gpuTiers[0].mig: l40s does not support MIG"]),
    ("mig-single-two-sizes", "prod", _set("gpuTiers.1.mig", {"strategy": "single", "profiles": {"1g.10gb": 4, "2g.20gb": 1}}),
     ["gpuTiers[1].mig.profiles: strategy single allows one profile size"]),
    ("mig-and-time-slicing", "prod",
     lambda v: (_set("gpuTiers.1.mig", {"profiles": {"1g.10gb": 7}})(v), _set("gpuTiers.1.timeSlicing", {"replicas": 4})(v)),
     ["gpuTiers[1].timeSlicing: time-slicing and MIG cannot share a tier"]),
    ("baseline-on-spot-only-tier", "staging", _set("gpuTiers.0.onDemand", {"enabled": False}),
     ["modelServices[0].tier: l40s has no on-demand pool", "never depend on spot"]),
    ("gpu-limit-below-baseline", "prod", _set("gpuTiers.0.onDemand.gpuLimit", 1),
     ["gpuTiers[0].onDemand.gpuLimit: 1 is below the 2 GPUs the services' baselines need"]),
    ("batch-list-length-zero", "staging", _set("batchWorkers.0.listLength", 0),
     ["batchWorkers[0].listLength:", "greater than or equal to 1", "(got 0)"]),
    ("batch-missing-image", "staging", _delete("batchWorkers.0.image"), ["batchWorkers[0].image: required key is missing"]),
    ("batch-untagged-image", "staging", _set("batchWorkers.0.image", "ghcr.io/example/embed-worker"),
     ["batchWorkers[0].image:", "has no tag"]),
    ("batch-max-below-min", "staging", _set("batchWorkers.0.maxReplicas", 0),
     ["batchWorkers[0].maxReplicas:", "greater than or equal to 1"]),
    ("scale-to-zero-no-wake", "dev", _delete("modelServices.0.scaling.activeHours"),
     ["modelServices[0].scaling.scaleToZero: nothing could wake the service at zero replicas"]),
    ("canary-share", "prod", _set("modelServices.0.canary", {"replicas": 1}),
     ["modelServices[0].canary.replicas: 1 canary replicas next to 2 baseline replicas take 33% of traffic; the cap is 25%"]),
    ("pre-pull-empty-dir", "prod", lambda v: v["modelServices"][0].update(prePull=True, cache={"medium": "emptyDir"}),
     ["modelServices[0].prePull: warms a node cache, so it needs cache.medium hostPath"]),
    ("hpa-scale-to-zero", "dev", _set("modelServices.0.scaling.mode", "hpa"),
     ["modelServices[0].scaling.mode: hpa cannot scale to zero"]),
    ("replica-does-not-fit", "dev", _set("gpuTiers.0.instanceTypes", ["g6.xlarge"]),
     ["modelServices[0].tier: no l4 instance type fits one replica (1 GPU, 4 vCPU, 22 GiB"]),
    ("s3-source-without-prefix", "dev", _set("modelServices.0.model.source", "s3://bucket-only"),
     ["modelServices[0].model.source:", "'s3://bucket-only'"]),
    ("revision-on-s3", "dev", _set("modelServices.0.model.revision", "v2"),
     ["modelServices[0].model.revision: applies to hf:// sources; for s3:// put the version in the prefix"]),
    ("kms-key-on-hf", "dev", lambda v: v["modelServices"][0]["model"].update(
        source="hf://org/m", kmsKeyArn="arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"),
     ["modelServices[0].model.kmsKeyArn: applies to s3:// sources only"]),
    ("kms-key-not-an-arn", "dev", _set("modelServices.0.model.kmsKeyArn", "alias/models"),
     ["modelServices[0].model.kmsKeyArn:", "'alias/models'"]),
    ("batch-activation-never-reached", "staging", _set("batchWorkers.0.activationListLength", 40),
     ["batchWorkers[0].activationListLength: 40 would never let a job start"]),
    ("batch-min-above-zero", "staging", _set("batchWorkers.0.minReplicas", 1),
     ["batchWorkers[0].minReplicas:", "less than or equal to 0"]),
    ("wrong-type", "dev", _set("modelServices.0.maxNumSeqs", "lots"), ["modelServices[0].maxNumSeqs:", "'lots'"]),
    ("endpoint-unreachable", "dev", _set("cluster.endpoint", {"publicAccess": False, "privateAccess": False}),
     ["cluster.endpoint.publicAccess: false with privateAccess false leaves no way to reach the API server"]),
    ("cidrs-without-public", "staging", _set("cluster.endpoint", {"publicAccess": False, "publicAccessCidrs": ["203.0.113.0/24"]}),
     ["cluster.endpoint.publicAccessCidrs: set only when publicAccess is true"]),
    ("system-desired-below-min", "dev", _set("cluster.systemNodes", {"minSize": 3, "desiredSize": 2, "maxSize": 4}),
     ["cluster.systemNodes.desiredSize: 2 must lie between minSize 3 and maxSize 4"]),
    ("budget-schedule-alone", "dev", _set("gpuTiers.0.disruptionBudgets", [{"nodes": "1", "schedule": "0 9 * * *"}]),
     ["gpuTiers[0].disruptionBudgets[0].schedule: schedule and duration must be set together"]),
    ("tier-without-pools", "dev", lambda v: v["gpuTiers"][0].update(onDemand={"enabled": False}, spot={"enabled": False}),
     ["gpuTiers[0].onDemand.enabled: a tier needs at least one of onDemand and spot"]),
    ("mig-profile-name", "prod", _set("gpuTiers.1.mig", {"profiles": {"9g.10gb": 1}}),
     ["gpuTiers[1].mig.profiles.9g.10gb: is not a MIG profile such as 1g.10gb or 3g.40gb"]),
    ("mig-profile-count", "prod", _set("gpuTiers.1.mig", {"profiles": {"1g.10gb": 9}}),
     ["gpuTiers[1].mig.profiles.1g.10gb: 9 instances per GPU; allowed 1..7"]),
    ("mig-strategies-disagree", "prod",
     lambda v: (v["gpuTiers"][1].update(mig={"strategy": "single", "profiles": {"1g.10gb": 7}}),
                v["gpuTiers"].append({**copy.deepcopy(v["gpuTiers"][1]), "name": "h100b",
                                      "mig": {"strategy": "mixed", "profiles": {"1g.10gb": 7}}})),
     ["gpuTiers[1].mig.strategy: MIG tiers disagree on strategy"]),
    ("scale-to-zero-with-baseline", "staging", _set("modelServices.0.scaling.scaleToZero", True),
     ["modelServices[0].scaling.scaleToZero: true needs minReplicas 0, got 1"]),
    ("tp-not-power-of-two", "prod", _set("modelServices.1.tensorParallelSize", 3),
     ["modelServices[1].tensorParallelSize: 3; allowed 1, 2, 4 or 8"]),
    ("hpa-without-burst", "prod", lambda v: v["modelServices"][0]["scaling"].update(mode="hpa", maxReplicas=2, minReplicas=2),
     ["modelServices[0].scaling.maxReplicas: hpa mode scales burst replicas above the baseline"]),
    ("model-needs-tensor-parallel", "prod", _set("modelServices.1.tensorParallelSize", 1),
     ["modelServices[1].model: 70B at bfloat16 needs ~130 GiB, 130.4 GiB per GPU at tensorParallelSize 1; "
      "a h100 GPU offers 80.0 GiB x 0.9 minus 2 GiB KV cache = 70.0 GiB; use tensorParallelSize >= 2"]),
    ("burst-on-missing-spot-pool", "prod", _set("gpuTiers.0.spot", {"enabled": False}),
     ["modelServices[0].burstCapacity: spot, but tier l40s has no spot pool; set onDemand"]),
    ("batch-gpus-beyond-node", "staging", _set("batchWorkers.0.gpusPerJob", 8),
     ["batchWorkers[0].gpusPerJob: 8 exceeds the 1 GPUs of the largest l40s instance"]),
    ("batch-latest-image", "staging", _set("batchWorkers.0.image", "ghcr.io/x/y:latest"),
     ["batchWorkers[0].image: 'ghcr.io/x/y:latest' uses :latest; pin a version"]),
    ("cidr-not-a-cidr", "dev", _set("cluster.network.cidr", "nope"),
     ["cluster.network.cidr: 'nope' is not an IPv4 CIDR such as 10.0.0.0/16"]),
    # Dangerous GPU configurations (issue 15, item 3).
    ("mig-slice-smaller-than-share", "prod", _set("gpuTiers.1.mig", {"profiles": {"1g.10gb": 7}}),
     ["modelServices[1].tier: h100 partitions each GPU into 1g.10gb MIG slices and a replica gets 4 of them: "
      "70B at bfloat16 needs 32.6 GiB per slice, but a slice offers 10 GiB x 0.9 minus 2 GiB KV cache = 7.0 GiB; "
      "use a tier with a larger MIG profile or without MIG"]),
    ("mig-tensor-parallel", "prod", _set("gpuTiers.1.mig", {"profiles": {"7g.80gb": 1}}),
     ["modelServices[1].tensorParallelSize: 4 on MIG tier h100: a CUDA process sees only one MIG slice"]),
    ("mig-mixed-strategy", "prod", _set("gpuTiers.1.mig", {"strategy": "mixed", "profiles": {"7g.80gb": 1}}),
     ["modelServices[1].tier: h100 uses MIG strategy mixed, which advertises nvidia.com/mig-<profile> resources",
      "use mig.strategy single"]),
    ("time-slicing-memory-oversubscribed", "staging", _set("gpuTiers.0.timeSlicing", {"replicas": 2}),
     ["modelServices[0].gpuMemoryUtilization: 0.9 x 2 time-slicing replicas of tier l40s = 1.80 of one GPU's memory",
      "the second one fails to start; set gpuMemoryUtilization <= 0.5"]),
    ("time-slicing-four-shares", "staging", _set("gpuTiers.0.timeSlicing", {"replicas": 4}),
     ["modelServices[0].gpuMemoryUtilization: 0.9 x 4 time-slicing replicas of tier l40s = 3.60",
      "it would need gpuMemoryUtilization <= 0.25, below the 0.5 floor"]),
    ("time-slicing-tensor-parallel", "prod",
     lambda v: (v["gpuTiers"][1].update(timeSlicing={"replicas": 2}), v["modelServices"][1].update(gpuMemoryUtilization=0.5)),
     ["modelServices[1].tensorParallelSize: 4 on time-sliced tier h100: the device plugin may give a pod several "
      "shares of the same GPU"]),
    ("empty-dir-smaller-than-weights", "prod", _set("modelServices.1.cache", {"medium": "emptyDir", "sizeGib": 100}),
     ["modelServices[1].cache.sizeGib: 100 GiB cannot hold the model (70B at bfloat16, ~130 GiB of weights, "
      "144 GiB with a 10% margin)", "set sizeGib >= 144"]),
    ("empty-dir-smaller-than-canary-weights", "prod",
     lambda v: v["modelServices"][0].update(cache={"medium": "emptyDir", "sizeGib": 20}, canary={"model": {
         "id": "x/y", "source": "s3://llm-prod-models/x/y", "parametersBillion": 14}}, scaling={
         "minReplicas": 3, "maxReplicas": 8}),
     ["modelServices[0].cache.sizeGib: 20 GiB cannot hold the canary's model (14B at bfloat16, ~26 GiB of weights, "
      "29 GiB with a 10% margin)"]),
    ("extra-args-override-generated-flag", "dev",
     _set("modelServices.0.extraArgs", ["--enable-prefix-caching", "--max-model-len=4096"]),
     ["modelServices[0].extraArgs[1]: '--max-model-len=4096' sets --max-model-len, which the platform generates "
      "from maxModelLen; set that instead"]),
    ("canary-extra-args-short-alias", "prod", _set("modelServices.1.canary", {"extraArgs": ["-tp", "8"]}),
     ["modelServices[1].canary.extraArgs[0]: '-tp' sets --tensor-parallel-size, which the platform generates from "
      "tensorParallelSize"]),
    ("expire-after-below-cold-start", "prod", _set("gpuTiers.1.expireAfter", "10m"),
     ["gpuTiers[1].expireAfter: 10m (600 s) is shorter than a cold start of reason-70b on this tier: node ready "
      "~180 s + image pull ~121 s + model download and load (worst case) 1317 s = 1618 s"]),
    ("max-model-len-beyond-kv-cache", "dev", _set("modelServices.0.maxModelLen", 65536),
     ["modelServices[0].maxModelLen: 65536 tokens do not fit the KV cache of one replica: 8B takes ~128 KiB per "
      "token", "leave room for 26339 tokens", "lower maxModelLen to <= 26339"]),
    ("batch-cpu-beyond-node", "staging", _set("batchWorkers.0.cpuPerJob", 16),
     ["batchWorkers[0].cpuPerJob: 16 does not fit tier l40s (g6e.xlarge, g6e.2xlarge): at most 7 vCPU"]),
    ("batch-memory-beyond-node", "staging", _set("batchWorkers.0.memoryGibPerJob", 100),
     ["batchWorkers[0].memoryGibPerJob: 100 does not fit tier l40s (g6e.xlarge, g6e.2xlarge): at most 56 GiB"]),
    ("empty-dir-beyond-nvme", "dev", _set("modelServices.0.cache", {"medium": "emptyDir", "sizeGib": 500}),
     ["modelServices[0].cache.sizeGib: 500 GiB of ephemeral-storage fits no l4 node: g6.2xlarge, the largest that "
      "fits a replica, has 450 GB of NVMe, ~376 GiB after kubelet's eviction reserve"]),
    ("model-source-dot-dot", "dev", _set("modelServices.0.model.source", "s3://llm-dev-models/meta-llama/../secrets"),
     ["modelServices[0].model.source: 's3://llm-dev-models/meta-llama/../secrets' has a '..' segment"]),
    ("service-in-kube-system", "dev", _set("modelServices.0.namespace", "kube-system"),
     ["modelServices[0].namespace: 'kube-system' is reserved (default, kube-node-lease, kube-public, kube-system, "
      "gpu-operator, keda, monitoring)"]),
    ("batch-in-monitoring", "staging", _set("batchWorkers.0.namespace", "monitoring"),
     ["batchWorkers[0].namespace: 'monitoring' is reserved"]),
    ("freeze-without-reasons", "prod", _set("gpuTiers.0.disruptionBudgets.1.reasons", []),
     ["gpuTiers[0].disruptionBudgets[1].reasons: a scheduled nodes: 0 budget without reasons applies to every "
      "reason, Empty included: idle GPU nodes stay up while it applies; list the reasons it freezes "
      "(e.g. [Underutilized, Drifted]) or set keepEmptyNodes: true"]),
    ("keep-empty-nodes-on-a-budget-with-reasons", "prod", _set("gpuTiers.0.disruptionBudgets.1.keepEmptyNodes", True),
     ["gpuTiers[0].disruptionBudgets[1].keepEmptyNodes: only acknowledges a scheduled nodes: 0 budget without "
      "reasons; remove it"]),
    ("node-grace-below-pod-grace", "prod", _set("gpuTiers.1.terminationGracePeriod", "1m"),
     ["gpuTiers[1].terminationGracePeriod: 1m does not exceed service reason-70b's pod grace of 115 s "
      "(preStop + shutdownTimeout + margin); raise it"]),
    ("burst-fallback-enum", "prod", _set("modelServices.0.burstFallback", "spot"),
     ["modelServices[0].burstFallback:", "'onDemand' or 'none'"]),
    ("typo-in-list-item", "dev", _set("gpuTiers.0.spot.wieght", 3),
     ["gpuTiers[0].spot.wieght: unknown key; allowed keys: enabled, gpuLimit, weight; did you mean weight?"]),
]


@pytest.mark.parametrize("stack,mutate,expected", [(s, m, e) for _, s, m, e in BAD], ids=[b[0] for b in BAD])
def test_malformed_config_is_rejected_with_a_clear_message(stack, mutate, expected):
    assert_config_rejected(stack, mutate, expected)


def test_there_are_at_least_twenty_distinct_malformed_cases():
    assert len({b[0] for b in BAD}) >= 20


def test_missing_region():
    values, _ = stack_values("dev")
    with pytest.raises(ConfigError, match=r"aws:region: required"):
        load_stack_config(values, None)


def test_bad_region():
    values, _ = stack_values("dev")
    with pytest.raises(ConfigError, match=r"aws:region: .*'mars-1'"):
        load_stack_config(values, "mars-1")


def test_schema_file_is_in_sync_with_the_models():
    on_disk = json.loads((REPO / "stacks" / "schema.json").read_text())
    assert on_disk == stack_file_schema(), "run `make schema` and commit stacks/schema.json"


@pytest.mark.parametrize("stack", STACKS)
def test_stack_files_validate_against_the_exported_schema(stack):
    import jsonschema
    import yaml

    doc = yaml.safe_load((REPO / "stacks" / f"Pulumi.{stack}.yaml").read_text())
    jsonschema.validate(doc, stack_file_schema())


def test_schema_rejects_an_unknown_namespace_key():
    import jsonschema

    doc = {"config": {"aws:region": "us-east-1", "gpu-platform:environment": "dev",
                      "gpu-platform:cluster": {"name": "x"}, "gpu-platform:gpuTiers": [], "gpu-platform:typo": 1}}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(doc, stack_file_schema())


def test_rule_errors_carry_their_path_as_data():
    tier = stack_values("dev")[0]["gpuTiers"][0]
    with pytest.raises(ValidationError) as info:
        GpuTier.model_validate({**tier, "spot": {"weight": 100}})
    [err] = info.value.errors()
    # The model validator runs at the tier's root; the key it blames travels in the context.
    assert err["loc"] == ()
    assert err["ctx"]["path"] == ("spot", "weight")
    assert err["msg"] == "100 must be below onDemand.weight 100"


def _prod_service_and_tier() -> tuple[dict, dict]:
    values, _ = stack_values("prod")
    return values["modelServices"][1], values["gpuTiers"][1]


def test_load_model_joins_the_prefix_and_the_rule_path():
    service, tier = _prod_service_and_tier()
    with pytest.raises(ConfigError) as info:
        load_model(ModelServiceConfig, {**service, "drain": {"shutdownTimeoutSeconds": 5}}, "service")
    assert info.value.messages == ["service.drain.shutdownTimeoutSeconds: 5 is below 2 x slo.p99GenerationSeconds = 90"]
    with pytest.raises(ConfigError) as info:
        load_model(GpuTier, {**tier, "instanceTypes": ["g6e.xlarge"]}, "platform gpuTierSpecs")
    assert info.value.messages == ["platform gpuTierSpecs.instanceTypes[0]: g6e.xlarge has l40s GPUs, not h100"]
    with pytest.raises(ConfigError) as info:
        load_model(ModelServiceConfig, 5, "service")
    assert info.value.messages == ["service: Input should be a valid dictionary or instance of ModelServiceConfig (got 5)"]


def test_load_model_lists_the_keys_of_the_model_it_loads():
    service, _ = _prod_service_and_tier()
    with pytest.raises(ConfigError) as info:
        load_model(ModelServiceConfig, {**service, "tensorParallel": 4}, "service")
    [line] = info.value.messages
    assert line.startswith("service.tensorParallel: unknown key; allowed keys: apiKeySecret, burstCapacity, burstFallback, cache, canary, compileCache, consumerNamespaces, ")
    assert line.endswith("; did you mean tensorParallelSize?")
    assert "gpuTiers" not in line


def test_check_service_on_tier_names_the_service_path():
    service, tier = _prod_service_and_tier()
    svc = load_model(ModelServiceConfig, {**service, "tensorParallelSize": 1}, "service")
    with pytest.raises(ConfigError) as info:
        check_service_on_tier("service", svc, load_model(GpuTier, tier, "tier"), "prod")
    assert info.value.messages == [
        "service.model: 70B at bfloat16 needs ~130 GiB, 130.4 GiB per GPU at tensorParallelSize 1; a h100 GPU "
        "offers 80.0 GiB x 0.9 minus 2 GiB KV cache = 70.0 GiB; use tensorParallelSize >= 2"]
    check_service_on_tier("service", load_model(ModelServiceConfig, service, "service"),
                          load_model(GpuTier, tier, "tier"), "prod")
