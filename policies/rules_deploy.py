"""Rules that reason across objects and over time, about what happens during `pulumi up`.

A volume claim and the StorageClass and driver that provision it; an awaited workload's
timeout against its worst-case rollout; Pod Identity associations created before the pods
that need them; placeholders (example buckets, documentation CIDRs) in a real deploy.
(Room for surge, replacement and system pods, and Value triggers, are in rules_room.py.)
Facts: reference/production-facts.md sections 1, 2 and 4.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from pulumi_policy import EnforcementLevel

from platform_facts import cidrs
from platform_facts import kubernetes as k8s_facts
from platform_facts.aws import EXAMPLE_BUCKET_NAMES, EXAMPLE_BUCKET_WORDS

from .base import resource_rule, stack_rule
from .rules_capacity import _endpoint
from .rules_stack import (
    _by_type,
    _max_replicas,
    _name,
    _scalers_of,
    workloads,
)
from .workloads import dig, probe_budget_seconds, strings

STATEFULSET = "kubernetes:apps/v1:StatefulSet"
PVC = "kubernetes:core/v1:PersistentVolumeClaim"
STORAGE_CLASS = "kubernetes:storage.k8s.io/v1:StorageClass"
PROMETHEUS = "kubernetes:monitoring.coreos.com/v1:Prometheus"
HELM_RELEASE = "kubernetes:helm.sh/v3:Release"
ADDONS = ("aws:eks/addon:Addon", "eks:index:Addon")
POD_IDENTITY = "aws:eks/podIdentityAssociation:PodIdentityAssociation"

READY_WITHIN_ANNOTATION = "platform.gpu/ready-within-seconds"
SKIP_AWAIT = "pulumi.com/skipAwait"
TIMEOUT_ANNOTATION = "pulumi.com/timeoutSeconds"
# pulumi-kubernetes' await default for Deployments and StatefulSets (facts 4).
DEFAULT_AWAIT_SECONDS = 600


def _chart(release: Any) -> str:
    """A Helm release's chart name, without repository or OCI prefix."""
    return str(release.props.get("chart") or "").rstrip("/").rsplit("/", 1)[-1]


def _values(release: Any) -> Mapping[str, Any]:
    return release.props.get("values") or {}


# --------------------------------------------------------------------------- storage

EBS_CSI = "ebs.csi.aws.com"
IN_TREE_EBS = "kubernetes.io/aws-ebs"
# EKS creates a gp2 class with the in-tree provisioner in every cluster (facts 1).
EKS_CLASSES = {"gp2": IN_TREE_EBS}
# Provisioner -> the EKS add-on (or Helm chart of the same name) that installs its driver.
# The in-tree aws-ebs plugin is migrated to the EBS CSI driver since 1.23 and needs it too.
DRIVERS = {EBS_CSI: "aws-ebs-csi-driver", IN_TREE_EBS: "aws-ebs-csi-driver", "efs.csi.aws.com": "aws-efs-csi-driver"}
DEFAULT_CLASS = "storageclass.kubernetes.io/is-default-class"
# Helm values whose volume claim template the chart's operator turns into PVCs.
CHART_CLAIMS: dict[str, tuple[tuple[str, ...], ...]] = {
    "kube-prometheus-stack": (
        ("prometheus", "prometheusSpec", "storageSpec", "volumeClaimTemplate", "spec"),
        ("alertmanager", "alertmanagerSpec", "storageSpec", "volumeClaimTemplate", "spec"),
        ("thanosRuler", "thanosRulerSpec", "storageSpec", "volumeClaimTemplate", "spec"),
    ),
}


def _claims(resources: Sequence[Any]) -> Iterator[tuple[str, str, str | None]]:
    """(urn, what, storageClassName or None for the default class) of every dynamic claim."""
    for r in resources:
        specs: list[tuple[str, Any]] = []
        if r.resource_type == PVC:
            specs = [(f"PersistentVolumeClaim {_name(r.props)}", r.props.get("spec") or {})]
        elif r.resource_type == STATEFULSET:
            specs = [(f"StatefulSet {_name(r.props)} claim {_name(t)}", t.get("spec") or {})
                     for t in dig(r.props, "spec", "volumeClaimTemplates") or ()]
        elif r.resource_type == PROMETHEUS:
            spec = dig(r.props, "spec", "storage", "volumeClaimTemplate", "spec")
            specs = [(f"Prometheus {_name(r.props)}", spec)] if spec else []
        elif r.resource_type == HELM_RELEASE:
            specs = [(f"Helm release {r.props.get('name') or r.name} value {'.'.join(path[:3])}", spec)
                     for path in CHART_CLAIMS.get(_chart(r), ()) if (spec := dig(_values(r), *path))]
        for what, spec in specs:
            name = spec.get("storageClassName")
            if name != "":  # "" binds to a pre-created volume: nothing to provision
                yield r.urn, what, None if name is None else str(name)


