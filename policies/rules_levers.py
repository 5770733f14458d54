"""Cold-start levers judged across objects: a warm-capacity buffer inside its NodePool's limit,
placeholder pods that real pods can preempt, a streamer that may read its S3 source, fast image
pull without the root-volume throughput it needs, and a predictive trigger that looks less far
ahead than a replica takes to start."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from platform_facts.coldstart import FAST_IMAGE_PULL_MIN_ROOT_MIBPS, GP3_BASELINE_MIBPS

from .base import EnforcementLevel, as_list, stack_rule
from .rules_capacity import NODEPOOL
from .rules_placement import _gpu_pools, _pool_provides, pools_for
from .rules_stack import SCALED_OBJECT, Workload, _by_type, _max_replicas, _name, _ns, _scalers_of, workloads
from .workloads import CAPACITY_TYPE, arg_value, dig, holds_gpus_only, quantity, required_values

CAPACITY_BUFFER = "kubernetes:autoscaling.x-k8s.io/v1beta1:CapacityBuffer"
POD_TEMPLATE = "kubernetes:core/v1:PodTemplate"
PRIORITY_CLASS = "kubernetes:scheduling.k8s.io/v1:PriorityClass"
NODECLASS = "kubernetes:karpenter.k8s.aws/v1:EC2NodeClass"
ASSOCIATION = "aws:eks/podIdentityAssociation:PodIdentityAssociation"
IAM_DOCUMENTS = ("aws:iam/rolePolicy:RolePolicy", "aws:iam/policy:Policy")
ON_DEMAND_TYPES = {"on-demand", "reserved"}
COLD_START_ANNOTATION = "platform.gpu/modelled-cold-start-seconds"
AREA = "Cold start"

__all__ = ["NODEPOOL", "RULES"]


# --------------------------------------------------------------------------- buffer within the limit


def _negative_classes(resources: Sequence[Any]) -> set[str]:
    return {_name(p.props) for p in _by_type(resources, PRIORITY_CLASS) if int(p.props.get("value") or 0) < 0}


def is_placeholder(w: Workload) -> bool:
    """Pods that only hold GPUs: every container is a pause image and one requests a GPU."""
    return holds_gpus_only(w.spec)


def _buffers(resources: Sequence[Any]) -> list[tuple[Workload, int]]:
    """Every warm-capacity chunk set: CapacityBuffers (their PodTemplate's pod x replicas) and
    placeholder Deployments (their pod x replicas), as (workload, chunks)."""
    templates = {(_ns(t.props), _name(t.props)): t for t in _by_type(resources, POD_TEMPLATE)}
    out = []
    for b in _by_type(resources, CAPACITY_BUFFER):
        ref = dig(b.props, "spec", "podTemplateRef", "name")
        tpl = templates.get((_ns(b.props), str(ref)))
        spec = dig(tpl.props, "template", "spec") if tpl else None
        if tpl is not None and spec:
            w = Workload(b.urn, "CapacityBuffer", _ns(b.props), _name(b.props), {"spec": {"template": tpl.props["template"]}}, spec)
            out.append((w, int(dig(b.props, "spec", "replicas") or 0)))
    out += [(w, int(dig(w.props, "spec", "replicas") or 1)) for w in workloads(resources) if is_placeholder(w)]
    return out


def _on_demand(values: set[str] | None) -> bool:
    """On-demand capacity, possibly from a reservation."""
    return values is not None and "on-demand" in values and values <= ON_DEMAND_TYPES


def buffer_within_limit(resources: Sequence[Any], _: Mapping[str, Any]) -> Iterable[tuple[str, str]]:
    pools = [p for p in _gpu_pools(resources) if _on_demand(_pool_provides(p).get(CAPACITY_TYPE))]
    scalers = _scalers_of(resources)
    buffers = _buffers(resources)
    held = {b[0].urn for b in buffers}
    for buf, chunks in buffers:
        names = sorted(_name(p.props) for p in pools_for(buf, pools))
        if not names:
            continue
        fixed = sum(_max_replicas(w, scalers.get((w.namespace, w.kind, w.name), [])) * w.gpus_per_pod
                    for w in workloads(resources) if w.urn not in held and w.gpus_per_pod
                    and _on_demand(required_values(w.spec, CAPACITY_TYPE))
                    and {_name(p.props) for p in pools_for(w, pools)} <= set(names))
        limit = sum(int(quantity(dig(p.props, "spec", "limits", "nvidia.com/gpu") or 0)) for p in pools if _name(p.props) in names)
        need = chunks * buf.gpus_per_pod
        if limit < fixed + need:
            yield buf.urn, (f"warm-capacity buffer {buf.namespace}/{buf.name} holds {chunks} x {buf.gpus_per_pod} GPU "
                            f"on NodePools {', '.join(names)}, whose nvidia.com/gpu limit {limit} leaves "
                            f"{max(0, limit - fixed)} GPUs beside the {fixed} the on-demand workloads there may use: "
                            "buffer pods count against the limit, so the buffer (or the replicas) cannot all be placed.")


# --------------------------------------------------------------------------- placeholders


def placeholder_priority(resources: Sequence[Any], _: Mapping[str, Any]) -> Iterable[tuple[str, str]]:
    negative = _negative_classes(resources)
    for w in workloads(resources):
        if is_placeholder(w) and w.spec.get("priorityClassName") not in negative:
            cls = w.spec.get("priorityClassName") or "none (priority 0)"
            yield w.urn, (f"{w.kind} {w.namespace}/{w.name} holds GPUs with pause pods of priority class {cls}, not a "
                          "class of negative value in this stack: real pods of priority 0 cannot preempt them, so the "
                          "warm capacity blocks the replicas it was meant for.")


# --------------------------------------------------------------------------- runai S3 access


def _s3_grants(resources: Sequence[Any]) -> list[str]:
    """Resources of every Allow s3:GetObject in the stack's IAM documents."""
    out = []
    for r in resources:
        if r.resource_type not in IAM_DOCUMENTS or not isinstance(r.props.get("policy"), str):
            continue
        for st in as_list(json.loads(r.props["policy"]).get("Statement")):
            actions = as_list(st.get("Action"))
            if st.get("Effect") == "Allow" and any(a in ("s3:GetObject", "s3:*", "*") for a in actions):
                out += [str(x) for x in as_list(st.get("Resource"))]
    return out


def _grants(resource: str, bucket: str, prefix: str) -> bool:
    pattern = "^" + re.escape(resource).replace(r"\*", ".*").replace(r"\?", ".") + "$"
    return re.match(pattern, f"arn:aws:s3:::{bucket}/{prefix}/x") is not None


def runai_s3_access(resources: Sequence[Any], _: Mapping[str, Any]) -> Iterable[tuple[str, str]]:
    associated = {(str(a.props.get("namespace")), str(a.props.get("serviceAccount")))
                  for a in _by_type(resources, ASSOCIATION)}
    grants = _s3_grants(resources)
    for w in workloads(resources):
        for c in as_list(w.spec.get("containers")):
            source = next((a for a in as_list(c.get("args")) if str(a).startswith("s3://")), None)
            if source is None or not str(arg_value(c, "--load-format") or "").startswith("runai_streamer"):
                continue
            bucket, _slash, prefix = str(source)[5:].rstrip("/").partition("/")
            sa = str(w.spec.get("serviceAccountName") or "default")
            if (w.namespace, sa) not in associated:
                yield w.urn, (f"{w.kind} {w.namespace}/{w.name} streams {source} with the Run:ai streamer, but its service "
                              f"account {sa} has no Pod Identity association: the S3 reads fail and the replica never loads.")
            elif not any(_grants(g, bucket, prefix) for g in grants):
                yield w.urn, (f"{w.kind} {w.namespace}/{w.name} streams {source}, but no IAM policy in the stack allows "
                              f"s3:GetObject on arn:aws:s3:::{bucket}/{prefix}/*: the streamer's reads are denied.")


# --------------------------------------------------------------------------- fast image pull


def fast_image_pull_throughput(resources: Sequence[Any], _: Mapping[str, Any]) -> Iterable[tuple[str, str]]:
    for nc in _by_type(resources, NODECLASS):
        spec = nc.props.get("spec") or {}
        if "FastImagePull: true" not in str(spec.get("userData") or "") or spec.get("instanceStorePolicy") == "RAID0":
            continue
        root: Mapping[str, Any] = next((m for m in as_list(spec.get("blockDeviceMappings")) if m.get("rootVolume")), {})
        mibps = int(dig(root, "ebs", "throughput") or GP3_BASELINE_MIBPS)
        if mibps < FAST_IMAGE_PULL_MIN_ROOT_MIBPS:
            yield nc.urn, (f"EC2NodeClass {_name(nc.props)} turns on FastImagePull with the image store on the root "
                           f"volume (no instanceStorePolicy RAID0) at {mibps} MiB/s; AWS recommends >= "
                           f"{FAST_IMAGE_PULL_MIN_ROOT_MIBPS} MiB/s, below which parallel pulls may be slower.")


# --------------------------------------------------------------------------- predictive lookahead

# The lookahead follows the subquery's [range:step]; a greedy match would read a later argument
# (the 0 of an enclosing clamp_min) instead.
_LOOKAHEAD = re.compile(r"predict_linear\(.*?\[[0-9]+[smh]?:[0-9]+[smh]?\]\s*,\s*([0-9.]+)\s*\)")


def predictive_lookahead(resources: Sequence[Any], _: Mapping[str, Any]) -> Iterable[tuple[str, str]]:
    for so in _by_type(resources, SCALED_OBJECT):
        modelled = dig(so.props, "metadata", "annotations", COLD_START_ANNOTATION)
        for t in as_list(dig(so.props, "spec", "triggers")):
            query = str(dig(t, "metadata", "query") or "")
            m = _LOOKAHEAD.search(query)
            if m is None or modelled is None or float(m.group(1)) >= float(modelled):
                continue
            yield so.urn, (f"ScaledObject {_ns(so.props)}/{_name(so.props)} predicts demand {float(m.group(1)):g} s ahead, "
                           f"less than the modelled cold start of {modelled} s: replicas it asks for arrive after the demand.")


RULES = [
    stack_rule("capacity-buffer-within-limit", "Deploy",
               "A warm-capacity buffer (CapacityBuffer or placeholder pods) fits its on-demand NodePools' GPU limit "
               "beside the on-demand workloads there.",
               "Buffer pods count against NodePool limits (Karpenter capacitybuffers.md): a buffer the limit cannot hold "
               "is never provisioned, or takes the room rollouts and baseline replicas need.",
               "Raise gpuTiers[].onDemand.gpuLimit (or drop it to use the computed limit, which counts the buffer), or "
               "shrink capacityBuffer.replicas.", buffer_within_limit),
    stack_rule("placeholder-negative-priority", "Deploy",
               "Placeholder pods that hold GPUs run at a negative priority class.",
               "A placeholder at priority 0 is never preempted by a burst replica at priority 0: the warm node stays "
               "taken and the replica waits for a new one.",
               "Give the pods a PriorityClass with a negative value (capacityBuffer.mode placeholderPods renders one).",
               placeholder_priority),
    stack_rule("runai-s3-read-access", "Workloads",
               "A vLLM container that streams weights from s3:// with the Run:ai streamer has a Pod Identity association "
               "and an IAM grant of s3:GetObject on the prefix.",
               "Without credentials or the grant the streamer's reads are denied and the replica never becomes ready.",
               "Use loader.format runaiS3 on an s3:// source (the ModelService binds the cache reader role), or grant "
               "the service account read access to the prefix.", runai_s3_access),
    stack_rule("fast-image-pull-root-throughput", AREA,
               "FastImagePull with the image store on the root volume has >= 600 MiB/s root-volume throughput.",
               "amazon-eks-ami nodeadm docs: below 600 MiB/s parallel pulls may be slower; gp3 defaults to 125 MiB/s. "
               "With instanceStorePolicy RAID0 the image store is on NVMe and the rule does not apply.",
               "Set cluster.fastImagePull.rootVolumeThroughputMibps >= 600, or use instance-store NVMe (RAID0).",
               fast_image_pull_throughput, enforcement=EnforcementLevel.ADVISORY),
    stack_rule("predictive-lookahead-cold-start", AREA,
               "A predictive (predict_linear) trigger looks at least one modelled cold start ahead.",
               "Scaling on demand predicted less far ahead than a replica takes to start still brings the replica late.",
               "Raise predictiveScaling.lookaheadSeconds, or leave it unset (it defaults to the modelled cold start).",
               predictive_lookahead, enforcement=EnforcementLevel.ADVISORY),
]
