"""A ModelService as Kubernetes objects: pure functions from config to dicts.

Shape: a ``baseline`` Deployment (fixed replicas, on-demand only) and a ``burst``
Deployment (scaled by KEDA from 0, spot preferred, on-demand fallback), both behind one
Service; optionally a ``canary`` Deployment. The burst triggers subtract the baseline's
capacity, so baseline + burst together track demand, and a spot reclaim only ever takes
burst replicas: the baseline never runs on spot.
"""

from __future__ import annotations

import math
from typing import Any

from components import labels, versions
from components.config import GpuTier, ModelServiceConfig, ModelSpec
from components.naming import SCALED_OBJECT_MAX, k8s_name
from components.render import cache, loader, node_levers, pod_security, rollout
from platform_facts import coldstart

PORT = 8000
SKIP_AWAIT = "pulumi.com/skipAwait"
PORT_NAME = "http"
ROLE = "platform.gpu/role"  # baseline | burst | canary
TRACK = "track"  # stable | canary: dashboards compare them
BASELINE_ANNOTATION = "platform.gpu/baseline-deployment"
P99_ANNOTATION = "platform.gpu/p99-generation-seconds"
STARTUP_PERIOD_SECONDS = 10
STARTUP_SAFETY = 1.5
READINESS_TIMEOUT_SECONDS = 70  # the first readiness check runs one real completion (60 s client timeout)
# Rolling updates surge one pod and take none away first: never below the serving count.
MAX_SURGE = 1
# vLLM's --dtype per weight dtype. fp8, int8 and int4 weights come from quantized checkpoints,
# whose config.json names the quantization method (fp8, compressed-tensors, AWQ, GPTQ...);
# vLLM reads it from there, so we pass --dtype auto and no --quantization (guessing the method
# would fail to load a checkpoint quantized another way). Online quantization of a bf16
# checkpoint (--quantization fp8) is a choice for extraArgs, with model.dtype bfloat16.
VLLM_DTYPE = {"bfloat16": "bfloat16", "float16": "float16", "fp8": "auto", "int8": "auto", "int4": "auto"}

# What vLLM writes, the root filesystem being read-only. The image sets no USER (root,
# HOME=/root) and no cache variables, so every default below would land under /root.
HOME = "/home/vllm"
HOME_VOLUME = "vllm-home"
# HOME: Python libraries default their caches under it: torch.compile and vLLM's compile cache
# (VLLM_CACHE_ROOT/torch_compile_cache, reused across restarts of the pod's container),
# Triton's and TorchInductor's kernel caches, FlashInfer's JIT cache (~/.cache/flashinfer),
# CUDA's PTX JIT cache (~/.nv), vLLM's config dir; the HF cache holds nothing (the weights come
# from /models, HF_HUB_OFFLINE). Each variable is named so none falls back to /root.
HOME_SIZE = "8Gi"
TMP_VOLUME = "vllm-tmp"
# /tmp: the readiness probe's warm marker (/tmp/vllm-warm), vLLM's ZMQ IPC sockets between the
# API server and the engine core (created under tempfile.gettempdir()), Python tempfiles.
TMP_SIZE = "1Gi"
CACHE_HOME = f"{HOME}/.cache"
WRITABLE_ENV = {
    "HOME": HOME,
    # getpass.getuser() (TorchInductor's default cache path) reads USER first: the UID has no
    # /etc/passwd entry in the image.
    "USER": "vllm",
    "XDG_CACHE_HOME": CACHE_HOME,
    "XDG_CONFIG_HOME": f"{HOME}/.config",
    "HF_HOME": f"{CACHE_HOME}/huggingface",
    "VLLM_CACHE_ROOT": f"{CACHE_HOME}/vllm",
    "VLLM_CONFIG_ROOT": f"{HOME}/.config/vllm",
    "TRITON_HOME": HOME,
    "TRITON_CACHE_DIR": f"{CACHE_HOME}/triton",
    "TORCHINDUCTOR_CACHE_DIR": f"{CACHE_HOME}/torchinductor",
    "CUDA_CACHE_PATH": f"{HOME}/.nv/ComputeCache",
    "TMPDIR": "/tmp",
}


# --------------------------------------------------------------------------- sizing


def load_seconds(model: ModelSpec) -> int:
    """Worst-case time from container start to a serving engine, the model already cached."""
    return coldstart.worst_load_seconds(model.weights_gib)


