"""BatchInference: queue-driven GPU workers that hold no warm GPUs while the queue is empty.

A producer pushes work items onto a Redis list (``LPUSH <queue> <item>``). KEDA's redis
scaler watches the list length and starts Kubernetes Jobs (a ScaledJob) on GPU nodes,
spot preferred: up to ``maxReplicas`` jobs, one per ``listLength`` queued items, none when
the list is empty.

Failure semantics (the worker contract). A spot node can be reclaimed mid-job (two
minutes' notice), and a Job pod can fail. Items must therefore be processed
**at least once**, never "exactly once":

- Reliable queue: a worker takes an item with ``LMOVE <queue> <queue>:processing RIGHT LEFT``
  (or ``BLMOVE``), processes it, then ``LREM <queue>:processing 1 <item>``. The names are in
  the worker's environment (``QUEUE_NAME``, ``PROCESSING_LIST``).
- On start, a worker first moves items left in ``<queue>:processing`` by a dead worker back
  to ``<queue>`` (a worker that died holding them never removed them). Items carry their
  own id and attempt count; an item that exceeds its attempts goes to ``<queue>:dead``.
- Work must be idempotent per item id (write results under the id; a retry overwrites).
- A reclaimed or failed pod is retried by the Job (``restartPolicy: OnFailure``,
  ``backoffLimit``); ``activeDeadlineSeconds`` bounds a stuck job.

Because items leave the list when a worker starts them, the list length counts only work
nobody holds, which is what the ``accurate`` scaling strategy expects.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random

from components.config import BatchWorkerConfig, GpuTier
from components.identity import model_cache_reader
from components.naming import child
from components.render import batch as render
from components.render import general_pool, images
from components.render.images import Mirror


@dataclass(frozen=True)
class BatchInferenceArgs:
    worker: BatchWorkerConfig
    """The worker's validated config."""
    tier: GpuTier
    """The GPU tier its jobs run on."""
    cluster_name: pulumi.Input[str]
    """EKS cluster, for the model cache reader's Pod Identity association."""
    region: str
    """The cluster's AWS region, for the model-cache init container (pods cannot ask IMDS)."""
    namespace: pulumi.Resource | None = None
    """The worker's Namespace, when this program creates it: every namespaced object waits for it."""
    node_pools: Sequence[pulumi.Resource] = ()
    """The tier's EC2NodeClass and NodePools (``Karpenter.tier_capacity[tier]``), for the job pods."""
    gpu_operator: pulumi.Resource | None = None
    """The GPU Operator release: its device plugin advertises the GPUs the jobs request."""
    keda_crds: pulumi.Resource | None = None
    """The KEDA release, whose CRDs the TriggerAuthentication and ScaledJob need."""
    general_pool: Sequence[pulumi.Resource] = ()
    """The general-purpose EC2NodeClass and NodePool the in-cluster Redis runs on."""
    storage_class: k8s.storage.v1.StorageClass | None = None
    """The class the in-cluster Redis's volume claims (``GpuCluster.storage_class``); required
    unless the worker uses an existing Redis."""
    mirror: Mirror | None = None
    """The stack's ECR pull-through cache (``images.mirror_for``): every image is pulled through it."""


