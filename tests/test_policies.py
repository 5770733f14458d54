"""Every rule fires on what breaks it and stays quiet on what does not; the pack's plumbing."""

from __future__ import annotations

import copy
import json
import subprocess
import sys

import pytest

from policies.docs import render as render_docs
from policies.offline import Resource, evaluate, policy_config
from policies.rules import POLICIES, RULES
from tests.conftest import REPO, STACKS, run_synth
from tests.levers_cases import LEVER_CASES
from tests.router_policy_cases import ROUTING_CASES

DEPLOYMENT = "kubernetes:apps/v1:Deployment"
SO = "kubernetes:keda.sh/v1alpha1:ScaledObject"
HPA = "kubernetes:autoscaling/v2:HorizontalPodAutoscaler"
PDB = "kubernetes:policy/v1:PodDisruptionBudget"
NODEPOOL = "kubernetes:karpenter.sh/v1:NodePool"
NODECLASS = "kubernetes:karpenter.k8s.aws/v1:EC2NodeClass"
SERVICE = "kubernetes:core/v1:Service"
MONITOR = "kubernetes:monitoring.coreos.com/v1:ServiceMonitor"
PROM = "http://kps-prometheus.monitoring.svc:9090"


def _urn(t: str, i: int) -> str:
    return f"urn:pulumi:s::p::{t}::r{i}"


def violations(name: str, resources: list[tuple], environment: str | tuple[str, dict] = "prod") -> list[str]:
    """Run one policy the way the engine would: props behind the CrossGuard proxy. A resource is
    ``(type, props)`` or ``(type, props, {"options": {...}, "depends_on": [index, ...]})``;
    ``environment`` may carry extra rule config: ``("prod", {"realDeploy": True})``."""
    policy = next(p for p in POLICIES if p.name == name)
    rule = next(r for r in RULES if r.name == name)
    env, extra = (environment, {}) if isinstance(environment, str) else environment
    res = []
    for i, (t, props, *more) in enumerate(resources):
        meta = more[0] if more else {}
        deps = [_urn(resources[j][0], j) for j in meta.get("depends_on", ())]
        res.append(Resource(t, _urn(t, i), f"r{i}", props, props, None, deps, meta.get("options", {})))
    cfg = {rule.name: {**policy_config([rule], env).get(rule.name, {}), **extra}}
    return [v["message"] for v in evaluate([policy], res, cfg)["violations"]]


def deployment(name="chat", replicas=2, **changes) -> dict:
    """A GPU Deployment that passes every rule; tests break one thing at a time."""
    container = {
        "name": "vllm", "image": "vllm/vllm-openai:v0.33.0", "command": ["vllm", "serve"],
        "args": ["/models/m", "--shutdown-timeout", "60"],
        "resources": {"requests": {"nvidia.com/gpu": "1", "cpu": "4", "memory": "16Gi"},
                      "limits": {"nvidia.com/gpu": "1", "memory": "16Gi"}},
        "lifecycle": {"preStop": {"sleep": {"seconds": 15}}},
        "startupProbe": {"httpGet": {"path": "/health", "port": 8000}, "periodSeconds": 10, "failureThreshold": 40},
        "readinessProbe": {"httpGet": {"path": "/health", "port": 8000}},
    }
    spec = {
        "containers": [container],
        "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
        "terminationGracePeriodSeconds": 85,
        "nodeSelector": {"platform.gpu/tier": "l40s"},
        "topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone",
                                       "whenUnsatisfiable": "ScheduleAnyway", "labelSelector": {"matchLabels": {"app": name}}}],
        "volumes": [{"name": "cache", "hostPath": {"path": "/mnt/k8s-disks/0/models"}}],
    }
    obj = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": "inference"},
           "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                    "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
                    "template": {"metadata": {"labels": {"app": name}}, "spec": spec}}}
    obj = copy.deepcopy(obj)
    for path, value in changes.items():
        node = obj
        *head, last = path.split("__")
        for part in head:
            node = node[int(part)] if part.isdigit() else node[part]
        if value is None:
            node.pop(last, None)
        else:
            node[int(last) if last.isdigit() else last] = value
    return obj


C0 = "spec__template__spec__containers__0"
POD = "spec__template__spec"


def scaled_object(target="chat", **spec) -> dict:
    base = {"scaleTargetRef": {"name": target}, "minReplicaCount": 0, "maxReplicaCount": 2,
            "triggers": [{"type": "prometheus", "name": "waiting",
                          "metadata": {"serverAddress": PROM, "query": "sum(vllm:num_requests_waiting)", "threshold": "5"}}]}
    return {"metadata": {"name": f"{target}-so", "namespace": "inference"}, "spec": {**base, **spec}}


def nodepool(name="l40s-on-demand", limit="2", **spec) -> dict:
    base = {
        "limits": {"nvidia.com/gpu": limit},
        "disruption": {"consolidateAfter": "10m", "budgets": [{"nodes": "1"}]},
        "template": {"metadata": {"labels": {"platform.gpu/tier": "l40s", "nvidia.com/gpu.present": "true"}},
                     "spec": {"expireAfter": "720h", "taints": [{"key": "nvidia.com/gpu", "value": "true", "effect": "NoSchedule"}],
                              "requirements": [{"key": "karpenter.sh/capacity-type", "operator": "In", "values": ["on-demand"]}]}},
    }
    return {"metadata": {"name": name}, "spec": {**base, **spec}}


def pool_selecting(requirements: list[dict], guarded: bool = True) -> dict:
    """A NodePool that names GPUs nowhere but in its instance requirements (no
    nvidia.com/gpu.present label). Guarded: taint, GPU limit, 10m consolidation, budget and
    expireAfter; unguarded: none of them, and 30 s consolidation."""
    if not guarded:
        return {"metadata": {"name": "selected"}, "spec": {
            "disruption": {"consolidateAfter": "30s"},
            "template": {"metadata": {"labels": {"platform.gpu/tier": "x"}}, "spec": {"requirements": requirements}}}}
    pool = nodepool("selected")
    pool["spec"]["template"]["metadata"]["labels"] = {"platform.gpu/tier": "x"}
    pool["spec"]["template"]["spec"]["requirements"] = requirements
    return pool


