"""The exported stack-file schema documents every key an editor can offer."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from tests.conftest import REPO


def _properties(node: Any, where: str = "#") -> Iterator[tuple[str, Any]]:
    """Every (path, schema) under a ``properties`` map, at any depth ($defs included)."""
    if isinstance(node, dict):
        for name, prop in (node.get("properties") or {}).items():
            yield f"{where}/properties/{name}", prop
        for key, child in node.items():
            yield from _properties(child, f"{where}/{key}")
    elif isinstance(node, list):
        for i, child in enumerate(node):
            yield from _properties(child, f"{where}/{i}")


def test_every_property_has_a_description():
    schema = json.loads((REPO / "stacks" / "schema.json").read_text())
    found = list(_properties(schema))
    assert len(found) > 100, "the walk must reach the $defs"
    missing = [path for path, prop in found if not str(prop.get("description", "")).strip()]
    assert missing == [], "add a description to: " + ", ".join(missing)


def test_the_walk_reaches_nested_definitions():
    schema = {"$defs": {"A": {"properties": {"x": {"description": "d"}, "y": {"anyOf": [{"properties": {"z": {}}}]}}}}}
    assert [p for p, _ in _properties(schema)] == [
        "#/$defs/A/properties/x", "#/$defs/A/properties/y", "#/$defs/A/properties/y/anyOf/0/properties/z"]
