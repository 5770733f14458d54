"""Read another stack's outputs while the program is being constructed."""

from __future__ import annotations

from typing import Any

import pulumi
from pulumi.runtime.sync_await import _sync_await


def read_output(ref: pulumi.StackReference, name: str) -> Any:
    """The plain value of a StackReference output, available before any resource is created.

    StackReference values come from the referenced stack's saved state, so they are known
    in preview as in update. Resources whose *shape* depends on them (which tier a service
    runs on, what it validates against) must not be created inside ``apply()``; this reads
    the value the way the SDK's synchronous invokes do, by pumping the event loop.
    """
    details = _sync_await(ref.get_output_details(name))
    value = details.value if details.value is not None else details.secret_value
    if value is None:
        raise KeyError(f"stack {ref.name!r} has no output {name!r}")
    return value
