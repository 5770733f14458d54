"""Least privilege for every pod the platform renders, and the Pod Security levels of its namespaces.

Every pod runs as an unprivileged user with all capabilities dropped, no privilege escalation,
the runtime's default seccomp profile and a read-only root filesystem; what a process must
write gets its own volume, named where the pod is rendered. No pod mounts a Kubernetes API
token: none calls the API server, and EKS Pod Identity does not need it (the Pod Identity
webhook injects its own projected token, audience ``pods.eks.amazonaws.com``, as the volume
``eks-pod-identity-token``, whatever ``automountServiceAccountToken`` says).
"""

from __future__ import annotations

from typing import Any, Literal

# Above 10000: no clash with a system account of the node or of the image (checkov CKV_K8S_40).
# The images' own files stay readable (world-readable, as installed); nothing in them is
# written, so the user needs no entry in the image's /etc/passwd.
RUN_AS_USER = 10001
RUN_AS_GROUP = 10001

PodSecurityLevel = Literal["privileged", "baseline", "restricted"]
PSA_PREFIX = "pod-security.kubernetes.io/"


def pod_security_context() -> dict[str, Any]:
    """The pod-level securityContext. ``fsGroup`` makes emptyDir and PVC volumes writable by the
    group; it does not apply to hostPath volumes (see ``cache.owner_container``)."""
    return {
        "runAsNonRoot": True,
        "runAsUser": RUN_AS_USER,
        "runAsGroup": RUN_AS_GROUP,
        "fsGroup": RUN_AS_GROUP,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def container_security_context() -> dict[str, Any]:
    """Every container's securityContext but the cache owner step's."""
    return {
        "runAsNonRoot": True,
        "runAsUser": RUN_AS_USER,
        "runAsGroup": RUN_AS_GROUP,
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "privileged": False,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def namespace_labels(enforce: PodSecurityLevel) -> dict[str, str]:
    """Pod Security Admission labels: enforce the given level, warn and audit at ``restricted``
    so anything short of it shows in ``kubectl`` warnings and the audit log."""
    return {
        f"{PSA_PREFIX}enforce": enforce,
        f"{PSA_PREFIX}warn": "restricted",
        f"{PSA_PREFIX}audit": "restricted",
    }


def workload_namespace_level(uses_host_path: bool, *, routed: bool = False) -> PodSecurityLevel:
    """A namespace of model services and batch workers: ``restricted`` unless one of its pods
    mounts the node's hostPath model cache, which every level but ``privileged`` forbids
    (``baseline`` already bans hostPath volumes), or it runs an llm-d Router, whose chart gives
    the EPP container no securityContext (``baseline`` admits it, ``restricted`` does not)."""
    if uses_host_path:
        return "privileged"
    return "baseline" if routed else "restricted"