class BatchInference(pulumi.ComponentResource):
    """Redis (in-cluster, or an existing endpoint) and a KEDA ScaledJob of GPU workers."""

    redis_address: pulumi.Output[str]
    """host:port of Redis ("from secret" for an existing Redis: the address lives in a Secret)."""
    queue_name: pulumi.Output[str]
    """The Redis list producers push to."""
    scaled_job_name: pulumi.Output[str]
    """The KEDA ScaledJob."""

    def __init__(self, name: str, args: BatchInferenceArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("gpu-platform:batch:BatchInference", name, None, opts)
        w, ns, n = args.worker, args.worker.namespace, render.names(args.worker)
        in_ns = [r for r in (args.namespace,) if r is not None]
        keda = [r for r in (args.namespace, args.keda_crds) if r is not None]
        p = pulumi.ResourceOptions(parent=self, depends_on=in_ns)

        sa = k8s.core.v1.ServiceAccount(child(name, "sa"), metadata={"name": n["service_account"], "namespace": ns},
                                        opts=p)
        association = None
        if w.model is not None:
            association = model_cache_reader(name, w.model, cluster_name=args.cluster_name, namespace=ns,
                                             service_account=n["service_account"],
                                             opts=pulumi.ResourceOptions(parent=self))
        backing: list[pulumi.Resource] = [sa]
        if w.redis is None:
            password = random.RandomPassword(child(name, "redis-password"), length=32, special=False,
                                             opts=pulumi.ResourceOptions(parent=self))
            url = pulumi.Output.concat("redis://:", password.result, f"@{render.redis_host(w)}:{render.REDIS_PORT}/0")
            secret = k8s.core.v1.Secret(
                child(name, "redis-auth"), metadata={"name": n["secret"], "namespace": ns},
                string_data={render.PASSWORD_KEY: password.result, render.URL_KEY: url}, opts=p)
            if args.storage_class is None:
                raise ValueError(f"{name}: the in-cluster Redis needs BatchInferenceArgs.storage_class "
                                 "(GpuCluster.storage_class), or set the worker's redis to an existing one")
            sc = args.storage_class
            sts = sc.metadata.apply(lambda m: render.redis_statefulset(w, general_pool.pod_placement(), storage_class=m["name"]))
            svc = render.redis_service(w)
            pol = render.network_policy(w)
            backing += [
                secret,
                k8s.apps.v1.StatefulSet(child(name, "redis"), metadata=sts.apply(lambda s: s["metadata"]),
                                        spec=sts.apply(lambda s: images.mirror_images(s["spec"], args.mirror)),
                                        opts=pulumi.ResourceOptions(parent=self, depends_on=[secret, sc, *args.general_pool])),
                k8s.core.v1.Service(child(name, "redis"), metadata=svc["metadata"], spec=svc["spec"], opts=p),
                k8s.networking.v1.NetworkPolicy(child(name, "redis"), metadata=pol["metadata"], spec=pol["spec"], opts=p),
            ]
            self.redis_address = pulumi.Output.from_input(f"{render.redis_host(w)}:{render.REDIS_PORT}")
        else:
            self.redis_address = pulumi.Output.from_input(f"secret {w.redis.address_secret.name}/{w.redis.address_secret.key}")

        auth = render.trigger_authentication(w)
        auth_res = k8s.apiextensions.CustomResource(
            child(name, "trigger-auth"), api_version="keda.sh/v1alpha1", kind="TriggerAuthentication",
            metadata=auth["metadata"], spec=auth["spec"],
            opts=pulumi.ResourceOptions(parent=self, depends_on=[*keda, *backing]))
        job = render.scaled_job(w, args.tier, region=args.region)
        # Job pods are admitted with the service account's credentials (the association first)
        # and scheduled on the tier's NodePools, with GPUs the GPU Operator advertises.
        job_needs = [*keda, *backing, auth_res, *args.node_pools,
                     *(r for r in (association, args.gpu_operator) if r is not None)]
        k8s.apiextensions.CustomResource(
            child(name, "scaled-job"), api_version="keda.sh/v1alpha1", kind="ScaledJob",
            metadata=job["metadata"], spec=images.mirror_images(job["spec"], args.mirror),
            opts=pulumi.ResourceOptions(parent=self, depends_on=job_needs))

        self.queue_name = pulumi.Output.from_input(w.queue)
        self.scaled_job_name = pulumi.Output.from_input(n["job"])
        self.register_outputs({"redis_address": self.redis_address, "queue_name": self.queue_name,
                               "scaled_job_name": self.scaled_job_name})