def cold_start_seconds(model: ModelSpec) -> int:
    """Worst case on a node without the model: download into the cache, then load."""
    return coldstart.worst_cold_start_seconds(model.weights_gib)


def startup_failure_threshold(model: ModelSpec) -> int:
    """startupProbe failures allowed: 1.5 x the worst-case load, in probe periods."""
    return math.ceil(STARTUP_SAFETY * load_seconds(model) / STARTUP_PERIOD_SECONDS)


def ready_within_seconds(model: ModelSpec, tier: GpuTier) -> int:
    """Worst case from a pod's creation to Ready on a new node of the tier: the startup probe's
    own budget, plus what happens before it starts and after it passes."""
    return rollout.ready_within_seconds(
        node_ready=coldstart.worst_node_ready_seconds(tier.instance_types),
        image_pull=coldstart.WORST_IMAGE_PULL_SECONDS,
        download=math.ceil(model.weights_gib / coldstart.WORST_S3_SYNC_GIB_PER_S),
        startup_budget=startup_failure_threshold(model) * STARTUP_PERIOD_SECONDS,
        first_ready=STARTUP_PERIOD_SECONDS + READINESS_TIMEOUT_SECONDS,
    )


def rollout_replicas(svc: ModelServiceConfig, role: str) -> int:
    """Replicas an update of this Deployment rolls: the burst may sit at its maximum (the
    autoscaler owns its spec.replicas), so its update is judged at that size."""
    if role == "baseline":
        return svc.scaling.min_replicas
    if role == "canary":
        return svc.canary.replicas if svc.canary is not None else 0
    return svc.scaling.max_replicas - svc.scaling.min_replicas


def await_timeouts(svc: ModelServiceConfig, tier: GpuTier, role: str) -> dict[str, str]:
    """The Deployment's customTimeouts. A create starts every replica at once (one wave; the burst
    is created at 0); an update rolls ``rollout_replicas / MAX_SURGE`` waves one after another."""
    ready = ready_within_seconds(_model(svc, role), tier)
    steps = rollout.rollout_steps(rollout_replicas(svc, role), MAX_SURGE)
    return {"create": f"{rollout.await_timeout_minutes(ready, 1)}m",
            "update": f"{rollout.await_timeout_minutes(ready, steps)}m"}


def _model(svc: ModelServiceConfig, role: str) -> ModelSpec:
    canary = svc.canary if role == "canary" else None
    return canary.model if canary and canary.model else svc.model


# --------------------------------------------------------------------------- names


def names(svc: ModelServiceConfig) -> dict[str, str]:
    base = svc.name
    return {
        "service": base,
        "baseline": k8s_name(base, "baseline"),
        "burst": k8s_name(base, "burst"),
        "canary": k8s_name(base, "canary"),
        "scaled_object": k8s_name(base, "burst", max_length=SCALED_OBJECT_MAX),
        "hpa": k8s_name(base, "burst"),
        "service_account": base,
        "pre_pull": k8s_name(base, "pre-pull"),
        "rules": k8s_name(base, "alerts"),
    }


def selector(svc: ModelServiceConfig) -> dict[str, str]:
    return {labels.APP_NAME: "vllm", labels.APP_INSTANCE: svc.name}


def _labels(svc: ModelServiceConfig, role: str) -> dict[str, str]:
    return {**selector(svc), labels.APP_COMPONENT: "model-server", ROLE: role,
            TRACK: "canary" if role == "canary" else "stable", labels.MANAGED_BY: labels.MANAGED_BY_VALUE}


# --------------------------------------------------------------------------- pod


def vllm_args(svc: ModelServiceConfig, model: ModelSpec, extra: tuple[str, ...]) -> list[str]:
    return [
        loader.model_arg(svc, model),
        "--served-model-name", model.id,
        "--tensor-parallel-size", str(svc.tensor_parallel_size),
        "--gpu-memory-utilization", f"{svc.gpu_memory_utilization:g}",
        "--max-num-seqs", str(svc.max_num_seqs),
        "--max-model-len", str(svc.max_model_len),
        "--dtype", VLLM_DTYPE[model.dtype],
        "--port", str(PORT),
        # Drain in-flight requests on SIGTERM (vLLM >= 0.18; the default 0 aborts them).
        "--shutdown-timeout", str(svc.drain.shutdown_timeout_seconds),
        *loader.load_args(svc), *extra,
    ]


