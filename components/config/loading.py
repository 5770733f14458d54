"""Entry points that validate raw values and turn every problem into one ConfigError."""

from __future__ import annotations

import typing
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic_core import PydanticCustomError

from components.config import rules
from components.config.errors import RULE, ConfigError, dotted, format_error, rule_path
from components.config.serving import ModelServiceConfig
from components.config.stack import StackConfig
from components.config.tiers import GpuTier

_M = typing.TypeVar("_M", bound=BaseModel)


def load_stack_config(values: Mapping[str, Any], region: str | None) -> StackConfig:
    """Validate the ``gpu-platform`` namespace values (keys without the prefix) and ``aws:region``."""
    data = dict(values)
    if region is None:
        raise ConfigError(["aws:region: required, e.g. us-east-1"])
    data["region"] = region
    try:
        return StackConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(sorted({format_error(_region_as_written(e), StackConfig) for e in exc.errors()})) from None


def _region_as_written(err: Any) -> Any:
    """The region is written ``aws:region`` in the stack file."""
    loc = tuple(err["loc"])
    return {**err, "loc": ("aws:region",) + loc[1:]} if loc[:1] == ("region",) else err


def load_model(model: type[_M], data: Any, prefix: str) -> _M:
    """Validate ``data`` as ``model``; errors name paths under ``prefix`` (e.g. ``service``)."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(sorted({format_error(e, model, (prefix,)) for e in exc.errors()})) from None


def check_service_on_tier(path: str, service: ModelServiceConfig, tier: GpuTier, environment: str) -> None:
    """The cross-field checks of a service against the tier it runs on (raises ConfigError)."""
    try:
        rules.check_service((path,), service, {tier.name: tier}, environment == "prod")
    except PydanticCustomError as exc:
        if exc.type != RULE:
            raise
        raise ConfigError([f"{dotted(rule_path(exc))}: {exc.message()}"]) from None