def storage_provisioned(resources: Sequence[Any], _: Mapping[str, Any]) -> Iterable[tuple[str, str]]:
    classes = {_name(c.props): c for c in _by_type(resources, STORAGE_CLASS)}
    provisioner = {**EKS_CLASSES, **{n: str(c.props.get("provisioner")) for n, c in classes.items()}}
    default = next((n for n, c in classes.items() if dig(c.props, "metadata", "annotations", DEFAULT_CLASS) == "true"), "gp2")
    installed = {str(a.props.get("addonName")) for r in ADDONS for a in _by_type(resources, r)}
    installed |= {_chart(h) for h in _by_type(resources, HELM_RELEASE)}
    for urn, what, name in _claims(resources):
        cls = name or default
        if cls not in provisioner:
            yield urn, (f"{what}: StorageClass {cls!r} is neither created by this stack nor one EKS creates (gp2); "
                        "the claim stays Pending.")
            continue
        driver = DRIVERS.get(provisioner[cls])
        if driver and driver not in installed:
            yield urn, (f"{what}: StorageClass {cls!r} ({provisioner[cls]}) needs the {driver} driver, which EKS does "
                        f"not install and this stack does not add (no {driver} add-on); the claim stays Pending.")
    for n, c in classes.items():
        if c.props.get("provisioner") == IN_TREE_EBS and dig(c.props, "parameters", "type") == "gp3":
            yield c.urn, f"StorageClass {n}: the in-tree provisioner {IN_TREE_EBS} cannot create gp3 volumes."


# --------------------------------------------------------------------------- await timeouts


def rollout_steps(kind: str, spec: Mapping[str, Any], replicas: int) -> int:
    """Batches in which a rolling update replaces ``replicas`` pods (``platform_facts.kubernetes``)."""
    return k8s_facts.rollout_steps(kind, spec, replicas)


def create_steps(kind: str, spec: Mapping[str, Any]) -> int:
    replicas = int(spec.get("replicas", 1))
    if replicas <= 0:
        return 0
    # OrderedReady StatefulSets create one pod after another; everything else at once.
    return replicas if kind == "StatefulSet" and spec.get("podManagementPolicy") != "Parallel" else 1


def step_seconds(props: Mapping[str, Any], pod: Mapping[str, Any]) -> tuple[int, str]:
    """Worst-case readiness of one rollout step and where it comes from: the larger of the
    startup probe budget (initialDelay + period x failureThreshold) and the workload's
    ``platform.gpu/ready-within-seconds`` annotation (node launch, pulls, weights, engine)."""
    budget = max((probe_budget_seconds(c.get("startupProbe")) for c in pod.get("containers") or ()), default=0)
    declared = dig(props, "metadata", "annotations", READY_WITHIN_ANNOTATION)
    if declared is not None and int(float(declared)) >= budget:
        return int(float(declared)), f"{READY_WITHIN_ANNOTATION} {int(float(declared))}s"
    return budget, f"startup probe budget {budget}s"


def await_timeouts(r: Any) -> dict[str, tuple[float, str]]:
    """The create and update await timeouts: customTimeouts, then the annotation, then 10 min."""
    custom = getattr(getattr(r, "opts", None), "custom_timeouts", None)
    annotation = dig(r.props, "metadata", "annotations", TIMEOUT_ANNOTATION)
    out = {}
    for op in ("create", "update"):
        seconds = float(getattr(custom, f"{op}_seconds", 0) or 0)
        if seconds:
            out[op] = (seconds, "customTimeouts")
        elif annotation is not None:
            out[op] = (float(annotation), TIMEOUT_ANNOTATION)
        else:
            out[op] = (float(DEFAULT_AWAIT_SECONDS), "the default")
    return out