FAMILY_G6E = [{"key": "karpenter.k8s.aws/instance-family", "operator": "In", "values": ["g6e"]}]
CATEGORY_GP = [{"key": "karpenter.k8s.aws/instance-category", "operator": "In", "values": ["g", "p"]}]
# A GPU outside the catalog (T4, g4dn): recognised by the GPU label it requires.
GPU_NAME_T4 = [{"key": "karpenter.k8s.aws/instance-gpu-name", "operator": "In", "values": ["t4"]}]


def nodeclass(**spec) -> dict:
    base = {"amiSelectorTerms": [{"alias": "al2023@v20261020"}],
            "metadataOptions": {"httpTokens": "required"},
            "blockDeviceMappings": [{"deviceName": "/dev/xvda", "ebs": {"volumeSize": "100Gi", "encrypted": True}}]}
    return {"metadata": {"name": "l40s"}, "spec": {**base, **spec}}


def monitored(name="chat") -> list[tuple[str, dict]]:
    return [(SERVICE, {"metadata": {"name": name, "namespace": "inference", "labels": {"app": name}},
                       "spec": {"selector": {"app": name}}}),
            (MONITOR, {"metadata": {"name": name, "namespace": "inference"}, "spec": {"selector": {"matchLabels": {"app": name}}}})]


def pdb(max_unavailable=1) -> tuple[str, dict]:
    return PDB, {"metadata": {"name": "chat", "namespace": "inference"},
                 "spec": {"maxUnavailable": max_unavailable, "selector": {"matchLabels": {"app": "chat"}}}}


def typed_pool(*types: str, limit: str = "8") -> dict:
    """An on-demand l40s-labelled GPU pool that may launch only these instance types."""
    pool = nodepool("typed", limit=limit)
    pool["spec"]["template"]["spec"]["requirements"] = [
        {"key": "karpenter.sh/capacity-type", "operator": "In", "values": ["on-demand"]},
        {"key": "node.kubernetes.io/instance-type", "operator": "In", "values": list(types)}]
    return pool


def timeouts(**ops: str) -> dict:
    return {"options": {"customTimeouts": ops}}


def ready_within(seconds: int, **annotations: str) -> dict:
    return deployment(metadata={"name": "chat", "namespace": "inference",
                                "annotations": {"platform.gpu/ready-within-seconds": str(seconds), **annotations}})


def on_demand() -> dict:
    return deployment(**{f"{POD}__nodeSelector": {"platform.gpu/tier": "l40s", "karpenter.sh/capacity-type": "on-demand"}})


def with_service_account(name: str) -> dict:
    return deployment(**{f"{POD}__serviceAccountName": name})


ASSOCIATION = ("aws:eks/podIdentityAssociation:PodIdentityAssociation",
               {"clusterName": "c", "namespace": "inference", "serviceAccount": "chat", "roleArn": "arn:aws:iam::1:role/r"})
STORAGE_CLASS = "kubernetes:storage.k8s.io/v1:StorageClass"
GP3_CSI = (STORAGE_CLASS, {"metadata": {"name": "gp3"}, "provisioner": "ebs.csi.aws.com", "volumeBindingMode": "WaitForFirstConsumer",
                           "parameters": {"type": "gp3", "encrypted": "true"}})
EBS_ADDON = ("aws:eks/addon:Addon", {"addonName": "aws-ebs-csi-driver", "clusterName": "c"})


def pvc(storage_class: str | None) -> tuple[str, dict]:
    spec: dict = {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "10Gi"}}}
    if storage_class is not None:
        spec["storageClassName"] = storage_class
    return "kubernetes:core/v1:PersistentVolumeClaim", {"metadata": {"name": "data", "namespace": "inference"}, "spec": spec}


def kps_release(storage_class: str) -> tuple[str, dict]:
    claim = {"volumeClaimTemplate": {"spec": {"storageClassName": storage_class, "resources": {"requests": {"storage": "50Gi"}}}}}
    return "kubernetes:helm.sh/v3:Release", {"name": "kps", "chart": "kube-prometheus-stack", "namespace": "monitoring",
                                            "values": {"prometheus": {"prometheusSpec": {"storageSpec": claim}}}}


def statefulset_claiming(storage_class: str) -> tuple[str, dict]:
    return "kubernetes:apps/v1:StatefulSet", {
        "metadata": {"name": "redis", "namespace": "batch"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "redis"}},
                 "template": {"metadata": {"labels": {"app": "redis"}}, "spec": {"containers": [{"name": "redis", "image": "redis:7.4"}]}},
                 "volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": {"storageClassName": storage_class}}]}}


def burst_pair(query: str, metric_type: str = "Value", shared_service: bool | None = None) -> list[tuple[str, dict]]:
    """A baseline and a burst Deployment, a ScaledObject on the burst one with one trigger, and
    (optionally) a Service "chat" over both pods or one "chat-burst" over the burst pods only."""
    baseline, burst = deployment("chat-baseline"), deployment("chat-burst", replicas=0)
    for d in (baseline, burst):
        d["spec"]["template"]["metadata"]["labels"]["service"] = "chat"
    so = scaled_object("chat-burst", triggers=[{"type": "prometheus", "name": "kv", "metricType": metric_type,
                                                "metadata": {"serverAddress": PROM, "query": query, "threshold": "0.8"}}])
    out = [(DEPLOYMENT, baseline), (DEPLOYMENT, burst), (SO, so)]
    if shared_service is not None:
        name, selector = ("chat", {"service": "chat"}) if shared_service else ("chat-burst", {"app": "chat-burst"})
        out.append((SERVICE, {"metadata": {"name": name, "namespace": "inference"}, "spec": {"selector": selector}}))
    return out


def system_deployment(replicas: int) -> dict:
    return {"metadata": {"name": "sys", "namespace": "kube-system"},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "sys"}}, "template": {
                "metadata": {"labels": {"app": "sys"}},
                "spec": {"nodeSelector": {"platform.gpu/pool": "system"},
                         "tolerations": [{"key": "CriticalAddonsOnly", "operator": "Exists", "effect": "NoSchedule"}],
                         "containers": [{"name": "c", "image": "c:1", "resources": {"requests": {"cpu": "1", "memory": "1Gi"}}}]}}}}


