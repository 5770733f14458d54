"""Model of the cluster's egress: VPC endpoints and the ECR pull-through cache."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator, model_validator

from components.config.base import ConfigModel
from components.config.errors import rule_error
from platform_facts import registries

InterfaceEndpoint = Literal["ecr.api", "ecr.dkr", "sts"]
SECRET_ARN = re.compile(r"^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:[0-9]{12}:secret:ecr-pullthroughcache/[A-Za-z0-9/_+=.@-]+$")
SECRET_NAME = re.compile(r"^ecr-pullthroughcache/[A-Za-z0-9/_+=.@-]+$")


class PullThroughCacheConfig(ConfigModel):
    """ECR pull-through cache rules, and our workloads' images pulled through them."""

    enabled: bool = Field(default=False, description="Create the rules and pull our images through them.")
    repository_prefix: str = Field(
        default="mirror",
        description="Namespace of the cache repositories: each upstream's rule caches under <repositoryPrefix>/<upstream "
        "path> (docker-hub, ecr-public, k8s, quay, ghcr, gitlab), which AWS bounds to 2-30 characters.",
    )
    credentials: dict[str, str] = Field(
        default_factory=dict,
        description="Secrets Manager secret (name or ARN, under ecr-pullthroughcache/, keys username and accessToken) per "
        "upstream that needs one. docker-hub is required when enabled; an upstream without a secret gets no rule "
        "and its images are pulled as before.",
    )

    @field_validator("repository_prefix")
    @classmethod
    def _prefix(cls, v: str) -> str:
        if not re.match(registries.REPOSITORY_PREFIX_PATTERN, v):
            raise rule_error((), f"{v!r} is not an ECR repository prefix: lowercase letters and digits, separated by "
                             "single '.', '_', '-' or '/'")
        if len(v) < registries.REPOSITORY_PREFIX_MIN:
            raise rule_error((), f"{v!r} is shorter than the {registries.REPOSITORY_PREFIX_MIN} characters AWS requires "
                             "of a repository prefix")
        longest = max(registries.UPSTREAMS, key=lambda u: len(u.path))
        rule_prefix = f"{v}/{longest.path}"
        if not registries.REPOSITORY_PREFIX_MIN <= len(rule_prefix) <= registries.REPOSITORY_PREFIX_MAX:
            most = registries.REPOSITORY_PREFIX_MAX - len(longest.path) - 1
            raise rule_error((), f"{v!r} makes the {longest.name} rule's ecrRepositoryPrefix {rule_prefix!r} "
                             f"{len(rule_prefix)} characters; AWS allows {registries.REPOSITORY_PREFIX_MIN}-"
                             f"{registries.REPOSITORY_PREFIX_MAX}, so use at most {most}")
        return v

    @field_validator("credentials")
    @classmethod
    def _secrets(cls, v: dict[str, str]) -> dict[str, str]:
        needing = [u.name for u in registries.UPSTREAMS if u.needs_credentials]
        for upstream, secret in v.items():
            if upstream not in needing:
                known = upstream in registries.BY_NAME
                raise rule_error((upstream,), (f"ECR pulls {upstream} without credentials" if known else
                                               f"{upstream!r} is not an upstream ECR pull-through cache supports")
                                 + f"; secrets are for {', '.join(needing)}")
            if not (SECRET_NAME.match(secret) or SECRET_ARN.match(secret)):
                raise rule_error((upstream,), f"{secret!r} is not a Secrets Manager secret name or ARN under "
                                 f"{registries.SECRET_NAME_PREFIX!r}, which ECR requires of pull-through cache "
                                 f"credentials (e.g. {registries.SECRET_NAME_PREFIX}{upstream})")
        return v

    @model_validator(mode="after")
    def _docker_hub(self) -> PullThroughCacheConfig:
        if self.enabled and registries.DOCKER_HUB not in self.credentials:
            raise rule_error(("credentials",), "needs a docker-hub secret when enabled: ECR caches Docker Hub only with "
                             "credentials, and the vLLM and Redis images come from there")
        return self

    def upstreams(self) -> tuple[registries.Upstream, ...]:
        """The upstreams that get a rule: those that need no credentials, and those given one."""
        if not self.enabled:
            return ()
        return tuple(u for u in registries.UPSTREAMS if not u.needs_credentials or self.credential(u.name) is not None)

    def credential(self, upstream: str) -> str | None:
        """The secret (name or ARN) given for an upstream, if any."""
        return self.credentials.get(upstream)

    def rule_prefix(self, upstream: registries.Upstream) -> str:
        return f"{self.repository_prefix}/{upstream.path}"


class EgressConfig(ConfigModel):
    """How the nodes reach AWS services and registries: VPC endpoints and a pull-through cache."""

    s3_gateway_endpoint: bool = Field(
        default=True,
        description="S3 gateway endpoint on the private route tables (no charge): model weights and ECR image layers "
        "bypass the NAT gateway. Created with the VPC; an existing VPC's endpoints are its owner's.",
    )
    interface_endpoints: tuple[InterfaceEndpoint, ...] = Field(
        default=(),
        description="Interface endpoints in the private subnets (billed per zone-hour and per GB): ecr.api, ecr.dkr, sts.",
    )
    pull_through_cache: PullThroughCacheConfig = Field(
        default_factory=PullThroughCacheConfig, description="ECR pull-through cache for the upstream registries.")

    @field_validator("interface_endpoints")
    @classmethod
    def _unique(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        for i, name in enumerate(v):
            if name in v[:i]:
                raise rule_error((i,), f"{name!r} is listed twice")
        return v

    @model_validator(mode="after")
    def _ecr_pair(self) -> EgressConfig:
        eps = set(self.interface_endpoints)
        if ("ecr.dkr" in eps) != ("ecr.api" in eps):
            raise rule_error(("interfaceEndpoints",), "ecr.api and ecr.dkr go together: a pull calls both (the "
                             "API for the token and manifests, the registry endpoint for the image)")
        if "ecr.dkr" in eps and not self.s3_gateway_endpoint:
            raise rule_error(("s3GatewayEndpoint",), "false with ECR interface endpoints: ECR serves image layers from "
                             "S3, so without the gateway endpoint every layer still goes through NAT")
        return self
