"""Policy cases of the cold-start lever rules (policies/rules_levers.py), in the
``(rule, passing resources, failing resources, message fragment, environment)`` shape of
``tests/test_policies.CASES``, which includes them (its meta-test wants a case per rule)."""

from __future__ import annotations

import copy
import json
from typing import Any

DEPLOYMENT = "kubernetes:apps/v1:Deployment"
NODEPOOL = "kubernetes:karpenter.sh/v1:NodePool"
NODECLASS = "kubernetes:karpenter.k8s.aws/v1:EC2NodeClass"
SO = "kubernetes:keda.sh/v1alpha1:ScaledObject"
BUFFER = "kubernetes:autoscaling.x-k8s.io/v1beta1:CapacityBuffer"
TEMPLATE = "kubernetes:core/v1:PodTemplate"
PRIORITY = "kubernetes:scheduling.k8s.io/v1:PriorityClass"
ASSOCIATION = "aws:eks/podIdentityAssociation:PodIdentityAssociation"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"

ON_DEMAND = {"key": "karpenter.sh/capacity-type", "operator": "In", "values": ["on-demand"]}
TIER = {"key": "platform.gpu/tier", "operator": "In", "values": ["l40s"]}
GPU_TOLERATION = [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]


def pool(limit: str) -> dict[str, Any]:
    """The tier's on-demand GPU NodePool with a GPU limit."""
    return {"metadata": {"name": "l40s-on-demand"}, "spec": {
        "limits": {"nvidia.com/gpu": limit},
        "template": {"metadata": {"labels": {"platform.gpu/tier": "l40s", "nvidia.com/gpu.present": "true"}},
                     "spec": {"taints": [{"key": "nvidia.com/gpu", "value": "true", "effect": "NoSchedule"}],
                              "requirements": [ON_DEMAND]}}}}


def pod(image: str = "registry.k8s.io/pause:3.10", gpus: int = 1, **extra: Any) -> dict[str, Any]:
    """A pod required on the tier's on-demand nodes, requesting ``gpus`` GPUs."""
    res = {"requests": {"cpu": "4", "memory": "16Gi", "nvidia.com/gpu": str(gpus)},
           "limits": {"memory": "16Gi", "nvidia.com/gpu": str(gpus)}}
    return {"containers": [{"name": "main", "image": image, "resources": res}], "tolerations": GPU_TOLERATION,
            "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [{"matchExpressions": [TIER, ON_DEMAND]}]}}}, **extra}


def deployment(name: str, replicas: int, spec: dict[str, Any]) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": "inference"},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}}, "spec": copy.deepcopy(spec)}}}


def buffer_stack(limit: str) -> list[tuple[str, dict[str, Any]]]:
    """2 baseline replicas of 1 GPU and a CapacityBuffer of 2 x 1 GPU on one on-demand pool."""
    return [(NODEPOOL, pool(limit)),
            (DEPLOYMENT, deployment("chat-baseline", 2, pod("vllm/vllm-openai:v0.33.0"))),
            (TEMPLATE, {"metadata": {"name": "l40s-buffer", "namespace": "capacity-buffers"},
                        "template": {"spec": pod()}}),
            (BUFFER, {"metadata": {"name": "l40s-buffer", "namespace": "capacity-buffers"},
                      "spec": {"podTemplateRef": {"name": "l40s-buffer"}, "replicas": 2}})]


def placeholders(value: int) -> list[tuple[str, dict[str, Any]]]:
    return [(PRIORITY, {"metadata": {"name": "placeholder"}, "value": value}),
            (DEPLOYMENT, deployment("l40s-buffer", 1, pod(priorityClassName="placeholder")))]


def streamer(associated: bool = True, granted: str = "arn:aws:s3:::models/llama/*") -> list[tuple[str, dict[str, Any]]]:
    """A vLLM Deployment streaming s3://models/llama/ with the Run:ai streamer, its Pod Identity
    association and the role policy (the cache reader's grant)."""
    spec = pod("vllm/vllm-openai:v0.33.0", serviceAccountName="chat")
    spec["containers"][0]["args"] = ["s3://models/llama/", "--load-format", "runai_streamer"]
    out: list[tuple[str, dict[str, Any]]] = [(DEPLOYMENT, deployment("chat-burst", 1, spec))]
    if associated:
        out.append((ASSOCIATION, {"namespace": "inference", "serviceAccount": "chat", "clusterName": "c"}))
    out.append((ROLE_POLICY, {"policy": json.dumps({"Statement": [
        {"Effect": "Allow", "Action": "s3:GetObject", "Resource": granted}]})}))
    return out


def node_class(throughput: int | None, raid0: bool = False) -> list[tuple[str, dict[str, Any]]]:
    ebs: dict[str, Any] = {"volumeSize": "100Gi", "volumeType": "gp3"}
    if throughput is not None:
        ebs["throughput"] = throughput
    spec: dict[str, Any] = {"userData": "kind: NodeConfig\nspec:\n  featureGates:\n    FastImagePull: true\n",
                            "blockDeviceMappings": [{"deviceName": "/dev/xvda", "rootVolume": True, "ebs": ebs}]}
    if raid0:
        spec["instanceStorePolicy"] = "RAID0"
    return [(NODECLASS, {"metadata": {"name": "l40s"}, "spec": spec})]


def predictive(lookahead: int, modelled: int = 300) -> list[tuple[str, dict[str, Any]]]:
    query = f"predict_linear(sum(rate(vllm:request_success_total[1m]))[600s:15s], {lookahead})"
    return [(SO, {"metadata": {"name": "chat-burst", "namespace": "inference",
                               "annotations": {"platform.gpu/modelled-cold-start-seconds": str(modelled)}},
                  "spec": {"scaleTargetRef": {"name": "chat-burst"}, "triggers": [
                      {"type": "prometheus", "name": "predicted-rate", "metadata": {"query": query, "threshold": "2"}}]}})]


LEVER_CASES = [
    ("capacity-buffer-within-limit", buffer_stack("4"), buffer_stack("3"), "leaves 1 GPUs beside the 2", "prod"),
    ("placeholder-negative-priority", placeholders(-10), placeholders(0), "not a class of negative value", "prod"),
    ("runai-s3-read-access", streamer(), streamer(associated=False), "has no Pod Identity association", "prod"),
    ("runai-s3-read-access", streamer(), streamer(granted="arn:aws:s3:::models/other/*"),
     "no IAM policy in the stack allows s3:GetObject on arn:aws:s3:::models/llama/*", "prod"),
    ("fast-image-pull-root-throughput", node_class(600) + node_class(None, raid0=True), node_class(None),
     "at 125 MiB/s", "prod"),
    ("predictive-lookahead-cold-start", predictive(300), predictive(120), "less than the modelled cold start of 300 s",
     "prod"),
]
