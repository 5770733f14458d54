"""Cold-start levers: config (valid and invalid), render functions, and the Platform's objects."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from components.config.levers import buffer_chunk, buffer_node_gpus
from components.render import buffer, karpenter, loader, node_levers, scaling, vllm
from components.render import cache as cache_render
from tests.conftest import (
    assert_config_rejected,
    build,
    by_type,
    custom_resources,
    load,
    load_plain_prod,
    load_with,
    release,
)


def _set(path: str, value) -> Callable[[dict], None]:
    def mutate(values: dict) -> None:
        node = values
        *head, last = path.split(".")
        for part in head:
            node = node[int(part)] if part.isdigit() else node.setdefault(part, {})
        if value is None:
            node.pop(last, None)
        else:
            node[last] = value
    return mutate


def _all(*mutations: Callable[[dict], None]) -> Callable[[dict], None]:
    def mutate(values: dict) -> None:
        for m in mutations:
            m(values)
    return mutate


# --------------------------------------------------------------------------- config

BAD = [
    ("runai-s3-on-hf", "prod", _all(_set("modelServices.0.model.source", "hf://meta-llama/Llama-3.1-8B-Instruct"),
                                    _set("modelServices.0.loader", {"format": "runaiS3"})),
     ["modelServices[0].loader.format: runaiS3 streams from S3, but 'hf://meta-llama/Llama-3.1-8B-Instruct' is not"]),
    ("concurrency-default-loader", "prod", _set("modelServices.0.loader", {"concurrency": 8}),
     ["modelServices[0].loader.concurrency: applies to the Run:ai streamer (format runaiNvme or runaiS3), not default"]),
    ("fastsafetensors-without-image", "prod", _set("modelServices.0.loader", {"format": "fastsafetensors"}),
     ["modelServices[0].loader.image: fastsafetensors is not installed in the pinned vLLM image"]),
    ("buffer-larger-than-memory", "prod", _set("modelServices.0.loader", {"format": "runaiNvme", "memoryLimitGib": 500}),
     ["modelServices[0].loader.memoryLimitGib: 500 GiB of streamer buffer reaches the replica's memory limit"]),
    ("extra-args-load-format", "prod", _set("modelServices.0.extraArgs", ["--load-format", "dummy"]),
     ["modelServices[0].extraArgs[0]: '--load-format' sets --load-format, which the platform generates from loader.format"]),
    ("loader-format-unknown", "prod", _set("modelServices.0.loader", {"format": "tensorizer"}),
     ["modelServices[0].loader.format", "'default', 'runaiNvme', 'runaiS3' or 'fastsafetensors'"]),
    ("compile-cache-on-emptydir", "prod", _all(_set("modelServices.0.cache", {"medium": "emptyDir", "sizeGib": 100}),
                                               _set("modelServices.0.compileCache", {"persist": True})),
     ["modelServices[0].compileCache.persist: keeps the cache on the node's NVMe hostPath; it needs cache.medium hostPath"]),
    ("predictive-without-rate", "prod", _set("modelServices.0.predictiveScaling", {"enabled": True}),
     ["modelServices[0].predictiveScaling.requestsPerSecondPerReplica: is required when enabled"]),
    ("predictive-window-too-short", "prod", _set("modelServices.0.predictiveScaling", {"rangeSeconds": 120,
                                                                                       "resolutionSeconds": 60}),
     ["modelServices[0].predictiveScaling.rangeSeconds: 120 holds fewer than 4 steps of 60 s"]),
    ("buffer-both-sizes", "staging", _set("gpuTiers.0.capacityBuffer", {"service": "chat", "gpus": 1}),
     ["gpuTiers[0].capacityBuffer.service: set exactly one of service (one replica's worth) and gpus"]),
    ("buffer-unknown-service", "staging", _set("gpuTiers.0.capacityBuffer", {"service": "nope"}),
     ["gpuTiers[0].capacityBuffer.service: 'nope' is not a service on tier l40s; services there: chat"]),
    ("buffer-for-spot-only-burst", "prod", _all(_set("modelServices.0.burstFallback", "none"),
                                                _set("gpuTiers.0.capacityBuffer", {"service": "chat-8b"})),
     ["gpuTiers[0].capacityBuffer.service: chat-8b's burst runs on spot only (burstFallback none)"]),
    ("buffer-too-many-gpus", "staging", _set("gpuTiers.0.capacityBuffer", {"gpus": 4}),
     ["gpuTiers[0].capacityBuffer.gpus: 4 exceeds the 1 GPUs of the largest l40s instance"]),
    ("buffer-mode-unknown", "staging", _set("gpuTiers.0.capacityBuffer.mode", "warmPool"),
     ["gpuTiers[0].capacityBuffer.mode", "'capacityBuffer' or 'placeholderPods'"]),
    ("reservations-empty", "staging", _set("gpuTiers.0.reservations", {}),
     ["gpuTiers[0].reservations.ids: select at least one reservation, by ids or tags"]),
    ("reservation-id-malformed", "staging", _set("gpuTiers.0.reservations", {"ids": ["odcr-1"]}),
     ["gpuTiers[0].reservations.ids[0]", "^cr-[0-9a-z]+$"]),
    ("fast-image-pull-throughput-too-low", "dev", _set("cluster.fastImagePull.rootVolumeThroughputMibps", 100),
     ["cluster.fastImagePull.rootVolumeThroughputMibps", "125"]),
]


@pytest.mark.parametrize("stack,mutate,expected", [(s, m, e) for _, s, m, e in BAD], ids=[b[0] for b in BAD])
def test_bad_lever_config_is_rejected_with_a_clear_message(stack, mutate, expected):
    assert_config_rejected(stack, mutate, expected)


def test_levers_are_off_by_default_and_prod_takes_those_that_paid():
    plain = load_with("prod", _all(*(_set(f"modelServices.{i}.{key}", None) for i in (0, 1)
                                     for key in ("loader", "compileCache", "predictiveScaling")),
                                   _set("cluster.fastImagePull", None)))
    for s in plain.model_services:
        assert (s.loader.format, s.compile_cache.persist, s.predictive_scaling.enabled) == ("default", False, False)
    assert plain.cluster.fast_image_pull.enabled is False
    # prod adopts what the simulator measured to pay on both vendored traces (issue 18; figures in
    # the stack comments): the predictive trigger for both services; reason-70b keeps the S3
    # streamer (it halves the 70B's modelled cold start, which the trace replays do not score:
    # recovery and rollouts); no capacity buffer (it bought nothing for its price), no reservation
    # (the stack cannot name one of yours).
    prod = load("prod")
    assert {s.name: (s.loader.format, s.compile_cache.persist, s.predictive_scaling.enabled)
            for s in prod.model_services} == {"chat-8b": ("default", False, True), "reason-70b": ("runaiS3", False, True)}
    assert all(t.capacity_buffer is None and t.reservations is None for t in prod.gpu_tiers)
    assert prod.cluster.fast_image_pull.enabled is False


def test_buffer_chunk_is_one_replica_of_the_named_service():
    cfg = load("staging")
    chunk = buffer_chunk(cfg, cfg.tier("l40s"))
    chat = cfg.model_services[0]
    assert chunk is not None
    assert (chunk.gpus, chunk.vcpu, chunk.memory_gib, chunk.replicas) == (1, chat.cpu_per_replica,
                                                                          chat.memory_gib_per_replica, 1)
    # Whole nodes count against the limit: two 1-GPU chunks on 4-GPU nodes fill one node.
    assert buffer_node_gpus(chunk, 4) == 4
    assert buffer_node_gpus(None, 4) == 0


def test_gpu_sized_buffer_counts_whole_nodes_in_the_on_demand_limit():
    cfg = load_with("prod", _set("gpuTiers.1.capacityBuffer", {"gpus": 4, "replicas": 3}))
    # p5.48xlarge has 8 GPUs: three 4-GPU chunks need two nodes, 16 GPUs on top of the terms.
    assert cfg.on_demand_gpu_terms("h100").buffer == 16
    assert cfg.on_demand_gpu_limit("h100") == load("prod").on_demand_gpu_limit("h100") + 16


# --------------------------------------------------------------------------- render: the pod


def test_runai_s3_streams_from_the_source_without_the_cache_fill():
    cfg = load("dev")
    svc, tier = cfg.model_services[0], cfg.tier("l4")
    spec = vllm.pod_spec(svc, tier, "burst", region="us-east-1")
    args = spec["containers"][0]["args"]
    assert args[0] == "s3://llm-dev-models/meta-llama/Llama-3.1-8B-Instruct/"
    assert args[args.index("--load-format") + 1] == "runai_streamer"
    assert json.loads(args[args.index("--model-loader-extra-config") + 1]) == {"concurrency": 16}
    # No sync: the owner step and the compile-cache directory only (the compile cache is on).
    assert [c["name"] for c in spec["initContainers"]] == ["model-cache-owner", "compile-cache"]
    env = {e["name"]: e.get("value") for e in spec["containers"][0]["env"]}
    assert env["AWS_REGION"] == "us-east-1"
    assert [v["name"] for v in spec["volumes"]][:1] == ["model-cache"]
    assert cache_render.SCRATCH_VOLUME not in [v["name"] for v in spec["volumes"]]


def test_runai_s3_without_compile_cache_mounts_no_cache():
    cfg = load_with("dev", _set("modelServices.0.compileCache", None))
    spec = vllm.pod_spec(cfg.model_services[0], cfg.tier("l4"), "burst", region="us-east-1")
    assert "initContainers" not in spec or spec["initContainers"] == []
    assert all(v["name"] != cache_render.VOLUME for v in spec["volumes"])
    assert all(m["name"] != cache_render.VOLUME for m in spec["containers"][0]["volumeMounts"])


def test_runai_nvme_reads_the_node_cache():
    cfg = load("staging")
    svc = cfg.model_services[0]
    args = vllm.vllm_args(svc, svc.model, ())
    assert args[0] == "/models/llm-staging-models/meta-llama/Llama-3.1-8B-Instruct"
    assert args[-4:] == ["--load-format", "runai_streamer", "--model-loader-extra-config", '{"concurrency":16}']


def test_streamer_memory_limit_is_in_bytes():
    cfg = load_with("staging", _set("modelServices.0.loader.memoryLimitGib", 2))
    args = loader.load_args(cfg.model_services[0])
    assert json.loads(args[-1]) == {"concurrency": 16, "memory_limit": 2 * 1024**3}


def test_fastsafetensors_uses_its_image_everywhere():
    cfg = load_with("prod", _all(_set("modelServices.0.loader", {"format": "fastsafetensors", "image": "acme/vllm-fst:1"}),
                                 _set("modelServices.0.prePull", True)))
    svc = cfg.model_services[0]
    spec = vllm.pod_spec(svc, cfg.tier(svc.tier), "baseline", region="us-east-1")
    assert spec["containers"][0]["image"] == "acme/vllm-fst:1"
    assert spec["containers"][0]["args"][-2:] == ["--load-format", "fastsafetensors"]
    ds = vllm.pre_pull_daemonset(svc, cfg.tier(svc.tier), "inference", region="us-east-1")
    assert ds["spec"]["template"]["spec"]["initContainers"][0]["image"] == "acme/vllm-fst:1"


def test_default_loader_adds_nothing():
    cfg = load_plain_prod()
    assert loader.load_args(cfg.model_services[0]) == []


def test_compile_cache_key_separates_gpu_image_and_model():
    cfg = load("staging")
    svc, tier = cfg.model_services[0], cfg.tier("l40s")
    key = loader.compile_cache_key(tier, "vllm/vllm-openai:v0.33.0", svc.model)
    assert key == "l40s/vllm_vllm-openai_v0.33.0/llm-staging-models/meta-llama/Llama-3.1-8B-Instruct"
    other_image = loader.compile_cache_key(tier, "vllm/vllm-openai:v0.34.0", svc.model)
    other_gpu = loader.compile_cache_key(load("prod").tier("h100"), "vllm/vllm-openai:v0.33.0", svc.model)
    assert len({key, other_image, other_gpu}) == 3
    spec = vllm.pod_spec(svc, tier, "baseline", region="us-east-1")
    mount = next(m for m in spec["containers"][0]["volumeMounts"] if m["mountPath"] == loader.COMPILE_MOUNT)
    assert mount == {"name": "model-cache", "mountPath": "/compile-cache", "subPath": f".compile-cache/{key}"}
    env = {e["name"]: e["value"] for e in spec["containers"][0]["env"] if "value" in e}
    assert env["VLLM_CACHE_ROOT"] == "/compile-cache/vllm"
    assert env["TORCHINDUCTOR_CACHE_DIR"] == "/compile-cache/torchinductor"
    names = [c["name"] for c in spec["initContainers"]]
    assert names == ["model-cache-owner", "model-cache", "compile-cache"]
    mkdir = spec["initContainers"][-1]
    assert mkdir["env"] == [{"name": "COMPILE_DIR", "value": f"/models/.compile-cache/{key}"}]
    assert mkdir["securityContext"]["runAsNonRoot"] is True


# --------------------------------------------------------------------------- render: nodes and capacity


def test_fast_image_pull_sets_the_nodeadm_gate_and_root_volume():
    cfg = load_with("dev", _set("cluster.fastImagePull", {"enabled": True, "rootVolumeThroughputMibps": 600,
                                                          "rootVolumeIops": 6000}))
    tier = cfg.tier("l4")
    spec = node_levers.apply_node_class(karpenter.ec2_node_class(tier, node_role="r", subnet_ids=[], security_group_id="sg-1",
                                                                  tags={}), tier, cfg.cluster.fast_image_pull)
    assert "kind: NodeConfig\nspec:\n  featureGates:\n    FastImagePull: true\n" in spec["userData"]
    assert spec["userData"].startswith("MIME-Version: 1.0\nContent-Type: multipart/mixed;")
    assert spec["blockDeviceMappings"][0]["ebs"]["throughput"] == 600
    assert spec["blockDeviceMappings"][0]["ebs"]["iops"] == 6000
    off = node_levers.apply_node_class(karpenter.ec2_node_class(tier, node_role="r", subnet_ids=[], security_group_id="sg-1",
                                                                 tags={}), tier, load_plain_prod().cluster.fast_image_pull)
    assert "userData" not in off and "throughput" not in off["blockDeviceMappings"][0]["ebs"]


def test_reservations_select_and_the_baseline_prefers_them():
    cfg = load_with("staging", _set("gpuTiers.0.reservations", {"ids": ["cr-0a"], "tags": {"team": "llm"},
                                                               "ownerId": "123456789012"}))
    tier = cfg.tier("l40s")
    assert node_levers.reservation_terms(tier) == [{"id": "cr-0a"}, {"tags": {"team": "llm"}, "ownerID": "123456789012"}]
    (od_name, od), (_, spot) = karpenter.node_pools(tier, 9)
    capacity = next(r for r in od["template"]["spec"]["requirements"] if r["key"] == "karpenter.sh/capacity-type")
    assert capacity["values"] == ["on-demand", "reserved"]
    assert next(r for r in spot["template"]["spec"]["requirements"]
                if r["key"] == "karpenter.sh/capacity-type")["values"] == ["spot"]
    baseline = vllm.pod_spec(cfg.model_services[0], tier, "baseline", region="us-east-1")
    terms = baseline["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
    assert {"key": "karpenter.sh/capacity-type", "operator": "In", "values": ["on-demand", "reserved"]} in \
        terms[0]["matchExpressions"]


def test_capacity_buffer_gate_only_with_capacity_buffer_mode():
    staging = load("staging")
    assert node_levers.feature_gates(staging.gpu_tiers) == {"capacityBuffer": True}
    placeholders = load_with("staging", _set("gpuTiers.0.capacityBuffer.mode", "placeholderPods"))
    assert node_levers.feature_gates(placeholders.gpu_tiers) == {}
    assert node_levers.feature_gates(load("dev").gpu_tiers) == {}


def test_buffer_render_matches_the_crd_rules_and_the_chunk():
    cfg = load("staging")
    tier = cfg.tier("l40s")
    chunk = buffer_chunk(cfg, tier)
    assert chunk is not None
    cb = buffer.capacity_buffer(tier, chunk)
    assert cb["spec"] == {"podTemplateRef": {"name": "l40s-buffer"}, "replicas": 1}
    pod = buffer.pod_template(tier, chunk)["template"]["spec"]
    assert pod["containers"][0]["resources"]["requests"]["nvidia.com/gpu"] == "1"
    assert "priorityClassName" not in pod
    dep = buffer.placeholder_deployment(tier, chunk)
    assert dep["spec"]["template"]["spec"]["priorityClassName"] == buffer.PRIORITY_CLASS
    assert buffer.priority_class()["value"] < 0 and buffer.priority_class()["preemptionPolicy"] == "Never"


def test_platform_renders_the_buffer_and_the_gate():
    result = build(load("staging"))
    (cb,) = custom_resources(result, "CapacityBuffer")
    assert cb["apiVersion"] == "autoscaling.x-k8s.io/v1beta1"
    assert release(result, "karpenter")["values"]["settings"]["featureGates"] == {"capacityBuffer": True}
    placeholders = build(load_with("staging", _set("gpuTiers.0.capacityBuffer.mode", "placeholderPods")))
    assert custom_resources(placeholders, "CapacityBuffer") == []
    (pc,) = by_type(placeholders, "kubernetes:scheduling.k8s.io/v1:PriorityClass")
    assert pc.inputs["value"] == -10
    assert "featureGates" not in release(placeholders, "karpenter")["values"]["settings"]


# --------------------------------------------------------------------------- render: predictive trigger


def test_predictive_trigger_looks_one_modelled_cold_start_ahead():
    cfg = load_with("prod", _set("modelServices.0.predictiveScaling", {"enabled": True, "requestsPerSecondPerReplica": 2}))
    svc, tier = cfg.model_services[0], cfg.tier(cfg.model_services[0].tier)
    modelled = scaling.modelled_cold_start_seconds(svc, tier.instance_types)
    assert scaling.lookahead_seconds(svc, tier.instance_types) == modelled
    so = scaling.scaled_object(svc, "inference", "http://p", modelled, modelled)
    trig = next(t for t in so["spec"]["triggers"] if t["name"] == "predicted-rate")
    assert trig["metricType"] == "AverageValue" and trig["metadata"]["threshold"] == "2"
    assert (f'predict_linear(sum(rate(vllm:request_success_total{{namespace="inference",service="{svc.name}"}}[1m]))'
            f"[600s:15s], {modelled})") in trig["metadata"]["query"]
    assert so["metadata"]["annotations"][scaling.COLD_START_ANNOTATION] == str(modelled)
    off = scaling.scaled_object(load("staging").model_services[0], "inference", "http://p", modelled, modelled)
    assert all(t["name"] != "predicted-rate" for t in off["spec"]["triggers"])


def test_modelled_cold_start_counts_fast_image_pull_where_nodeadm_enables_it():
    """The lookahead the predictive trigger renders with counts FastImagePull's parallel pull (it
    used to ignore it while the simulator's replay counted it), on node sizes nodeadm turns SOCI on for."""
    from platform_facts import coldstart

    cfg = load("prod")
    svc, types = cfg.model_services[0], cfg.tier("l40s").instance_types
    plain = scaling.modelled_cold_start_seconds(svc, types)
    fast = scaling.modelled_cold_start_seconds(svc, types, fast_image_pull=True)
    saved = coldstart.EXPECTED_IMAGE_PULL_SECONDS * (1 - 1 / coldstart.FAST_IMAGE_PULL_SPEEDUP)
    assert abs((plain - fast) - saved) <= 1
    assert scaling.lookahead_seconds(svc, types, fast_image_pull=True) == fast
    # nodeadm keeps the default pull below 4 vCPU or 7 GiB.
    assert coldstart.fast_image_pull_applies(True, 4, 16) is True
    assert coldstart.fast_image_pull_applies(True, 2, 16) is False
    assert coldstart.fast_image_pull_applies(True, 8, 4) is False
    assert coldstart.fast_image_pull_applies(False, 8, 64) is False
    # The platform hands the cluster's gate to the component: the rendered ScaledObject says so.
    on = load_with("prod", _all(_set("cluster.fastImagePull", {"enabled": True}),
                                _set("modelServices.0.predictiveScaling",
                                     {"enabled": True, "requestsPerSecondPerReplica": 1})))
    so = next(o for o in custom_resources(build(on), "ScaledObject") if o["metadata"]["name"].startswith(svc.name))
    assert so["metadata"]["annotations"][scaling.COLD_START_ANNOTATION] == str(fast)


