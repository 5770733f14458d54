"""BatchInference as Kubernetes objects: Redis (or an existing one), the KEDA ScaledJob of
GPU workers, and the TriggerAuthentication that lets KEDA read the queue."""

from __future__ import annotations

from typing import Any

from components import labels, versions
from components.config import BatchWorkerConfig, Cache, GpuTier
from components.naming import k8s_name
from components.render import cache, pod_security

REDIS_PORT = 6379
PASSWORD_KEY = "password"
URL_KEY = "url"
WORKER_ROLE = "batch-worker"
# Batch pods share the node's NVMe cache with the serving pods (same hostPath, same layout).
HOST_CACHE = Cache(medium="hostPath")
# What a worker may write, its root filesystem being read-only: HOME (library caches default
# under it: ~/.cache for Hugging Face, torch, Triton) and /tmp (tempfiles). An image that
# writes elsewhere needs a volume there; none is guessed.
WORKER_HOME = "/home/worker"
WORKER_SCRATCH = {"worker-home": (WORKER_HOME, "8Gi"), "worker-tmp": ("/tmp", "1Gi")}


def names(worker: BatchWorkerConfig) -> dict[str, str]:
    return {
        "redis": k8s_name(worker.name, "redis"),
        "secret": k8s_name(worker.name, "redis-auth"),
        "auth": k8s_name(worker.name, "redis"),
        "job": k8s_name(worker.name, "worker"),
        "service_account": k8s_name(worker.name, "worker"),
        "policy": k8s_name(worker.name, "redis"),
    }


def redis_labels(worker: BatchWorkerConfig) -> dict[str, str]:
    return {labels.APP_NAME: "redis", labels.APP_INSTANCE: worker.name}


def worker_labels(worker: BatchWorkerConfig) -> dict[str, str]:
    return {labels.APP_NAME: "batch-worker", labels.APP_INSTANCE: worker.name, labels.APP_COMPONENT: WORKER_ROLE}


# The general-purpose NodePool's CPU limit counts this request (Platform).
REDIS_CPU_MILLICORES = 250
REDIS_RESOURCES = {"requests": {"cpu": f"{REDIS_CPU_MILLICORES}m", "memory": "512Mi"}, "limits": {"memory": "1Gi"}}


def redis_host(worker: BatchWorkerConfig) -> str:
    return f"{names(worker)['redis']}.{worker.namespace}.svc"


def redis_statefulset(worker: BatchWorkerConfig, placement: dict[str, Any], storage_class: str) -> dict[str, Any]:
    """One Redis with AUTH and an append-only file on a volume of ``storage_class`` (gp3). It
    runs where ``placement`` (nodeSelector, tolerations) puts it: the general-purpose NodePool."""
    n = names(worker)
    return {
        "metadata": {"name": n["redis"], "namespace": worker.namespace, "labels": redis_labels(worker)},
        "spec": {
            "serviceName": n["redis"],
            "replicas": 1,
            "selector": {"matchLabels": redis_labels(worker)},
            "template": {"metadata": {"labels": redis_labels(worker)}, "spec": {
                "nodeSelector": placement["nodeSelector"],
                "tolerations": placement["tolerations"],
                # Redis needs no API token (and has no AWS identity).
                "automountServiceAccountToken": False,
                # fsGroup makes the volume claim writable by the unprivileged user.
                "securityContext": pod_security.pod_security_context(),
                "containers": [{
                    "name": "redis",
                    "image": versions.REDIS_IMAGE,
                    # The password comes from the Secret through the environment, never argv literals.
                    "command": ["sh", "-c", 'exec redis-server --requirepass "$REDIS_PASSWORD" --appendonly yes '
                                            '--dir /data --protected-mode yes'],
                    "env": [{"name": "REDIS_PASSWORD", "valueFrom": {"secretKeyRef": {"name": n["secret"], "key": PASSWORD_KEY}}}],
                    "ports": [{"name": "redis", "containerPort": REDIS_PORT}],
                    "readinessProbe": {"exec": {"command": ["sh", "-c", 'redis-cli -a "$REDIS_PASSWORD" --no-auth-warning ping | grep -q PONG']},
                                       "periodSeconds": 10},
                    "livenessProbe": {"tcpSocket": {"port": "redis"}, "periodSeconds": 20},
                    "resources": REDIS_RESOURCES,
                    "securityContext": pod_security.container_security_context(),
                    # /data (the claim) is the only path Redis writes: the append-only file and
                    # the RDB snapshots with their temp files (--dir /data).
                    "volumeMounts": [{"name": "data", "mountPath": "/data"}],
                }],
            }},
            "volumeClaimTemplates": [{
                "metadata": {"name": "data"},
                "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": storage_class,
                         "resources": {"requests": {"storage": f"{worker.redis_storage_gib}Gi"}}},
            }],
        },
    }


