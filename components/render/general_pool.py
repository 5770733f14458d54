"""The general-purpose, on-demand Karpenter NodePool for non-GPU workloads (the llm-d routers and
the batch workers' in-cluster Redis).

The system node group is tainted for cluster add-ons and the GPU pools for GPUs, so a router had
no node to land on (and Redis took room on the system nodes, sized for the add-ons). This pool launches small on-demand general-purpose instances
(``platform_facts.catalog.GENERAL_PURPOSE``), tainted so that only workloads that opt in (with
``placement()``) run there, with a CPU limit sized to what those workloads request.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from components import labels
from components.config import GpuTier
from platform_facts import catalog

NAME = "general"
POOL_LABEL = "platform.gpu/pool"
TAINT_KEY = "platform.gpu/general"
# m7i/m6i/m7a, large to 2xlarge: a router (about 3 vCPU, 4 GiB with Envoy) fits an xlarge; the
# 4xlarge rows would leave most of a node idle for one or two routers.
POOL_INSTANCE_TYPES = tuple(sorted(t for t in catalog.GENERAL_PURPOSE if not t.endswith("4xlarge")))


def placement() -> dict[str, Any]:
    """Node affinity and toleration that put a pod on the general pool (and nowhere else)."""
    return {
        "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
            {"matchExpressions": [{"key": POOL_LABEL, "operator": "In", "values": [NAME]}]}]}}},
        "tolerations": [{"key": TAINT_KEY, "operator": "Equal", "value": "true", "effect": "NoSchedule"}],
    }


def pod_placement() -> dict[str, Any]:
    """The same as a pod spec's nodeSelector and tolerations (for pods we render ourselves)."""
    return {"nodeSelector": {POOL_LABEL: NAME}, "tolerations": placement()["tolerations"]}


def cpu_limit(requested_millicores: int) -> int:
    """The pool's CPU limit in cores: what the workloads request, plus one node of the largest
    type for a replacement launched before the old node goes (drift, consolidation)."""
    largest = max(catalog.GENERAL_PURPOSE[t].vcpu for t in POOL_INSTANCE_TYPES)
    return math.ceil(requested_millicores / 1000) + largest


def ec2_node_class(*, ami_alias: str, node_role: Any, subnet_ids: Any, security_group_id: Any,
                   tags: Mapping[str, Any]) -> dict[str, Any]:
    """IMDSv2 only (hop limit 1: no pod here needs the node's credentials), encrypted gp3 root."""
    return {
        "role": node_role,
        "amiSelectorTerms": [{"alias": ami_alias}],
        "subnetSelectorTerms": subnet_ids,
        "securityGroupSelectorTerms": [{"id": security_group_id}],
        "metadataOptions": {"httpEndpoint": "enabled", "httpProtocolIPv6": "disabled",
                            "httpPutResponseHopLimit": 1, "httpTokens": "required"},
        "blockDeviceMappings": [{"deviceName": "/dev/xvda", "rootVolume": True,
                                 "ebs": {"volumeSize": "40Gi", "volumeType": "gp3", "encrypted": True,
                                         "deleteOnTermination": True}}],
        "tags": {**tags, POOL_LABEL: NAME},
    }


def node_pool(cpu_cores: int, disruption_of: GpuTier) -> dict[str, Any]:
    """On-demand only: a router is on every request's path, so a spot reclaim would be an outage.
    Disruption (budgets, consolidateAfter, expiry, node grace) as ``disruption_of``, the first GPU
    tier: the routers move no more often, nor at other hours, than the GPU nodes they front."""
    t = disruption_of
    budgets = [{k: v for k, v in {"nodes": b.nodes, "reasons": list(b.reasons) or None, "schedule": b.schedule,
                                  "duration": b.duration}.items() if v is not None} for b in t.disruption_budgets]
    return {
        "weight": 10,
        "limits": {"cpu": str(cpu_cores)},
        "disruption": {"consolidationPolicy": "WhenEmptyOrUnderutilized", "consolidateAfter": t.consolidate_after,
                       "budgets": budgets},
        "template": {
            "metadata": {"labels": {POOL_LABEL: NAME}},
            "spec": {
                "nodeClassRef": {"group": "karpenter.k8s.aws", "kind": "EC2NodeClass", "name": NAME},
                "expireAfter": t.expire_after,
                "terminationGracePeriod": t.termination_grace_period,
                "taints": [{"key": TAINT_KEY, "value": "true", "effect": "NoSchedule"}],
                "requirements": [
                    {"key": labels.CAPACITY_TYPE, "operator": "In", "values": ["on-demand"]},
                    {"key": labels.INSTANCE_TYPE, "operator": "In", "values": list(POOL_INSTANCE_TYPES)},
                    {"key": labels.ARCH, "operator": "In", "values": ["amd64"]},
                    {"key": "kubernetes.io/os", "operator": "In", "values": ["linux"]},
                ],
            },
        },
    }