# --------------------------------------------------------------------------- policies beyond the cases


def test_on_demand_headroom_judges_pools_that_take_reservations():
    """A pool and pods that accept reserved next to on-demand are still judged against the limit
    (they used to be skipped: only exactly {on-demand} was read as on-demand)."""
    from tests.levers_cases import DEPLOYMENT, NODEPOOL, deployment, pod, pool
    from tests.test_policies import violations

    def reserved(obj: dict, *path: str) -> dict:
        node = obj
        for p in path:
            node = node[p] if not isinstance(node, list) else node[int(p)]
        node["values"] = ["on-demand", "reserved"]
        return obj

    p = reserved(pool("1"), "spec", "template", "spec", "requirements", "0")
    spec = pod("vllm/vllm-openai:v0.33.0")
    reserved(spec, "affinity", "nodeAffinity", "requiredDuringSchedulingIgnoredDuringExecution", "nodeSelectorTerms",
             "0", "matchExpressions", "1")
    found = violations("capacity-on-demand-headroom", [(NODEPOOL, p), (DEPLOYMENT, deployment("chat", 2, spec))])
    assert found and "limit nvidia.com/gpu to 1" in found[0]


# --------------------------------------------------------------------------- conformance of what stacks do not ship


def test_placeholder_mode_and_tag_reservations_conform():
    """The placeholder Deployment and PriorityClass (no stack ships them) against the Kubernetes
    schema, and a tag-selected reservation and FastImagePull node class against the EC2NodeClass
    CRD, CEL rules included."""
    from tests.conformance import check_builtin, check_custom_resource

    cfg = load_with("staging", _all(_set("gpuTiers.0.capacityBuffer.mode", "placeholderPods"),
                                    _set("gpuTiers.0.reservations", {"ids": ["cr-0a1"], "tags": {"team": "llm"},
                                                                     "ownerId": "123456789012"}),
                                    _set("cluster.fastImagePull", {"enabled": True, "rootVolumeThroughputMibps": 600,
                                                                   "rootVolumeIops": 6000})))
    tier = cfg.tier("l40s")
    chunk = buffer_chunk(cfg, tier)
    assert chunk is not None
    pc = {"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass", **buffer.priority_class()}
    dep = {"apiVersion": "apps/v1", "kind": "Deployment", **buffer.placeholder_deployment(tier, chunk)}
    tpl = {"apiVersion": "v1", "kind": "PodTemplate", **buffer.pod_template(tier, chunk)}
    for obj in (pc, dep, tpl):
        assert check_builtin(obj, "1.35") == [], obj["kind"]
    spec = node_levers.apply_node_class(
        karpenter.ec2_node_class(tier, node_role="r", subnet_ids=[{"id": "subnet-0a"}], security_group_id="sg-0a",
                                 tags={}), tier, cfg.cluster.fast_image_pull)
    nc = {"apiVersion": "karpenter.k8s.aws/v1", "kind": "EC2NodeClass", "metadata": {"name": "l40s"}, "spec": spec}
    assert check_custom_resource(nc, set()) == []
    # The CRD's CEL rule that an id stands alone is live: an id with tags is refused.
    bad = {**nc, "spec": {**spec, "capacityReservationSelectorTerms": [{"id": "cr-0a1", "tags": {"a": "b"}}]}}
    assert any("mutually exclusive" in e for e in check_custom_resource(bad, set()))