SYSTEM_GROUP = ("eks:index:ManagedNodeGroup", {"instanceTypes": ["m7i.large"], "labels": {"platform.gpu/pool": "system"},
                                               "scalingConfig": {"minSize": 2, "desiredSize": 2, "maxSize": 3}})
KARPENTER_RELEASE = ("kubernetes:helm.sh/v3:Release", {
    "name": "karpenter", "chart": "oci://public.ecr.aws/karpenter/karpenter", "namespace": "kube-system",
    "values": {"replicas": 2, "controller": {"resources": {"requests": {"cpu": "1", "memory": "1Gi"}}},
               "nodeSelector": {"platform.gpu/pool": "system"}}})


QUEUE_URL = "https://sqs.us-east-1.amazonaws.com/123456789012/q"
DENY = {"Effect": "Deny", "Principal": "*", "Action": "sqs:*", "Resource": "arn:aws:sqs:us-east-1:123456789012:q",
        "Condition": {"Bool": {"aws:SecureTransport": "false"}}}

HUB_RULE = ("aws:ecr/pullThroughCacheRule:PullThroughCacheRule",
            {"ecrRepositoryPrefix": "mirror/docker-hub", "upstreamRegistryUrl": "registry-1.docker.io"})
QUAY_RULE = ("aws:ecr/pullThroughCacheRule:PullThroughCacheRule",
             {"ecrRepositoryPrefix": "mirror/quay", "upstreamRegistryUrl": "quay.io"})
MIRRORED_VLLM = "123456789012.dkr.ecr.us-east-1.amazonaws.com/mirror/docker-hub/vllm/vllm-openai:v0.33.0"
VPC = ("aws:ec2/vpc:Vpc", {"cidrBlock": "10.0.0.0/16"})
S3_GATEWAY = ("aws:ec2/vpcEndpoint:VpcEndpoint", {"serviceName": "com.amazonaws.us-east-1.s3", "vpcEndpointType": "Gateway",
                                                  "routeTableIds": ["rtb-1"]})