def _readiness_script(model: ModelSpec) -> str:
    """Ready only after one real completion succeeded, then as long as /health answers."""
    return (
        "import json, os, urllib.request as u\n"
        f"base = 'http://127.0.0.1:{PORT}'\n"
        "if not os.path.exists('/tmp/vllm-warm'):\n"
        f"    body = json.dumps({{'model': {model.id!r}, 'prompt': 'ping', 'max_tokens': 1}}).encode()\n"
        # With an API key, /v1 answers 401 without it; /health and /metrics stay open.
        "    headers = {'Content-Type': 'application/json'}\n"
        "    if os.environ.get('VLLM_API_KEY'):\n"
        "        headers['Authorization'] = 'Bearer ' + os.environ['VLLM_API_KEY']\n"
        "    req = u.Request(base + '/v1/completions', data=body, headers=headers)\n"
        "    u.urlopen(req, timeout=60).read()\n"
        "    open('/tmp/vllm-warm', 'w').close()\n"
        "u.urlopen(base + '/health', timeout=5).read()\n"
    )


def container(svc: ModelServiceConfig, *, image: str, model: ModelSpec, extra: tuple[str, ...]) -> dict[str, Any]:
    gpus = str(svc.gpus_per_replica)
    memory = f"{svc.memory_gib_per_replica}Gi"
    requests = {"cpu": str(svc.cpu_per_replica), "memory": memory, labels.GPU_RESOURCE: gpus}
    if svc.cache.medium == "emptyDir":
        requests["ephemeral-storage"] = f"{svc.cache.size_gib}Gi"
    env: list[dict[str, Any]] = [
        # The weights come from the node cache: never reach out to the Hub at run time.
        {"name": "HF_HUB_OFFLINE", "value": "1"},
        {"name": "VLLM_NO_USAGE_STATS", "value": "1"},
        *({"name": k, "value": v} for k, v in WRITABLE_ENV.items()),
    ]
    if svc.hf_token_secret is not None:
        env.append({"name": "HF_TOKEN", "valueFrom": {"secretKeyRef": {
            "name": svc.hf_token_secret.name, "key": svc.hf_token_secret.key}}})
    if svc.api_key_secret is not None:
        # vLLM's --api-key falls back to VLLM_API_KEY: the key never appears in the pod spec. It
        # guards /v1/...; /health (probes) and /metrics (Prometheus, hence KEDA) stay open.
        env.append({"name": "VLLM_API_KEY", "valueFrom": {"secretKeyRef": {
            "name": svc.api_key_secret.name, "key": svc.api_key_secret.key}}})
    return {
        "name": "vllm",
        "image": image,
        "command": ["vllm", "serve"],
        "args": vllm_args(svc, model, extra),
        "ports": [{"name": PORT_NAME, "containerPort": PORT, "protocol": "TCP"}],
        "env": env,
        "resources": {"requests": requests, "limits": {labels.GPU_RESOURCE: gpus, "memory": memory}},
        # The HTTP server starts only once the model is loaded: /health 200 means loaded.
        "startupProbe": {"httpGet": {"path": "/health", "port": PORT_NAME}, "periodSeconds": STARTUP_PERIOD_SECONDS,
                         "timeoutSeconds": 5, "failureThreshold": startup_failure_threshold(model)},
        "readinessProbe": {"exec": {"command": ["python3", "-c", _readiness_script(model)]},
                           "periodSeconds": 10, "timeoutSeconds": READINESS_TIMEOUT_SECONDS, "failureThreshold": 3},
        # Liveness starts after the startup probe succeeds, so it can never kill a loading pod.
        "livenessProbe": {"httpGet": {"path": "/health", "port": PORT_NAME}, "periodSeconds": 15,
                          "timeoutSeconds": 5, "failureThreshold": 4},
        "lifecycle": {"preStop": {"sleep": {"seconds": svc.drain.pre_stop_seconds}}},
        "securityContext": pod_security.container_security_context(),
        # /dev/shm: NCCL and torch multiprocessing between tensor-parallel workers.
        "volumeMounts": [{"name": cache.VOLUME, "mountPath": cache.MOUNT, "readOnly": True},
                         {"name": "dshm", "mountPath": "/dev/shm"},
                         {"name": HOME_VOLUME, "mountPath": HOME},
                         {"name": TMP_VOLUME, "mountPath": "/tmp"}],
    }