def redis_service(worker: BatchWorkerConfig) -> dict[str, Any]:
    return {
        "metadata": {"name": names(worker)["redis"], "namespace": worker.namespace, "labels": redis_labels(worker)},
        "spec": {"type": "ClusterIP", "selector": redis_labels(worker),
                 "ports": [{"name": "redis", "port": REDIS_PORT, "targetPort": "redis"}]},
    }


def network_policy(worker: BatchWorkerConfig) -> dict[str, Any]:
    """Only the workers (and KEDA, which reads the list length) and the producers' namespaces
    reach Redis."""
    sources: list[dict[str, Any]] = [{"podSelector": {"matchLabels": worker_labels(worker)}}]
    reach = sorted({*worker.producer_namespaces, "keda"})
    sources.append({"namespaceSelector": {"matchExpressions": [
        {"key": "kubernetes.io/metadata.name", "operator": "In", "values": reach}]}})
    return {
        "metadata": {"name": names(worker)["policy"], "namespace": worker.namespace},
        "spec": {"podSelector": {"matchLabels": redis_labels(worker)}, "policyTypes": ["Ingress"],
                 "ingress": [{"from": sources, "ports": [{"protocol": "TCP", "port": REDIS_PORT}]}]},
    }


def trigger_authentication(worker: BatchWorkerConfig) -> dict[str, Any]:
    secret = worker.redis.password_secret if worker.redis else None
    return {
        "metadata": {"name": names(worker)["auth"], "namespace": worker.namespace},
        "spec": {"secretTargetRef": [{"parameter": "password",
                                      "name": secret.name if secret else names(worker)["secret"],
                                      "key": secret.key if secret else PASSWORD_KEY}]},
    }


def _affinity(worker: BatchWorkerConfig, tier: GpuTier) -> dict[str, Any]:
    tier_term = {"key": labels.TIER, "operator": "In", "values": [tier.name]}
    if worker.capacity == "spotPreferred":
        return {"nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [{"matchExpressions": [tier_term]}]},
            "preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 100, "preference": {"matchExpressions": [
                {"key": labels.CAPACITY_TYPE, "operator": "In", "values": ["spot"]}]}}]}}
    capacity = "spot" if worker.capacity == "spotOnly" else "on-demand"
    return {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [{"matchExpressions": [
        tier_term, {"key": labels.CAPACITY_TYPE, "operator": "In", "values": [capacity]}]}]}}}


def _worker_env(worker: BatchWorkerConfig) -> list[dict[str, Any]]:
    env: list[dict[str, Any]] = [{"name": "QUEUE_NAME", "value": worker.queue},
                                 {"name": "PROCESSING_LIST", "value": f"{worker.queue}:processing"}]
    if worker.redis is None:
        env.append({"name": "REDIS_URL", "valueFrom": {"secretKeyRef": {"name": names(worker)["secret"], "key": URL_KEY}}})
    else:
        r = worker.redis
        env += [
            {"name": "REDIS_ADDRESS", "valueFrom": {"secretKeyRef": {"name": r.address_secret.name, "key": r.address_secret.key}}},
            {"name": "REDIS_PASSWORD", "valueFrom": {"secretKeyRef": {"name": r.password_secret.name, "key": r.password_secret.key}}},
            {"name": "REDIS_TLS", "value": "true" if r.tls else "false"},
        ]
    if worker.model is not None:
        env += [{"name": "MODEL_PATH", "value": cache.model_path(worker.model)}, {"name": "HF_HUB_OFFLINE", "value": "1"}]
    return env


