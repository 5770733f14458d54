"""Helm releases and namespaces, the way every component creates them."""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components import versions


def namespace(name: str, ns: str, opts: pulumi.ResourceOptions, labels: dict[str, str] | None = None) -> k8s.core.v1.Namespace:
    return k8s.core.v1.Namespace(name, metadata={"name": ns, "labels": labels or {}}, opts=opts)


def release(name: str, chart: versions.Chart, *, release_name: str, namespace: str,
            values: pulumi.Input[dict[str, Any]] | None = None, skip_crds: bool = False,
            opts: pulumi.ResourceOptions) -> k8s.helm.v3.Release:
    """A real Helm release (hooks run) with an explicit name (no random suffix), pinned."""
    return k8s.helm.v3.Release(
        name,
        name=release_name,
        chart=chart.chart,
        version=chart.version,
        repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=chart.repository) if chart.repository else None,
        namespace=namespace,
        values=values or {},
        skip_crds=skip_crds,
        atomic=True,
        timeout=900,
        opts=opts,
    )