# (rule, passing resources, failing resources, fragment of the failure message, environment)
CASES = [
    ("gpu-requests-equal-limits", [(DEPLOYMENT, deployment())],
     [(DEPLOYMENT, deployment(**{f"{C0}__resources__requests__nvidia.com/gpu": "2"}))], "requests 2 and limits 1 differ", "prod"),
    ("gpu-cpu-memory-requests", [(DEPLOYMENT, deployment())],
     [(DEPLOYMENT, deployment(**{f"{C0}__resources__requests__cpu": None}))], "no cpu request", "prod"),
    ("gpu-startup-probe", [(DEPLOYMENT, deployment())],
     [(DEPLOYMENT, deployment(**{f"{C0}__startupProbe__failureThreshold": 6}))], "allows 60s", "prod"),
    ("gpu-readiness-probe", [(DEPLOYMENT, deployment())],
     [(DEPLOYMENT, deployment(**{f"{C0}__readinessProbe": None}))], "no readiness probe", "prod"),
    ("gpu-prestop-hook", [(DEPLOYMENT, deployment())],
     [(DEPLOYMENT, deployment(**{f"{C0}__lifecycle": None}))], "no preStop hook", "prod"),
    ("gpu-termination-grace", [(DEPLOYMENT, deployment())],
     [(DEPLOYMENT, deployment(**{f"{POD}__terminationGracePeriodSeconds": 70}))], "< preStop + drain = 75", "prod"),
    ("gpu-termination-grace", [(DEPLOYMENT, deployment(metadata={"name": "chat", "namespace": "inference",
                                                                 "annotations": {"platform.gpu/p99-generation-seconds": "40"}}))],
     [(DEPLOYMENT, deployment(metadata={"name": "chat", "namespace": "inference",
                                        "annotations": {"platform.gpu/p99-generation-seconds": "45"}}))],
     "< 2 x p99 generation time (90s)", "prod"),
    ("gpu-spot-drain-fits-notice",
     [(DEPLOYMENT, deployment(**{f"{POD}__terminationGracePeriodSeconds": 200, f"{C0}__args": ["--shutdown-timeout", "180"],
                                 f"{POD}__nodeSelector": {"karpenter.sh/capacity-type": "on-demand"}}))],
     [(DEPLOYMENT, deployment(**{f"{POD}__terminationGracePeriodSeconds": 200, f"{C0}__args": ["--shutdown-timeout", "180"]}))],
     "drain takes 200s and the spot notice is 120s", "prod"),
    ("gpu-taint-toleration", [(DEPLOYMENT, deployment())],
     [(DEPLOYMENT, deployment(**{f"{POD}__tolerations": []}))], "does not tolerate", "prod"),
    ("image-tag-pinned", [(DEPLOYMENT, deployment(**{f"{C0}__image": "r:5000/vllm@sha256:" + "a" * 64}))],
     [(DEPLOYMENT, deployment(**{f"{C0}__image": "r:5000/vllm"}))], "'r:5000/vllm' is untagged", "prod"),
    ("gpu-weights-on-local-storage", [(DEPLOYMENT, deployment())],
     [(DEPLOYMENT, deployment(**{f"{POD}__volumes": [{"name": "w", "csi": {"driver": "efs.csi.aws.com"}}]}))],
     "network storage (efs.csi.aws.com)", "prod"),
    ("gpu-rolling-update-keeps-capacity", [(DEPLOYMENT, deployment())],
     [(DEPLOYMENT, deployment(spec__strategy={"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1}}))],
     "maxUnavailable is 1", "prod"),
    ("scaling-replica-bounds", [(SO, scaled_object())], [(SO, scaled_object(minReplicaCount=3))],
     "min replicas 3 > max replicas 2", "dev"),
    ("keda-prometheus-single-series", [(SO, scaled_object())],
     [(SO, scaled_object(triggers=[{"type": "prometheus", "metadata": {"serverAddress": PROM,
                                                                       "query": "sum(vllm:num_requests_waiting) by (pod)", "threshold": "5"}}]))],
     "may return several series", "dev"),
    ("vllm-current-metric-names", [(SO, scaled_object())],
     [(SO, scaled_object(triggers=[{"type": "prometheus", "metadata": {"serverAddress": PROM,
                                                                       "query": "max(vllm:gpu_cache_usage_perc)", "threshold": "1"}}]))],
     "vllm:gpu_cache_usage_perc was removed", "dev"),
    ("keda-platform-prometheus", [(SO, scaled_object())],
     [(SO, scaled_object(triggers=[{"type": "prometheus", "metadata": {"serverAddress": "http://prometheus:9090",
                                                                       "query": "sum(x)", "threshold": "1"}}]))],
     "not the platform's Prometheus", "dev"),
    ("karpenter-gpu-nodepool", [(NODEPOOL, nodepool())],
     [(NODEPOOL, nodepool(disruption={"consolidateAfter": "30s", "budgets": [{"nodes": "1"}]}))], "consolidateAfter 30s", "prod"),
    ("karpenter-gpu-nodepool", [(NODEPOOL, nodepool())], [(NODEPOOL, nodepool(limits={}))], "no limits[nvidia.com/gpu]", "prod"),
    ("karpenter-gpu-nodepool", [(NODEPOOL, pool_selecting(FAMILY_G6E))], [(NODEPOOL, pool_selecting(FAMILY_G6E, guarded=False))],
     "selected (a GPU pool: its requirements admit GPU instance types g6e.xlarge, g6e.2xlarge, g6e.4xlarge and 3 more): "
     "no nvidia.com/gpu:NoSchedule taint", "prod"),
    ("karpenter-gpu-nodepool", [(NODEPOOL, pool_selecting(CATEGORY_GP))], [(NODEPOOL, pool_selecting(CATEGORY_GP, guarded=False))],
     "and 18 more): no limits[nvidia.com/gpu]", "prod"),
    ("karpenter-gpu-nodepool", [(NODEPOOL, pool_selecting(GPU_NAME_T4))], [(NODEPOOL, pool_selecting(GPU_NAME_T4, guarded=False))],
     "(a GPU pool: it requires karpenter.k8s.aws/instance-gpu-name): consolidateAfter 30s", "prod"),
    ("karpenter-nodeclass-hardening", [(NODECLASS, nodeclass())],
     [(NODECLASS, nodeclass(amiSelectorTerms=[{"alias": "al2023@latest"}]))], "al2023@latest in prod", "prod"),
    ("karpenter-nodeclass-hardening", [(NODECLASS, nodeclass())],
     [(NODECLASS, nodeclass(metadataOptions={"httpTokens": "optional"}))], "IMDSv1 allowed", "prod"),
    ("eks-secrets-encryption", [("eks:index:Cluster", {"encryptionConfigKeyArn": "arn:aws:kms:us-east-1:1:key/k"})],
     [("eks:index:Cluster", {})], "does not encrypt", "prod"),
    ("eks-control-plane-logs", [("eks:index:Cluster", {"enabledClusterLogTypes": ["api", "audit", "authenticator"]})],
     [("eks:index:Cluster", {"enabledClusterLogTypes": ["api"]})], "audit, authenticator are off", "prod"),
    ("eks-no-open-public-endpoint", [("eks:index:Cluster", {"publicAccessCidrs": ["198.51.100.0/24"]})],
     [("eks:index:Cluster", {"endpointPublicAccess": True})], "public to 0.0.0.0/0", "prod"),
    *[("eks-no-open-public-endpoint", [("eks:index:Cluster", {"publicAccessCidrs": good})],
       [("eks:index:Cluster", {"publicAccessCidrs": bad})], fragment, "prod") for good, bad, fragment in [
        (["198.51.100.0/24"], ["0.0.0.0/00"], "public to all of IPv4 (0.0.0.0/00 covers 0.0.0.0/0)"),
        (["198.51.100.0/25", "198.51.100.128/25"], ["0.0.0.0/1", "128.0.0.0/1"], "all of IPv4 (0.0.0.0/1, 128.0.0.0/1 together cover 0.0.0.0/0)"),
        (["2001:db8::/32"], ["198.51.100.0/24", "::/0"], "public to all of IPv6 (::/0 covers ::/0)"),
        # Exactly one /8 is allowed; anything wider is the internet (policies/cidrs.py).
        (["10.0.0.0/8"], ["10.0.0.0/7"], "public to 33,554,432 IPv4 addresses (10.0.0.0/7), more than one /8"),
        (["10.0.0.0/9", "10.128.0.0/9"], ["10.0.0.0/8", "172.16.0.0/12"], "more than one /8"),
        (["2600:1f18::/32"], ["2000::/3"], "IPv6 addresses (2000::/3), more than one /16"),
        (["198.51.100.7/24"], ["0.0.0.0/33"], "entry '0.0.0.0/33' is not a CIDR"),
        (["198.51.100.7/32"], ["198.51.100.7"], "entry '198.51.100.7' is not a CIDR"),
    ]],
    ("eks-no-open-public-endpoint", [("aws:eks/cluster:Cluster", {"vpcConfig": {"publicAccessCidrs": ["203.0.113.0/24"]}})],
     [("aws:eks/cluster:Cluster", {"vpcConfig": {"publicAccessCidrs": ["128.0.0.0/1", "0.0.0.0/1"]}})],
     "all of IPv4 (128.0.0.0/1, 0.0.0.0/1 together cover 0.0.0.0/0)", "prod"),
    ("eks-endpoint-cidrs-not-documentation", [("eks:index:Cluster", {"publicAccessCidrs": ["198.51.100.0/24", "52.94.0.0/22"]})],
     [("eks:index:Cluster", {"publicAccessCidrs": ["198.51.100.0/24", "192.0.2.128/25", "2001:db8:1::/48"]})],
     "publicAccessCidrs 198.51.100.0/24, 192.0.2.128/25, 2001:db8:1::/48 are documentation-only ranges", "dev"),
    ("sqs-encrypted", [("aws:sqs/queue:Queue", {"sqsManagedSseEnabled": True})], [("aws:sqs/queue:Queue", {"name": "q"})],
     "not encrypted at rest", "prod"),
    ("iam-no-star-on-star",
     [("aws:iam/policy:Policy", {"policy": json.dumps({"Statement": [{"Effect": "Allow", "Action": "sqs:*", "Resource": "arn:aws:sqs:::q"}]})})],
     [("aws:iam/policy:Policy", {"policy": json.dumps({"Statement": [{"Sid": "All", "Effect": "Allow", "Action": ["*"], "Resource": "*"}]})})],
     "statement All allows every action", "prod"),
    ("scaling-not-cpu-only-for-gpu", [(DEPLOYMENT, deployment()), (SO, scaled_object())],
     [(DEPLOYMENT, deployment()), (SO, scaled_object(triggers=[{"type": "cpu", "metricType": "Utilization", "metadata": {"value": "60"}}]))],
     "on CPU/memory only", "prod"),
    ("scaling-gpu-scale-down-stabilization", [(DEPLOYMENT, deployment()), (SO, scaled_object(cooldownPeriod=300))],
     [(DEPLOYMENT, deployment()), (SO, scaled_object(cooldownPeriod=300, advanced={"horizontalPodAutoscalerConfig": {
         "behavior": {"scaleDown": {"stabilizationWindowSeconds": 60}}}}))], "stabilization 60s < 300s for prod", "prod"),
    ("scaling-gpu-scale-down-stabilization", [(DEPLOYMENT, deployment()), (SO, scaled_object(cooldownPeriod=120))],
     [(DEPLOYMENT, deployment()), (SO, scaled_object(cooldownPeriod=30))], "cooldownPeriod 30s < 60s", "dev"),
    ("scaling-scale-to-zero",
     [(DEPLOYMENT, deployment("chat-baseline")), (DEPLOYMENT, deployment("chat-burst", replicas=0)),
      (SO, {**scaled_object("chat-burst"), "metadata": {"name": "so", "namespace": "inference",
                                                        "annotations": {"platform.gpu/baseline-deployment": "chat-baseline"}}})],
     [(DEPLOYMENT, deployment("chat-burst", replicas=0)), (SO, scaled_object("chat-burst"))], "scale to zero in prod", "prod"),
    ("scaling-scale-to-zero",
     [(DEPLOYMENT, deployment()), (SO, scaled_object(triggers=[{"type": "prometheus", "metadata": {
         "serverAddress": PROM, "query": "sum(vllm:num_requests_running)", "threshold": "64"}}]))],
     [(DEPLOYMENT, deployment()), (SO, scaled_object())], "without a keep-alive trigger", "dev"),
    ("scaling-one-autoscaler-per-workload", [(DEPLOYMENT, deployment()), (SO, scaled_object())],
     [(DEPLOYMENT, deployment()), (SO, scaled_object()),
      (HPA, {"metadata": {"name": "h", "namespace": "inference"},
             "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "chat"}, "maxReplicas": 2}})], "both scale", "dev"),
    ("scaling-target-exists", [(DEPLOYMENT, deployment()), (SO, scaled_object())],
     [(DEPLOYMENT, deployment()), (SO, scaled_object("chta"))], "targets Deployment inference/chta", "dev"),
    ("availability-prod-gpu-pdb", [(DEPLOYMENT, deployment()), pdb()], [(DEPLOYMENT, deployment())], "without a PodDisruptionBudget", "prod"),
    ("availability-prod-gpu-pdb", [(DEPLOYMENT, deployment()), pdb()], [(DEPLOYMENT, deployment()), pdb(0)], "allows no disruption", "prod"),
    ("availability-prod-zone-spread", [(DEPLOYMENT, deployment())],
     [(DEPLOYMENT, deployment(**{f"{POD}__topologySpreadConstraints": []}))], "not spread across zones", "prod"),
    ("capacity-covers-max-scale", [(DEPLOYMENT, deployment()), (NODEPOOL, nodepool(limit="2"))],
     [(DEPLOYMENT, deployment()), (SO, scaled_object(maxReplicaCount=6)), (NODEPOOL, nodepool(limit="4"))],
     "need 6 GPUs but those pools are limited to 4", "prod"),
    ("vllm-workload-scraped", [(DEPLOYMENT, deployment()), *monitored()], [(DEPLOYMENT, deployment()), *monitored("other")],
     "no ServiceMonitor or PodMonitor", "prod"),
    ("gpu-pod-schedulable", [(DEPLOYMENT, deployment()), (NODEPOOL, nodepool(limit="2"))],
     [(DEPLOYMENT, deployment(**{f"{POD}__nodeSelector": {"platform.gpu/tier": "h100"}})), (NODEPOOL, nodepool())],
     "no GPU NodePool can host its pods (l40s-on-demand: it requires platform.gpu/tier in ['h100'], the pool offers ['l40s'])", "prod"),
    ("gpu-pod-schedulable", [(DEPLOYMENT, deployment()), (NODEPOOL, nodepool())],
     [(DEPLOYMENT, deployment(**{f"{POD}__tolerations": []})), (NODEPOOL, nodepool())],
     "it does not tolerate nvidia.com/gpu:NoSchedule", "prod"),
    # g6e.xlarge: 4 vCPU, 3.5 allocatable; g6e.2xlarge: 8 vCPU.
    ("gpu-pod-schedulable", [(DEPLOYMENT, deployment(**{f"{C0}__resources__requests__cpu": "6"})), (NODEPOOL, typed_pool("g6e.xlarge", "g6e.2xlarge"))],
     [(DEPLOYMENT, deployment(**{f"{C0}__resources__requests__cpu": "6"})), (NODEPOOL, typed_pool("g6e.xlarge"))],
     "one pod requests 1 GPU, 6 CPU, 16.0 GiB and no instance type it may launch (g6e.xlarge) has that much allocatable", "prod"),
    *[("storage-class-provisioned", good, bad, fragment, "prod") for good, bad, fragment in [
        ([GP3_CSI, EBS_ADDON, pvc("gp3")], [GP3_CSI, pvc("gp3")],
         "PersistentVolumeClaim data: StorageClass 'gp3' (ebs.csi.aws.com) needs the aws-ebs-csi-driver driver"),
        ([GP3_CSI, EBS_ADDON, pvc("gp3")], [EBS_ADDON, pvc("gp3")],
         "StorageClass 'gp3' is neither created by this stack nor one EKS creates (gp2)"),
        # No class named: the EKS gp2 class, in-tree, served by the CSI driver since 1.23.
        ([EBS_ADDON, pvc(None)], [pvc(None)], "StorageClass 'gp2' (kubernetes.io/aws-ebs) needs the aws-ebs-csi-driver driver"),
        ([GP3_CSI, EBS_ADDON, kps_release("gp3")], [EBS_ADDON, kps_release("gp3")],
         "Helm release kps value prometheus.prometheusSpec.storageSpec: StorageClass 'gp3' is neither created"),
        ([GP3_CSI, EBS_ADDON, statefulset_claiming("gp3")], [GP3_CSI, statefulset_claiming("gp3")],
         "StatefulSet redis claim data: StorageClass 'gp3' (ebs.csi.aws.com) needs"),
        ([GP3_CSI, EBS_ADDON], [(STORAGE_CLASS, {"metadata": {"name": "old"}, "provisioner": "kubernetes.io/aws-ebs",
                                                 "parameters": {"type": "gp3"}}), EBS_ADDON],
         "StorageClass old: the in-tree provisioner kubernetes.io/aws-ebs cannot create gp3 volumes"),
    ]],
    # deployment(): startup budget 10 x 40 = 400 s, 2 replicas, maxSurge 1, maxUnavailable 0: 2 steps.
    ("await-timeout-covers-rollout", [(DEPLOYMENT, deployment(), timeouts(update="14m"))], [(DEPLOYMENT, deployment())],
     "Deployment inference/chat: update timeout 600s (the default) < worst-case readiness 2 step(s) x 400s = 800s "
     "(startup probe budget 400s; 2 replicas)", "prod"),
    ("await-timeout-covers-rollout", [(DEPLOYMENT, ready_within(900), timeouts(create="15m", update="30m"))],
     [(DEPLOYMENT, ready_within(900), timeouts(create="15m", update="20m"))],
     "update timeout 1200s (customTimeouts) < worst-case readiness 2 step(s) x 900s = 1800s (platform.gpu/ready-within-seconds 900s",
     "prod"),
    ("await-timeout-covers-rollout", [(DEPLOYMENT, ready_within(900, **{"pulumi.com/skipAwait": "true"}))],
     [(DEPLOYMENT, ready_within(900, **{"pulumi.com/timeoutSeconds": "1200"}))],
     "update timeout 1200s (pulumi.com/timeoutSeconds) < worst-case readiness 2 step(s) x 900s = 1800s", "prod"),
    # An autoscaler's max is the replica count a rollout may meet: 6 replicas, 6 steps.
    ("await-timeout-covers-rollout", [(DEPLOYMENT, deployment(replicas=0), timeouts(update="45m")), (SO, scaled_object(maxReplicaCount=6))],
     [(DEPLOYMENT, deployment(replicas=0), timeouts(update="30m")), (SO, scaled_object(maxReplicaCount=6))],
     "update timeout 1800s (customTimeouts) < worst-case readiness 6 step(s) x 400s = 2400s", "prod"),
    # 2 replicas x 1 GPU + 1 surge + the largest node the pool may launch (g6e.12xlarge, 4 GPUs) = 7.
    ("capacity-on-demand-headroom", [(DEPLOYMENT, on_demand()), (NODEPOOL, typed_pool("g6e.xlarge", "g6e.12xlarge", limit="7"))],
     [(DEPLOYMENT, on_demand()), (NODEPOOL, typed_pool("g6e.xlarge", "g6e.12xlarge", limit="6"))],
     "on-demand NodePools typed limit nvidia.com/gpu to 6; the on-demand workloads that land there (chat) need 2 (replicas) "
     "+ 1 (rollout surge) + 4 (one replacement node, g6e.12xlarge) = 7", "prod"),
    ("pod-identity-before-pods", [ASSOCIATION, (DEPLOYMENT, with_service_account("chat"), {"depends_on": [0]})],
     [ASSOCIATION, (DEPLOYMENT, with_service_account("chat"))],
     "Deployment inference/chat runs pods as inference/chat, whose Pod Identity association r0 it does not depend on", "prod"),
    ("pod-identity-before-pods", [ASSOCIATION, (DEPLOYMENT, with_service_account("other"))],
     [ASSOCIATION, ("kubernetes:helm.sh/v3:Release", {"name": "ctl", "chart": "ctl", "namespace": "inference",
                                                      "values": {"serviceAccount": {"name": "chat"}}})],
     "Helm release ctl runs pods as inference/chat", "prod"),
    ("scaling-value-trigger-own-pods", burst_pair('max(vllm:kv_cache_usage_perc{namespace="inference",pod=~"chat-burst-.*"})'),
     burst_pair('max(vllm:kv_cache_usage_perc{namespace="inference",pod=~"chat-.*"})'),
     "Value trigger kv reads 'max(vllm:kv_cache_usage_perc{namespace=\"inference\",pod=~\"chat-.*\"})', which also covers "
     "the pods of chat-baseline, not only chat-burst's", "prod"),
    ("scaling-value-trigger-own-pods", burst_pair("sum(vllm:num_requests_waiting)", metric_type="AverageValue"),
     burst_pair("max(vllm:kv_cache_usage_perc)"), "also covers the pods of chat-baseline", "prod"),
    ("scaling-value-trigger-own-pods", burst_pair('max(vllm:kv_cache_usage_perc{service="chat-burst"})', shared_service=False),
     burst_pair('max(vllm:kv_cache_usage_perc{service="chat"})', shared_service=True),
     "also covers the pods of chat-baseline", "prod"),
    # m7i.large: 2 vCPU, 1.5 allocatable; minSize 2: 3 CPU.
    ("system-nodes-fit", [SYSTEM_GROUP, (DEPLOYMENT, system_deployment(replicas=2))],
     [SYSTEM_GROUP, (DEPLOYMENT, system_deployment(replicas=4))],
     "system node group r0 (minSize 2 x m7i.large: 3 CPU, 12.4 GiB allocatable) cannot hold the requests pinned to it: 4 CPU", "prod"),
    ("system-nodes-fit", [SYSTEM_GROUP, (DEPLOYMENT, system_deployment(replicas=1)), KARPENTER_RELEASE],
     [SYSTEM_GROUP, (DEPLOYMENT, system_deployment(replicas=2)), KARPENTER_RELEASE],
     "4 CPU, 4.0 GiB (Deployment sys 2 x 1 CPU/1 GiB, karpenter controller 2 x 1 CPU/1 GiB...)", "prod"),
    ("s3-no-example-buckets", [(DEPLOYMENT, deployment(**{f"{C0}__env": [{"name": "SRC", "value": "s3://acme-models/llama"}]}))],
     [(DEPLOYMENT, deployment(**{f"{C0}__env": [{"name": "SRC", "value": "s3://amzn-s3-demo-bucket/llama"}]}))],
     "bucket 'amzn-s3-demo-bucket' is an example name", "dev"),
    ("s3-no-example-buckets",
     [("aws:iam/policy:Policy", {"policy": json.dumps({"Statement": [{"Effect": "Allow", "Action": "s3:GetObject",
                                                                       "Resource": "arn:aws:s3:::acme-models/*"}]})})],
     [("aws:iam/policy:Policy", {"policy": json.dumps({"Statement": [{"Effect": "Allow", "Action": "s3:GetObject",
                                                                       "Resource": "arn:aws:s3:::models-example/*"}]})})],
     "bucket 'models-example' is an example name", "dev"),
    ("real-deploy-no-placeholders", [("eks:index:Cluster", {"publicAccessCidrs": ["52.94.0.0/22"]})],
     [("eks:index:Cluster", {"publicAccessCidrs": ["203.0.113.0/24"]})],
     "publicAccessCidrs 203.0.113.0/24 are documentation-only ranges", ("prod", {"realDeploy": True})),
    ("real-deploy-no-placeholders", [(DEPLOYMENT, deployment(**{f"{C0}__env": [{"name": "SRC", "value": "s3://acme-models/m"}]}))],
     [(DEPLOYMENT, deployment(**{f"{C0}__env": [{"name": "SRC", "value": "s3://my-bucket/m"}]}))],
     "bucket 'my-bucket' is an example name", ("prod", {"realDeploy": True})),
    ("sqs-deny-insecure-transport",
     [("aws:sqs/queue:Queue", {"url": QUEUE_URL, "name": "q"}),
      ("aws:sqs/queuePolicy:QueuePolicy", {"queueUrl": QUEUE_URL, "policy": json.dumps({"Statement": [DENY]})})],
     [("aws:sqs/queue:Queue", {"url": QUEUE_URL, "name": "q"})], "without TLS", "prod"),
    ("images-through-pull-through-cache", [HUB_RULE, (DEPLOYMENT, deployment(**{f"{C0}__image": MIRRORED_VLLM}))],
     [HUB_RULE, (DEPLOYMENT, deployment())],
     "container vllm pulls vllm/vllm-openai:v0.33.0 from registry-1.docker.io directly, though the stack caches "
     "docker-hub under mirror/docker-hub/", "prod"),
    # An init container counts; an upstream the stack has no rule for does not.
    ("images-through-pull-through-cache",
     [QUAY_RULE, (DEPLOYMENT, deployment(**{f"{C0}__image": MIRRORED_VLLM, f"{POD}__initContainers": [
         {"name": "sync", "image": "public.ecr.aws/aws-cli/aws-cli:2.31.12"}]}))],
     [QUAY_RULE, (DEPLOYMENT, deployment(**{f"{C0}__image": MIRRORED_VLLM, f"{POD}__initContainers": [
         {"name": "sync", "image": "quay.io/example/sync:1"}]}))],
     "container sync pulls quay.io/example/sync:1 from quay.io directly", "prod"),
    ("gpu-stack-has-s3-gateway-endpoint", [VPC, S3_GATEWAY, (DEPLOYMENT, deployment())],
     [VPC, (DEPLOYMENT, deployment())], "runs 1 GPU workload(s) in a VPC it creates, with no S3 gateway endpoint", "dev"),
    ("gpu-stack-has-s3-gateway-endpoint", [VPC, S3_GATEWAY, (DEPLOYMENT, deployment())],
     [VPC, ("aws:ec2/vpcEndpoint:VpcEndpoint", {**S3_GATEWAY[1], "routeTableIds": []}), (DEPLOYMENT, deployment())],
     "no S3 gateway endpoint on its route tables", "prod"),
    *LEVER_CASES,
    *ROUTING_CASES,  # tests/router_policy_cases.py
]


@pytest.mark.parametrize("name,good,bad,fragment,env", CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_rule_passes_and_fails(name, good, bad, fragment, env):
    assert violations(name, good, env) == []
    found = violations(name, bad, env)
    assert found and any(fragment in m for m in found), found
    assert all("Fix:" in m for m in found)


def test_every_rule_has_a_case():
    assert {c[0] for c in CASES} == {r.name for r in RULES}


def test_egress_rules_stay_quiet_without_a_cache_or_a_vpc_of_ours():
    # No cache rule: Docker Hub images are the stack's own business (dev pulls them directly).
    assert violations("images-through-pull-through-cache", [(DEPLOYMENT, deployment())]) == []
    # An existing VPC: its endpoints are its owner's; no GPU workload: nothing to download.
    assert violations("gpu-stack-has-s3-gateway-endpoint", [(DEPLOYMENT, deployment())]) == []
    assert violations("gpu-stack-has-s3-gateway-endpoint", [VPC]) == []


def test_environment_changes_the_verdict():
    # Zone spread and open endpoints are prod rules: the same resources pass in dev.
    assert violations("availability-prod-zone-spread", [(DEPLOYMENT, deployment(**{f"{POD}__topologySpreadConstraints": []}))], "dev") == []
    assert violations("eks-no-open-public-endpoint", [("eks:index:Cluster", {})], "staging") == []
    assert violations("eks-no-open-public-endpoint", [("eks:index:Cluster", {"publicAccessCidrs": ["::/0"]})], "staging") == []


def test_a_private_endpoint_is_judged_by_no_allow_list():
    private = {"endpointPublicAccess": False, "publicAccessCidrs": ["0.0.0.0/0", "198.51.100.0/24"]}
    assert violations("eks-no-open-public-endpoint", [("eks:index:Cluster", private)], "prod") == []
    assert violations("eks-endpoint-cidrs-not-documentation", [("eks:index:Cluster", private)], "prod") == []


def test_documentation_ranges_are_advisory():
    bad = [Resource("eks:index:Cluster", "urn:c", "c", {"publicAccessCidrs": ["203.0.113.0/24"]}, {})]
    policy = [p for p in POLICIES if p.name == "eks-endpoint-cidrs-not-documentation"]
    assert [v["enforcement"] for v in evaluate(policy, bad)["violations"]] == ["advisory"]


def test_enforcement_override_and_disable():
    bad = [Resource(DEPLOYMENT, "urn:x", "x", deployment(**{f"{C0}__image": "v:latest"}), {})]
    policy = [p for p in POLICIES if p.name == "image-tag-pinned"]
    assert evaluate(policy, bad, enforcement={"image-tag-pinned": "advisory"})["violations"][0]["enforcement"] == "advisory"
    assert evaluate(policy, bad, enforcement={"all": "disabled"}) == {"policies_run": 0, "violations": []}


def test_unknown_values_during_preview_are_advisory_like_crossguard():
    from pulumi_policy.proxy import UNKNOWN_STRING_VALUE

    props = deployment(**{f"{C0}__image": UNKNOWN_STRING_VALUE})
    policy = [p for p in POLICIES if p.name == "image-tag-pinned"]
    report = evaluate(policy, [Resource(DEPLOYMENT, "urn:x", "x", props, props)])
    assert [(v["enforcement"], "during preview" in v["message"]) for v in report["violations"]] == [("advisory", True)]


def test_importing_the_rules_starts_no_server():
    code = "import policies.rules as r; print(len(r.POLICIES))"
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and proc.stdout.strip() == str(len(POLICIES))


def test_names_descriptions_and_fixes():
    names = [r.name for r in RULES]
    assert len(names) == len(set(names)) and all(n == n.lower() and "_" not in n and " " not in n for n in names)
    assert all(r.description and r.rationale and r.fix for r in RULES)
    assert len(RULES) >= 30


def test_pack_entry_point_builds_the_pack_from_the_same_rules():
    text = (REPO / "policies" / "__main__.py").read_text()
    assert "rules.POLICIES" in text and "PolicyPack(" in text
    assert "runtime:" in (REPO / "policies" / "PulumiPolicy.yaml").read_text()


def test_readme_is_generated_from_the_rules():
    assert (REPO / "policies" / "README.md").read_text() == render_docs(), "run: python -m policies.docs > policies/README.md"
    for r in RULES:
        assert f"`{r.name}`" in render_docs()


@pytest.mark.parametrize("env", STACKS)
def test_policy_config_files_are_in_sync(env):
    on_disk = json.loads((REPO / "policies" / "config" / f"{env}.json").read_text())
    assert on_disk == policy_config(RULES, env)


@pytest.mark.parametrize("stack", STACKS)
def test_every_stack_passes_the_pack(synthesized, stack):
    report = json.loads((synthesized[stack] / "policy-report.json").read_text())
    assert report["policies_run"] == len(RULES)
    # The stacks ship example values (exampleValues, documentation-range allow-lists in staging
    # and prod): advisory findings a real deploy must clear, nothing else.
    cidrs = [("eks-endpoint-cidrs-not-documentation", "advisory")] if stack in ("staging", "prod") else []
    findings = [(v["policy"], v["enforcement"]) for v in report["violations"]]
    assert [f for f in findings if f[0] != "stack-example-values"] == cidrs
    assert {f for f in findings if f[0] == "stack-example-values"} == {("stack-example-values", "advisory")}


def test_bad_program_fails_with_the_expected_violations(tmp_path):
    out = tmp_path / "out"
    proc = run_synth("dev", "--program", str(REPO / "tests" / "programs" / "bad-gpu"), "--out", str(out))
    assert proc.returncode == 1
    report = json.loads((out / "policy-report.json").read_text())
    fired = {v["policy"] for v in report["violations"]}
    assert fired == {"gpu-requests-equal-limits", "gpu-cpu-memory-requests", "gpu-startup-probe", "gpu-readiness-probe",
                     "gpu-prestop-hook", "gpu-termination-grace", "gpu-taint-toleration", "image-tag-pinned",
                     "gpu-rolling-update-keeps-capacity", "vllm-workload-scraped"}


def test_policy_constants_agree_with_the_components():
    # Policies import nothing from components (they judge any resource), so a few facts
    # live on both sides; they must not drift.
    from components import config
    from components.render import vllm
    from policies import rules_capacity, rules_stack, rules_workloads

    assert rules_stack.BASELINE_ANNOTATION == vllm.BASELINE_ANNOTATION
    assert rules_workloads.P99_ANNOTATION == vllm.P99_ANNOTATION
    assert rules_workloads.SPOT_NOTICE_SECONDS == config.SPOT_NOTICE_SECONDS
    for d in ("5m", "1h30m", "90s", "720h"):
        assert rules_capacity.karpenter_seconds(d) == config.karpenter_seconds(d)


def test_example_buckets_are_advisory_in_synth_and_mandatory_in_a_real_deploy():
    bad = deployment(**{f"{C0}__env": [{"name": "SRC", "value": "s3://amzn-s3-demo-bucket/m"}]})
    res = [Resource(DEPLOYMENT, "urn:d", "d", bad, bad)]
    pair = [p for p in POLICIES if p.name in ("s3-no-example-buckets", "real-deploy-no-placeholders")]
    levels = lambda cfg: [(v["policy"], v["enforcement"]) for v in evaluate(pair, res, cfg)["violations"]]  # noqa: E731
    assert levels({}) == [("s3-no-example-buckets", "advisory")]
    real = {"realDeploy": True}
    assert levels({"s3-no-example-buckets": real, "real-deploy-no-placeholders": real}) == [("real-deploy-no-placeholders", "mandatory")]


def test_offline_evaluation_hands_options_and_dependencies_to_policies():
    from pulumi_policy import StackValidationPolicy

    from policies.offline import duration_seconds

    assert [duration_seconds(d) for d in ("30m", "1h30m", "90s", None)] == [1800, 5400, 90, 0]
    seen = {}

    def validate(args, report):
        for r in args.resources:
            seen[r.urn] = (r.opts.custom_timeouts.create_seconds, r.opts.custom_timeouts.update_seconds,
                           [d.urn for d in r.dependencies])

    policy = StackValidationPolicy(name="probe", description="d", validate=validate)
    evaluate([policy], [Resource("t", "urn:a", "a", {}, {}),
                        Resource("t", "urn:b", "b", {}, {}, None, ["urn:a"], {"customTimeouts": {"create": "20m"}})])
    assert seen == {"urn:a": (0, 0, []), "urn:b": (1200, 0, ["urn:a"])}