def awaits_cover_rollout(resources: Sequence[Any], _: Mapping[str, Any]) -> Iterable[tuple[str, str]]:
    scalers = _scalers_of(resources)
    by_urn = {w.urn: w for w in workloads(resources)}
    for r in resources:
        w = by_urn.get(r.urn)
        if w is None or w.kind not in ("Deployment", "StatefulSet"):
            continue
        if str(dig(r.props, "metadata", "annotations", SKIP_AWAIT)).lower() == "true":
            continue
        step, source = step_seconds(r.props, w.spec)
        if step <= 0:
            continue
        spec = r.props.get("spec") or {}
        # The live replica count a rollout meets: an autoscaler may have raised it to its max.
        replicas = _max_replicas(w, scalers.get((w.namespace, w.kind, w.name), []))
        steps = {"create": create_steps(w.kind, spec), "update": rollout_steps(w.kind, spec, replicas)}
        for op, (timeout, origin) in await_timeouts(r).items():
            needed = steps[op] * step
            if timeout < needed:
                yield r.urn, (f"{w.kind} {w.namespace}/{w.name}: {op} timeout {timeout:g}s ({origin}) < worst-case "
                              f"readiness {steps[op]} step(s) x {step}s = {needed}s ({source}"
                              + (f"; {replicas} replicas" if op == "update" else "")
                              + "); pulumi up fails while pods are still starting, and the next up starts over.")


# --------------------------------------------------------------------------- identity before pods


def _reaches(start: Any, target_urn: str) -> bool:
    """Whether ``start`` waits for ``target_urn``: through its dependencies and its parents."""
    seen: set[str] = set()
    todo = [start]
    while todo:
        r = todo.pop()
        if r.urn == target_urn:
            return True
        if r.urn in seen:
            continue
        seen.add(r.urn)
        todo.extend(getattr(r, "dependencies", None) or [])
        if getattr(r, "parent", None) is not None:
            todo.append(r.parent)
    return False


def _service_account_users(resources: Sequence[Any]) -> Iterator[tuple[Any, str, str, str]]:
    """(resource, namespace, service account, what) for workloads and Helm releases that run pods."""
    by_urn = {w.urn: w for w in workloads(resources)}
    for r in resources:
        w = by_urn.get(r.urn)
        if w is not None:
            sa = w.spec.get("serviceAccountName") or w.spec.get("serviceAccount") or "default"
            yield r, w.namespace, str(sa), f"{w.kind} {w.namespace}/{w.name}"
        elif r.resource_type == HELM_RELEASE and dig(_values(r), "serviceAccount", "name"):
            ns = str(r.props.get("namespace") or "default")
            yield r, ns, str(dig(_values(r), "serviceAccount", "name")), f"Helm release {r.props.get('name') or r.name}"


def identity_before_pods(resources: Sequence[Any], _: Mapping[str, Any]) -> Iterable[tuple[str, str]]:
    associations = {(str(a.props.get("namespace")), str(a.props.get("serviceAccount"))): a
                    for a in _by_type(resources, POD_IDENTITY)}
    for r, ns, sa, what in _service_account_users(resources):
        association = associations.get((ns, sa))
        if association is not None and not _reaches(r, association.urn):
            yield r.urn, (f"{what} runs pods as {ns}/{sa}, whose Pod Identity association {association.name} it does not "
                          "depend on: pods created first never get AWS credentials (EKS injects them only at pod creation).")


# --------------------------------------------------------------------------- placeholders

S3_URI = re.compile(r"s3://([a-z0-9][a-z0-9.\-]{1,61}[a-z0-9])")
S3_ARN = re.compile(r"arn:aws[a-z\-]*:s3:::([a-z0-9][a-z0-9.\-]{1,61}[a-z0-9])")
REAL_DEPLOY = {"realDeploy": {"type": "boolean", "default": False,
                              "description": "The stack is deployed for real: placeholders are mandatory violations."}}


def is_example_bucket(bucket: str) -> bool:
    name = bucket.lower()
    return name in EXAMPLE_BUCKET_NAMES or any(w in EXAMPLE_BUCKET_WORDS for w in re.split(r"[-.]", name))


def example_buckets(props: Mapping[str, Any]) -> list[str]:
    found: list[str] = []
    for s in strings(props):
        for m in [*S3_URI.findall(s.lower()), *S3_ARN.findall(s.lower())]:
            if is_example_bucket(m) and m not in found:
                found.append(m)
    return found