def test_vendored_capacity_buffer_crd_serves_v1beta1_with_its_cel_rules():
    from tests.conformance import check_custom_resource, crd_schema

    cfg = load("staging")
    tier = cfg.tier("l40s")
    chunk = buffer_chunk(cfg, tier)
    assert chunk is not None
    cb = {"apiVersion": "autoscaling.x-k8s.io/v1beta1", "kind": "CapacityBuffer", **buffer.capacity_buffer(tier, chunk)}
    assert check_custom_resource(cb, set()) == []
    assert crd_schema("autoscaling.x-k8s.io/v1alpha1", "CapacityBuffer") is None  # the docs' version is not served
    no_size = {**cb, "spec": {"podTemplateRef": {"name": "l40s-buffer"}}}
    assert any("replicas or limits must also be set" in e for e in check_custom_resource(no_size, set()))


# --------------------------------------------------------------------------- the rules on the shipped stacks


def _golden(stack: str) -> list[tuple[str, dict]]:
    from tests.conftest import REPO

    return [(r["type"], r["inputs"]) for r in json.loads((REPO / "tests" / "golden" / stack / "resources.json").read_text())]


def test_dev_streams_with_read_access_and_would_not_without_it():
    from tests.test_policies import violations

    res = _golden("dev")
    assert violations("runai-s3-read-access", res, "dev") == []
    unbound = [(t, p) for t, p in res if t != "aws:eks/podIdentityAssociation:PodIdentityAssociation"]
    assert any("chat-burst streams s3://llm-dev-models/" in m for m in violations("runai-s3-read-access", unbound, "dev"))


