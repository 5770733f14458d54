"""What every config model shares: the base model, the closed patterns, and duration units."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

NAMESPACE = "gpu-platform"

# Karpenter's duration pattern for expireAfter / consolidateAfter (NodePool CRD v1.14.1).
KARPENTER_DURATION = r"^([0-9]+(s|m|h))+$"
# Prometheus duration (model.ParseDuration): units ms, s, m, h, d, w, y.
PROMETHEUS_DURATION = r"^([0-9]+(ms|s|m|h|d|w|y))+$"
DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"

DnsName = Annotated[str, Field(pattern=DNS_LABEL, max_length=40)]
ImageRef = Annotated[str, Field(min_length=1, max_length=255)]


class ConfigModel(BaseModel):
    """Plain data: unknown keys refused, frozen, camelCase keys as written in the stack file."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        alias_generator=to_camel,
        populate_by_name=True,
        validate_default=True,
    )


def karpenter_seconds(duration: str) -> int:
    """Seconds in a Karpenter duration such as ``1h30m``."""
    unit = {"s": 1, "m": 60, "h": 3600}
    return sum(int(n) * unit[u] for n, u in re.findall(r"([0-9]+)(s|m|h)", duration))