def _example_bucket_messages(props: Mapping[str, Any]) -> Iterator[str]:
    for bucket in example_buckets(props):
        yield (f"bucket {bucket!r} is an example name (platform_facts.aws.EXAMPLE_BUCKET_*): the deploy reads from "
               "or grants access to a bucket that is someone else's, or nobody's.")


def example_buckets_advisory(rtype: str, props: Mapping[str, Any], config: Mapping[str, Any]) -> Iterable[str]:
    if not config["realDeploy"]:
        yield from _example_bucket_messages(props)


def real_deploy_placeholders(rtype: str, props: Mapping[str, Any], config: Mapping[str, Any]) -> Iterable[str]:
    if not config["realDeploy"]:
        return
    yield from _example_bucket_messages(props)
    endpoint = _endpoint(rtype, props)
    if endpoint and endpoint[0] and endpoint[1] and cidrs.documentation_only(cidrs.parse(endpoint[1])):
        yield f"publicAccessCidrs {', '.join(map(str, endpoint[1]))} are documentation-only ranges: nobody reaches the API."


AREA = "Deploy"

RULES = [
    stack_rule("storage-class-provisioned", AREA,
        "Every volume claim (PVC, StatefulSet volumeClaimTemplate, Prometheus storage, kube-prometheus-stack storageSpec) "
        "names a StorageClass the stack creates or EKS creates (gp2), whose provisioner's driver the stack installs "
        "(ebs.csi.aws.com and the in-tree kubernetes.io/aws-ebs need the aws-ebs-csi-driver add-on); in-tree classes never ask for gp3.",
        "EKS does not install the EBS CSI driver, and since 1.23 in-tree EBS volumes are served by it too; without it, "
        "or without the class, the claim stays Pending and so does Prometheus. The in-tree plugin cannot create gp3.",
        "create an encrypted gp3 StorageClass (provisioner ebs.csi.aws.com, WaitForFirstConsumer) and the aws-ebs-csi-driver "
        "add-on (aws.eks.Addon), and name that class in every claim.", storage_provisioned),
    stack_rule("await-timeout-covers-rollout", AREA,
        "Every awaited Deployment and StatefulSet has create and update timeouts (customTimeouts, else "
        "pulumi.com/timeoutSeconds, else 10 min) that cover its worst-case readiness: rollout steps (from replicas, "
        "or the autoscaler's max, and maxSurge + maxUnavailable) x one step (the startup probe budget or "
        "platform.gpu/ready-within-seconds, the larger). pulumi.com/skipAwait \"true\" exempts.",
        "pulumi-kubernetes waits for every replica to be ready; a GPU replica takes minutes, so the default 10 min "
        "fails `pulumi up` mid-rollout and leaves a half-rolled Deployment.",
        "set customTimeouts(create=..., update=...) on the Deployment to at least steps x ready-within-seconds "
        "(or raise maxSurge).", awaits_cover_rollout),
    stack_rule("pod-identity-before-pods", AREA,
        "Workloads (and Helm releases) whose ServiceAccount has an EKS Pod Identity association depend on it, "
        "directly or through their parents.",
        "EKS injects Pod Identity credentials only when a pod is created; pods created before the association "
        "run without AWS credentials until they are restarted.",
        "pass depends_on=[association] (or the component that owns it) to the workload or release.",
        identity_before_pods),
    resource_rule("s3-no-example-buckets", AREA,
        "No S3 URI or S3 ARN names an example bucket (amzn-s3-demo-bucket, my-bucket, example-*...). Advisory; "
        "real-deploy-no-placeholders makes it mandatory when realDeploy is true.",
        "Example names come from copied snippets; the bucket is someone else's or nobody's, and model loads or "
        "grants fail (or leak) only once deployed.",
        "name your own bucket (model source, IAM resource ARNs).", example_buckets_advisory,
        dict(REAL_DEPLOY), enforcement=EnforcementLevel.ADVISORY),
    resource_rule("real-deploy-no-placeholders", AREA,
        "With realDeploy: true, example buckets and documentation-only public endpoint CIDRs are mandatory violations.",
        "A stack that deploys for real must not carry values that only make sense in examples and synth.",
        "replace the placeholders, or leave realDeploy false for synth and previews.", real_deploy_placeholders,
        dict(REAL_DEPLOY)),
]
