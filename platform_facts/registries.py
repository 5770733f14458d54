"""Container registries: which ones Amazon ECR pull-through cache can mirror, and how an image
reference names its registry.

Sources: Amazon ECR User Guide, "Sync an upstream registry with an Amazon ECR private registry"
(docs.aws.amazon.com/AmazonECR/latest/userguide/pull-through-cache.html) for the supported
upstreams and which need credentials; ECR API reference, CreatePullThroughCacheRule, for the
``upstreamRegistryUrl`` of each, the ``ecrRepositoryPrefix`` bounds and the ``credentialArn``
pattern; "Storing your upstream repository credentials in an AWS Secrets Manager secret"
(…/pull-through-cache-creating-secret.html) for the secret name prefix and keys; "IAM
permissions required to sync an upstream registry" (…/pull-through-cache-iam.html) for the
actions a pulling identity needs.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Upstream:
    """One upstream registry ECR pull-through cache supports."""

    name: str
    """The API's ``upstreamRegistry`` value (``docker-hub``, ``ecr-public``...)."""
    url: str
    """The ``upstreamRegistryUrl`` of the rule: the registry host."""
    hosts: tuple[str, ...]
    """Hosts an image reference names this registry by (Docker Hub has three spellings)."""
    path: str
    """Our name for its cache namespace: the rule's ecrRepositoryPrefix is ``<prefix>/<path>``."""
    needs_credentials: bool
    """True when the rule needs a Secrets Manager secret (``credentialArn``)."""


DOCKER_HUB = "docker-hub"
ECR_PUBLIC = "ecr-public"
K8S = "k8s"
QUAY = "quay"
GITHUB = "github-container-registry"
GITLAB = "gitlab-container-registry"

# Upstreams with a fixed host. Amazon ECR Public, the Kubernetes registry and Quay need no
# authentication; Docker Hub, GitHub and GitLab (GitLab.com only) need a Secrets Manager secret.
# Not listed: Microsoft Azure Container Registry (``<name>.azurecr.io``, one rule per registry
# name), Chainguard (listed by the user guide, with credentials) and Amazon ECR itself
# (cross-account, authenticated by an IAM role): none of our images comes from them.
UPSTREAMS: tuple[Upstream, ...] = (
    Upstream(ECR_PUBLIC, "public.ecr.aws", ("public.ecr.aws",), "ecr-public", needs_credentials=False),
    Upstream(K8S, "registry.k8s.io", ("registry.k8s.io",), "k8s", needs_credentials=False),
    Upstream(QUAY, "quay.io", ("quay.io",), "quay", needs_credentials=False),
    Upstream(DOCKER_HUB, "registry-1.docker.io", ("docker.io", "index.docker.io", "registry-1.docker.io"),
             "docker-hub", needs_credentials=True),
    Upstream(GITHUB, "ghcr.io", ("ghcr.io",), "ghcr", needs_credentials=True),
    Upstream(GITLAB, "registry.gitlab.com", ("registry.gitlab.com",), "gitlab", needs_credentials=True),
)
BY_NAME = {u.name: u for u in UPSTREAMS}

# Docker's reference grammar (distribution/reference): a reference without a registry host
# names Docker Hub, and a one-part repository there lives under ``library/``.
DEFAULT_REGISTRY = "docker.io"
OFFICIAL_NAMESPACE = "library"

# Registries our charts and images use that pull-through cache cannot mirror: NVIDIA's NGC
# registry (GPU Operator and its operands) is not among the supported upstreams.
UNSUPPORTED_KNOWN = ("nvcr.io",)

# CreatePullThroughCacheRule: ecrRepositoryPrefix is 2-30 characters of this pattern (a "/" is
# always assumed after it); credentialArn must name a secret under ``ecr-pullthroughcache/``.
REPOSITORY_PREFIX_MIN = 2
REPOSITORY_PREFIX_MAX = 30
REPOSITORY_PREFIX_PATTERN = r"^(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*$"
SECRET_NAME_PREFIX = "ecr-pullthroughcache/"
SECRET_KEYS = ("username", "accessToken")

# What an identity that pulls through a cache rule needs besides the usual pull actions:
# BatchImportUpstreamImage always, CreateRepository for the first pull of an image (the
# cache repository does not exist yet).
PULL_THROUGH_ACTIONS = ("ecr:BatchImportUpstreamImage", "ecr:CreateRepository")

# The private registry's host (ECR user guide, "Private registry concepts").
ECR_HOST_SUFFIX = ".dkr.ecr."


def ecr_host(account: str, region: str, dns_suffix: str = "amazonaws.com") -> str:
    return f"{account}{ECR_HOST_SUFFIX}{region}.{dns_suffix}"


def registry_of(ref: str) -> str:
    """The registry host an image reference pulls from, as Docker resolves it: the first path
    component when it has a ``.`` or ``:`` or is ``localhost``, else Docker Hub."""
    first, sep, _ = ref.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        return first
    return DEFAULT_REGISTRY


def upstream_of(ref: str) -> Upstream | None:
    """The supported upstream an image reference comes from, or None."""
    host = registry_of(ref)
    return next((u for u in UPSTREAMS if host in u.hosts), None)


def is_docker_hub(ref: str) -> bool:
    up = upstream_of(ref)
    return up is not None and up.name == DOCKER_HUB


# Egress figures (production-facts section 10). Docker Hub since 2025-04-01: unauthenticated
# pulls are limited per IPv4 address (or IPv6 /64); a free authenticated account gets 100
# (docker/docs, content/manuals/docker-hub/usage/).
DOCKER_HUB_ANONYMOUS_PULLS_PER_HOUR = 10
DOCKER_HUB_PERSONAL_PULLS_PER_HOUR = 100
# NAT gateway: per hour and per GB processed (chime/terraform-aws-alternat README, us-east-1).
NAT_GATEWAY_USD_PER_HOUR = 0.045
NAT_GATEWAY_USD_PER_GB = 0.045
# S3 gateway endpoints "come at no additional charge" (AWS Prescriptive Guidance, WKLD.12);
# interface endpoints bill per AZ-hour plus per GB, $0.01/GB for the first PB
# (aws.amazon.com/privatelink/pricing).
INTERFACE_ENDPOINT_USD_PER_GB = 0.01