def _worker_container(worker: BatchWorkerConfig, scratch_mounts: list[dict[str, Any]]) -> dict[str, Any]:
    gpus = str(worker.gpus_per_job)
    return {
        "name": "worker",
        "image": worker.image,
        "env": [*_worker_env(worker), {"name": "HOME", "value": WORKER_HOME},
                {"name": "XDG_CACHE_HOME", "value": f"{WORKER_HOME}/.cache"}, {"name": "TMPDIR", "value": "/tmp"}],
        "resources": {"requests": {"cpu": str(worker.cpu_per_job), "memory": f"{worker.memory_gib_per_job}Gi",
                                   labels.GPU_RESOURCE: gpus},
                      "limits": {"memory": f"{worker.memory_gib_per_job}Gi", labels.GPU_RESOURCE: gpus}},
        "securityContext": pod_security.container_security_context(),
        "volumeMounts": scratch_mounts,
    }


def scaled_job(worker: BatchWorkerConfig, tier: GpuTier, *, region: str) -> dict[str, Any]:
    n = names(worker)
    scratch_mounts = [{"name": v, "mountPath": path} for v, (path, _) in WORKER_SCRATCH.items()]
    container = _worker_container(worker, scratch_mounts)
    pod: dict[str, Any] = {
        "serviceAccountName": n["service_account"],
        # The worker talks to Redis and (through Pod Identity) to S3, never to the API server.
        "automountServiceAccountToken": False,
        "securityContext": pod_security.pod_security_context(),
        "restartPolicy": "OnFailure",
        "enableServiceLinks": False,
        "containers": [container],
        "tolerations": [{"key": labels.GPU_TAINT_KEY, "operator": "Exists", "effect": "NoSchedule"}],
        "affinity": _affinity(worker, tier),
        "volumes": [{"name": v, "emptyDir": {"sizeLimit": size}} for v, (_, size) in WORKER_SCRATCH.items()],
    }
    if worker.model is not None:
        pod["initContainers"] = cache.init_containers(worker.model, HOST_CACHE, region=region)
        pod["volumes"] += cache.volumes(HOST_CACHE)
        container["volumeMounts"] = [{"name": cache.VOLUME, "mountPath": cache.MOUNT, "readOnly": True}, *scratch_mounts]
    trigger_meta: dict[str, str] = {
        "listName": worker.queue,
        "listLength": str(worker.list_length),
        "activationListLength": str(worker.activation_list_length),
        "databaseIndex": "0",
    }
    if worker.redis is None:
        trigger_meta["address"] = f"{redis_host(worker)}:{REDIS_PORT}"
    else:
        trigger_meta["addressFromEnv"] = "REDIS_ADDRESS"
        trigger_meta["enableTLS"] = "true" if worker.redis.tls else "false"
    return {
        "metadata": {"name": n["job"], "namespace": worker.namespace, "labels": worker_labels(worker)},
        "spec": {
            "jobTargetRef": {
                "parallelism": 1,
                "completions": 1,
                "backoffLimit": worker.backoff_limit,
                "activeDeadlineSeconds": worker.active_deadline_seconds,
                "template": {"metadata": {"labels": worker_labels(worker)}, "spec": pod},
            },
            "pollingInterval": worker.polling_interval_seconds,
            "minReplicaCount": worker.min_replicas,
            "maxReplicaCount": worker.max_replicas,
            "successfulJobsHistoryLimit": 5,
            "failedJobsHistoryLimit": 10,
            # Workers move an item to their processing list as they start it, so the list
            # length counts only work nobody holds: "accurate" subtracts pending jobs, not
            # running ones, and long jobs do not make KEDA start duplicates.
            "scalingStrategy": {"strategy": "accurate"},
            "triggers": [{"type": "redis", "name": "queue", "metadata": trigger_meta,
                          "authenticationRef": {"name": n["auth"]}}],
        },
    }