def test_staging_buffer_fits_its_limit_and_would_not_in_a_tighter_one():
    from tests.test_policies import violations

    res = _golden("staging")
    assert violations("capacity-buffer-within-limit", res, "staging") == []
    # Only the baseline (1 GPU) is required on-demand there; the burst prefers spot.
    tight = [(t, {**p, "spec": {**p["spec"], "limits": {"nvidia.com/gpu": "1"}}})
             if t.endswith(":NodePool") and p["metadata"]["name"] == "l40s-on-demand" else (t, p) for t, p in res]
    found = violations("capacity-buffer-within-limit", tight, "staging")
    assert any("capacity-buffers/l40s-buffer holds 1 x 1 GPU on NodePools l40s-on-demand, whose nvidia.com/gpu limit 1 "
               "leaves 0 GPUs beside the 1" in m for m in found), found


def test_placeholder_pods_are_not_held_to_the_serving_rules():
    # Pause pods that only hold GPUs serve nothing: no probes, drain or rollout rule applies to
    # them (they failed five mandatory serving rules before); the same Deployment with a real
    # container next to the pause one is serving again and fails them.
    from policies import rules_workloads as rw

    cfg = load_with("staging", _set("gpuTiers.0.capacityBuffer.mode", "placeholderPods"))
    tier = cfg.tier("l40s")
    chunk = buffer_chunk(cfg, tier)
    assert chunk is not None
    dep = buffer.placeholder_deployment(tier, chunk)
    config = {"minStartupSeconds": 600, "p99GenerationSeconds": 30}
    serving = (rw.startup_probe, rw.readiness_probe, rw.prestop_hook, rw.termination_grace, rw.rolling_update)
    kind = "kubernetes:apps/v1:Deployment"
    assert [m for rule in serving for m in rule(kind, dep, config)] == []
    # Still held to what every GPU pod owes: requests equal limits, the GPU taint's toleration.
    assert list(rw.requests_equal_limits(kind, dep, config)) == [] and list(rw.gpu_toleration(kind, dep, config)) == []
    spec = dep["spec"]["template"]["spec"]
    real = {**dep, "spec": {**dep["spec"], "template": {**dep["spec"]["template"], "spec": {
        **spec, "containers": [*spec["containers"], {**spec["containers"][0], "name": "app", "image": "example/app:1"}]}}}}
    assert all(list(rule(kind, real, config)) for rule in (rw.readiness_probe, rw.prestop_hook, rw.rolling_update))
