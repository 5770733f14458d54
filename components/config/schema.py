"""JSON Schema of a stack file, exported from the models for editors (``stacks/schema.json``)."""

from __future__ import annotations

from typing import Any

from components.config.base import NAMESPACE
from components.config.stack import StackConfig


def stack_file_schema() -> dict[str, Any]:
    """JSON Schema of a stack file (``stacks/Pulumi.<env>.yaml``), for editors."""
    inner = StackConfig.model_json_schema(by_alias=True)
    defs = inner.pop("$defs", {})
    props = {f"{NAMESPACE}:{k}": v for k, v in inner["properties"].items() if k != "region"}
    props["aws:region"] = inner["properties"]["region"]
    required = [f"{NAMESPACE}:{k}" for k in inner.get("required", []) if k != "region"] + ["aws:region"]
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "gpu-platform stack file",
        "type": "object",
        "properties": {
            "config": {
                "description": "Stack settings: aws:region and the gpu-platform namespace.",
                "type": "object",
                "properties": props,
                "required": sorted(required),
                "patternProperties": {r"^(?!gpu-platform:)[A-Za-z0-9_-]+:": {}},
                "additionalProperties": False,
            },
            "encryptionsalt": {"type": "string", "description": "Written by Pulumi for the passphrase secrets provider."},
            "secretsprovider": {"type": "string", "description": "Pulumi secrets provider URL."},
            "encryptedkey": {"type": "string", "description": "Data key encrypted by the secrets provider (Pulumi)."},
        },
        "required": ["config"],
        "$defs": defs,
    }
