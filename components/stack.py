"""Read the stack's Pulumi config into a validated :class:`StackConfig`."""

from __future__ import annotations

import json
from typing import Any

from pulumi.runtime import config as runtime_config

from components.config import NAMESPACE, StackConfig, load_stack_config


def _all_config() -> dict[str, Any]:
    # The CLI passes config through PULUMI_CONFIG; tests and synth set it in-process.
    return {**runtime_config.get_config_env(), **runtime_config.CONFIG.get()}


def _decode(value: Any) -> Any:
    if isinstance(value, str) and value[:1] in "{[":
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


def load_config() -> StackConfig:
    """Every key of the ``gpu-platform`` namespace (unknown ones are errors) plus aws:region."""
    config = _all_config()
    prefix = f"{NAMESPACE}:"
    values = {k[len(prefix):]: _decode(v) for k, v in config.items() if k.startswith(prefix)}
    return load_stack_config(values, config.get("aws:region"))
