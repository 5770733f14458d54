"""Image references through the ECR pull-through cache: the one mapping every image of our own
workloads (and the chart images whose registry we set) goes through.

``image_ref("redis:7.4.6-alpine", mirror)`` gives
``123456789012.dkr.ecr.us-east-1.amazonaws.com/mirror/docker-hub/library/redis:7.4.6-alpine``
when the stack has a docker-hub rule; images from a registry without a rule (nvcr.io, or an
upstream whose credentials the stack does not give) stay as they are.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from components.config import PullThroughCacheConfig
from platform_facts import registries


@dataclass(frozen=True)
class Mirror:
    """Where the stack's pull-through cache rules put each upstream's images."""

    host: str
    """The private registry: ``<account>.dkr.ecr.<region>.amazonaws.com``."""
    prefixes: tuple[tuple[str, str], ...]
    """(upstream name, the rule's ecrRepositoryPrefix) per rule."""

    def prefix(self, upstream: str) -> str | None:
        return dict(self.prefixes).get(upstream)


def mirror_for(cache: PullThroughCacheConfig, *, account: str, region: str) -> Mirror | None:
    """The stack's mirror, or None when the cache is off (images are then left as written)."""
    if not cache.enabled:
        return None
    return Mirror(registries.ecr_host(account, region),
                  tuple((u.name, cache.rule_prefix(u)) for u in cache.upstreams()))


def _path(ref: str, upstream: registries.Upstream) -> str:
    """The repository path (with tag or digest) under the upstream: the host dropped, and for
    Docker Hub's official images the implicit ``library/`` made explicit (ECR needs it)."""
    first, sep, rest = ref.partition("/")
    path = rest if sep and first in upstream.hosts else ref
    if upstream.name == registries.DOCKER_HUB and "/" not in path.split("@")[0].split(":")[0]:
        path = f"{registries.OFFICIAL_NAMESPACE}/{path}"
    return path


def image_ref(ref: str, mirror: Mirror | None) -> str:
    """``ref`` pulled through the stack's cache when a rule covers its registry, else ``ref``."""
    if mirror is None:
        return ref
    upstream = registries.upstream_of(ref)
    prefix = mirror.prefix(upstream.name) if upstream is not None else None
    if upstream is None or prefix is None:
        return ref
    return f"{mirror.host}/{prefix}/{_path(ref, upstream)}"


def chart_image(registry: str, repository: str, mirror: Mirror | None) -> tuple[str, str]:
    """A chart's ``image.registry`` and ``image.repository`` through the cache: the same mapping
    as ``image_ref``, split where the chart splits it."""
    mapped = image_ref(f"{registry}/{repository}", mirror)
    if mapped == f"{registry}/{repository}":
        return registry, repository
    assert mirror is not None
    upstream = registries.upstream_of(f"{registry}/{repository}")
    assert upstream is not None
    new_registry = f"{mirror.host}/{mirror.prefix(upstream.name)}"
    return new_registry, mapped.removeprefix(f"{new_registry}/")


_CONTAINER_LISTS = ("containers", "initContainers", "ephemeralContainers")


def mirror_images(obj: Any, mirror: Mirror | None) -> Any:
    """A copy of a manifest (or any part of one) with every container's image through
    ``image_ref``: pod specs, pod templates, job templates, at any depth."""
    if mirror is None:
        return obj
    if isinstance(obj, Mapping):
        out = {k: mirror_images(v, mirror) for k, v in obj.items()}
        for key in _CONTAINER_LISTS:
            if isinstance(out.get(key), list):
                out[key] = [{**c, "image": image_ref(c["image"], mirror)} if isinstance(c, Mapping) and "image" in c else c
                            for c in out[key]]
        return out
    if isinstance(obj, list):
        return [mirror_images(v, mirror) for v in obj]
    return obj