def _affinity(tier: GpuTier, role: str, svc: ModelServiceConfig) -> dict[str, Any]:
    tier_term = {"key": labels.TIER, "operator": "In", "values": [tier.name]}
    if role == "burst" and svc.burst_capacity == "spot" and svc.burst_fallback == "none":
        # Spot only: the on-demand limit does not count this burst, so it may not land there.
        return {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
            {"matchExpressions": [tier_term, {"key": labels.CAPACITY_TYPE, "operator": "In", "values": ["spot"]}]}]}}}
    if role == "burst" and svc.burst_capacity == "spot":
        # Prefer spot, fall back to on-demand (Karpenter relaxes preferences when spot is short);
        # the on-demand limit counts the whole burst for this fallback.
        return {"nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [{"matchExpressions": [tier_term]}]},
            "preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 100, "preference": {"matchExpressions": [
                {"key": labels.CAPACITY_TYPE, "operator": "In", "values": ["spot"]}]}}],
        }}
    # Baseline and canary (and on-demand burst) never depend on spot.
    return {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [{"matchExpressions": [
        tier_term, {"key": labels.CAPACITY_TYPE, "operator": "In", "values": node_levers.on_demand_types(tier)}]}]}}}


def pod_spec(svc: ModelServiceConfig, tier: GpuTier, role: str, *, region: str) -> dict[str, Any]:
    canary = svc.canary if role == "canary" else None
    model = _model(svc, role)
    image = (canary.image if canary and canary.image else svc.loader.image or versions.VLLM_IMAGE)
    extra = canary.extra_args if canary else svc.extra_args
    shm = "8Gi" if svc.tensor_parallel_size > 1 else "2Gi"
    pod_labels = _labels(svc, role)
    spread_selector = {"matchLabels": {**selector(svc), ROLE: role}}
    main = container(svc, image=image, model=model, extra=extra)
    loader.apply(main, svc, tier, image, model, region=region)
    return {
        "serviceAccountName": names(svc)["service_account"],
        # No pod calls the API server; Pod Identity brings its own token (see pod_security).
        "automountServiceAccountToken": False,
        "securityContext": pod_security.pod_security_context(),
        # A Service named vllm would inject VLLM_PORT=tcp://..., which vLLM rejects.
        "enableServiceLinks": False,
        "terminationGracePeriodSeconds": svc.drain.termination_grace_seconds,
        "initContainers": loader.init_containers(svc, tier, image, model, region=region),
        "containers": [main],
        "volumes": [*loader.volumes(svc), {"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": shm}},
                    {"name": HOME_VOLUME, "emptyDir": {"sizeLimit": HOME_SIZE}},
                    {"name": TMP_VOLUME, "emptyDir": {"sizeLimit": TMP_SIZE}}],
        "tolerations": [{"key": labels.GPU_TAINT_KEY, "operator": "Exists", "effect": "NoSchedule"}],
        "affinity": _affinity(tier, role, svc),
        # Soft zone spread: GPU capacity is scarce per zone, and a hard constraint would leave
        # replicas Pending rather than serving from a second node in the same zone.
        "topologySpreadConstraints": [
            {"maxSkew": 1, "topologyKey": labels.ZONE, "whenUnsatisfiable": "ScheduleAnyway", "labelSelector": spread_selector},
            {"maxSkew": 1, "topologyKey": labels.HOSTNAME, "whenUnsatisfiable": "ScheduleAnyway", "labelSelector": spread_selector},
        ],
        "_labels": pod_labels,
    }


def deployment(svc: ModelServiceConfig, tier: GpuTier, role: str, namespace: str, replicas: int | None, *,
               region: str) -> dict[str, Any]:
    spec = pod_spec(svc, tier, role, region=region)
    pod_labels = spec.pop("_labels")
    dep_spec: dict[str, Any] = {
        "selector": {"matchLabels": {**selector(svc), ROLE: role}},
        # Never below the serving count during a rollout: surge one pod, take none away first.
        "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": MAX_SURGE}},
        "revisionHistoryLimit": 5,
        "template": {"metadata": {"labels": pod_labels}, "spec": spec},
    }
    if replicas is not None:
        dep_spec["replicas"] = replicas
    return {
        "metadata": {"name": names(svc)[role], "namespace": namespace, "labels": pod_labels,
                     # The policy pack checks the drain against this service's own p99, and the
                     # await timeouts against the worst-case readiness and rollout waves.
                     "annotations": {
                         P99_ANNOTATION: f"{svc.slo.p99_generation_seconds:g}",
                         rollout.READY_WITHIN_ANNOTATION: str(ready_within_seconds(_model(svc, role), tier)),
                         rollout.ROLLOUT_STEPS_ANNOTATION: str(rollout.rollout_steps(rollout_replicas(svc, role),
                                                                                     MAX_SURGE)),
                     }},
        "spec": dep_spec,
    }


