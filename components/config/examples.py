"""Example values: what a stack file ships as a placeholder, and what a real deploy must set.

The convention: a stack file lists the config paths whose values are examples under the key
``exampleValues`` (``cluster.endpoint.publicAccessCidrs``, ``modelServices[0].model.source``,
the same paths error messages use). Offline synth works with them and lists them as advisory
findings; the program under the real Pulumi engine stops before it creates anything while any
is listed. Values that are placeholders whatever the file says (documentation-only CIDRs,
example bucket names) count too, listed or not.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from pydantic import BaseModel

from platform_facts import cidrs
from platform_facts.aws import EXAMPLE_BUCKET_NAMES, EXAMPLE_BUCKET_WORDS

_TOKEN = re.compile(r"([A-Za-z][A-Za-z0-9]*)|\[([0-9]+)\]")


class PathError(ValueError):
    """A path that names no key of the stack config."""


def resolve(model: BaseModel, path: str) -> Any:
    """The value at a camelCase config path such as ``modelServices[0].model.source``."""
    value: Any = model
    for part in path.split("."):
        for match in _TOKEN.finditer(part):
            key, index = match.groups()
            if key is not None:
                if not isinstance(value, BaseModel):
                    raise PathError(f"{path}: {key!r} is inside a value that has no keys")
                fields = type(value).model_fields
                name = next((n for n, f in fields.items() if (f.alias or n) == key), None)
                if name is None:
                    raise PathError(f"{path}: no key {key!r} there; keys: {', '.join(f.alias or n for n, f in fields.items())}")
                value = getattr(value, name)
            else:
                if not isinstance(value, tuple | list) or int(index) >= len(value):
                    raise PathError(f"{path}: no item [{index}] there")
                value = value[int(index)]
        if "".join(m.group(0) for m in _TOKEN.finditer(part)) != part:
            raise PathError(f"{path}: {part!r} is not a key, a key[index] or [index]")
    return value


def is_example_bucket(bucket: str) -> bool:
    return bucket in EXAMPLE_BUCKET_NAMES or any(w in EXAMPLE_BUCKET_WORDS for w in re.split(r"[-.]", bucket))


def _detected(cfg: Any) -> Iterator[tuple[str, str]]:
    """Placeholders found by their content, listed in the file or not."""
    endpoint = cfg.cluster.endpoint
    allow = cidrs.parse(list(endpoint.public_access_cidrs))
    if endpoint.public_access and cidrs.documentation_only(allow):
        yield "cluster.endpoint.publicAccessCidrs", "documentation-only ranges (RFC 5737/3849) admit nobody"
    for i, s in enumerate(cfg.model_services):
        bucket = s.model.source.removeprefix("s3://").split("/", 1)[0] if s.model.source.startswith("s3://") else ""
        if bucket and is_example_bucket(bucket):
            yield f"modelServices[{i}].model.source", f"bucket {bucket!r} is an example name"


def placeholders(cfg: Any) -> list[tuple[str, str]]:
    """(path, why) for every example value a real deploy must replace, in path order."""
    found = {path: "marked in exampleValues" for path in cfg.example_values}
    for path, why in _detected(cfg):
        found.setdefault(path, why)
    return sorted(found.items())
