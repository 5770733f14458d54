"""Config errors: each problem carries the path of the key it is about, as data.

A cross-field rule raises :func:`rule_error` with the path of the offending key relative to
the model that checks it (``("spot", "weight")``, ``("instanceTypes", 0)``). Pydantic adds
where that model sits in the stack file (``loc``); :func:`format_error` joins the two and
writes one line: ``gpuTiers[0].spot.weight: 100 must be below onDemand.weight 100``.
"""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import BaseModel
from pydantic_core import PydanticCustomError

RULE = "config_rule"
Path = tuple[str | int, ...]


class ConfigError(Exception):
    """A stack configuration that cannot be used; ``messages`` has one line per problem."""

    def __init__(self, messages: list[str]):
        self.messages = messages
        super().__init__("\n".join(messages))


def rule_error(path: Path, message: str) -> PydanticCustomError:
    """A broken rule about the key at ``path`` (relative to the validated model; ``()`` for
    the field or model being validated itself). Raise it inside a validator."""
    return PydanticCustomError(RULE, "{message}", {"message": message, "path": tuple(path)})


def rule_path(exc: PydanticCustomError) -> Path:
    """The sub-path a :func:`rule_error` carries."""
    return tuple((exc.context or {}).get("path", ()))


def dotted(loc: Path) -> str:
    """``("gpuTiers", 0, "spot", "weight")`` -> ``gpuTiers[0].spot.weight``."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def format_error(err: Mapping[str, Any], root: type[BaseModel], prefix: Path = ()) -> str:
    """One line for one pydantic error of validating ``root``; ``prefix`` names where the
    validated data sits for the reader (e.g. ``("service",)``)."""
    loc = tuple(err["loc"])
    kind = err["type"]
    if kind == RULE:
        loc += tuple(err["ctx"]["path"])
    path = dotted(prefix + loc)
    if kind == "extra_forbidden":
        allowed = allowed_keys(root, loc[:-1])
        near = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
        hint = f"; did you mean {near[0]}?" if near else ""
        return f"{path}: unknown key; allowed keys: {', '.join(allowed)}{hint}"
    if kind == "missing":
        return f"{path}: required key is missing"
    msg = str(err["msg"]).removeprefix("Value error, ")
    value = err.get("input")
    quiet = isinstance(value, (Mapping, list, tuple)) or kind == RULE or kind.startswith("value_error")
    return f"{path}: {msg}{'' if quiet else f' (got {value!r})'}"


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The model class inside an annotation such as ``tuple[X, ...]`` or ``X | None``."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if typing.get_origin(annotation) in (typing.Union, types.UnionType, tuple, Annotated):
        for arg in typing.get_args(annotation):
            found = _model_in(arg)
            if found:
                return found
    return None


def allowed_keys(root: type[BaseModel], loc: Path) -> list[str]:
    """The keys a stack file may write at ``loc`` under ``root`` (list indexes skipped)."""
    model: type[BaseModel] | None = root
    for part in loc:
        if isinstance(part, int) or model is None:
            continue
        field = next((f for n, f in model.model_fields.items() if f.alias == part or n == part), None)
        model = _model_in(field.annotation) if field else None
    if model is None:
        return []
    hidden: frozenset[str] = getattr(model, "HIDDEN_KEYS", frozenset())
    return sorted(f.alias or n for n, f in model.model_fields.items() if n not in hidden)