def service(svc: ModelServiceConfig, namespace: str) -> dict[str, Any]:
    """The ClusterIP Service. Not awaited: pulumi-kubernetes would wait (10 min) until its
    Endpoints target a Ready pod, which a scale-to-zero service never has at creation and a
    large model's first replica takes longer to become. The Deployments are the readiness gate
    (awaited with timeouts from the cold-start model)."""
    return {
        "metadata": {"name": names(svc)["service"], "namespace": namespace,
                     "labels": {**selector(svc), labels.MANAGED_BY: labels.MANAGED_BY_VALUE},
                     "annotations": {SKIP_AWAIT: "true"}},
        "spec": {"type": "ClusterIP", "selector": selector(svc),
                 "ports": [{"name": PORT_NAME, "port": PORT, "targetPort": PORT_NAME, "protocol": "TCP"}]},
    }


def pod_disruption_budget(svc: ModelServiceConfig, role: str, namespace: str) -> dict[str, Any]:
    """One pod at a time may go: protects the set without ever blocking a drain (never
    minAvailable = replicas), and pods that are not ready may always be evicted."""
    return {
        "metadata": {"name": names(svc)[role], "namespace": namespace},
        "spec": {"maxUnavailable": 1, "selector": {"matchLabels": {**selector(svc), ROLE: role}},
                 "unhealthyPodEvictionPolicy": "AlwaysAllow"},
    }


def service_monitor(svc: ModelServiceConfig, namespace: str, interval_seconds: int) -> dict[str, Any]:
    return {
        "metadata": {"name": svc.name, "namespace": namespace},
        "spec": {
            "selector": {"matchLabels": selector(svc)},
            "namespaceSelector": {"matchNames": [namespace]},
            "podTargetLabels": [ROLE, TRACK],
            "endpoints": [{"port": PORT_NAME, "path": "/metrics", "interval": f"{interval_seconds}s"}],
        },
    }


# --------------------------------------------------------------------------- pre-pull


def pre_pull_labels(svc: ModelServiceConfig) -> dict[str, str]:
    """The pre-pull pods' labels: not the Service's selector (``app.kubernetes.io/name`` differs),
    so the Service never sends requests to a cache warmer."""
    return {labels.APP_NAME: "vllm-pre-pull", labels.APP_INSTANCE: svc.name, ROLE: "pre-pull"}


def pre_pull_daemonset(svc: ModelServiceConfig, tier: GpuTier, namespace: str, *, region: str) -> dict[str, Any]:
    """Pulls the vLLM image and warms the model cache on every node of the tier, so a
    replica that lands there starts from a warm node (no image pull, no download).

    Not awaited (``pulumi.com/skipAwait``): its rollout visits every node of the tier one by one,
    a count Pulumi cannot know, and nothing waits on it; a replica on a node it has not warmed
    yet does its own cold start, which the Deployments' timeouts cover."""
    sel = pre_pull_labels(svc)
    return {
        "metadata": {"name": names(svc)["pre_pull"], "namespace": namespace, "labels": sel,
                     "annotations": {SKIP_AWAIT: "true"}},
        "spec": {
            "selector": {"matchLabels": sel},
            "template": {"metadata": {"labels": sel}, "spec": {
                "serviceAccountName": names(svc)["service_account"],
                "automountServiceAccountToken": False,
                "securityContext": pod_security.pod_security_context(),
                "nodeSelector": {labels.TIER: tier.name},
                "tolerations": [{"key": labels.GPU_TAINT_KEY, "operator": "Exists", "effect": "NoSchedule"}],
                "initContainers": [
                    # Pulls the image and writes nothing.
                    {"name": "pull-vllm", "image": svc.loader.image or versions.VLLM_IMAGE, "command": ["/bin/true"],
                     "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}, "limits": {"memory": "16Mi"}},
                     "securityContext": pod_security.container_security_context()},
                    *loader.fill_containers(svc, svc.model, region=region),
                ],
                "containers": [{"name": "idle", "image": versions.PAUSE_IMAGE,
                                "resources": {"requests": {"cpu": "1m", "memory": "8Mi"}, "limits": {"memory": "16Mi"}},
                                "securityContext": pod_security.container_security_context()}],
                "volumes": [] if svc.loader.skips_cache else cache.volumes(svc.cache),
            }},
        },
    }
