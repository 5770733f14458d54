"""The recording engine at scale: stack depth independent of the resource count, failures
that surface instead of hanging, and a real-sized platform that synthesizes."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import gc
import signal
import sys
import warnings
from collections import Counter

import pulumi
import pulumi_kubernetes as k8s
import pytest

from synth import engine
from synth.engine import EngineError, run_program
from tests.conftest import build, load, load_with


@contextlib.contextmanager
def _deadline(seconds: float):
    """A hang becomes a failing test, not a stuck suite."""

    def expired(signum, frame):
        raise TimeoutError(f"the engine did not finish within {seconds} s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@pytest.fixture
def aborted_run():
    """An aborted run leaves coroutines that never started; collect them here, quietly,
    rather than let their RuntimeWarnings land on whichever test runs next."""
    yield
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        gc.collect()


def _config_maps(count: int):
    def program() -> None:
        for i in range(count):
            k8s.core.v1.ConfigMap(f"cm{i}", metadata={"name": f"cm{i}"}, data={"i": str(i)})

    return program


def _frames() -> int:
    frame, n = sys._getframe(), 0
    while frame is not None:
        n, frame = n + 1, frame.f_back
    return n


def test_stack_depth_does_not_grow_with_the_resource_count(monkeypatch):
    depths: list[int] = []
    new_resource = engine.RecordingMocks.new_resource

    def spy(self, args):
        depths.append(_frames())
        return new_resource(self, args)

    monkeypatch.setattr(engine.RecordingMocks, "new_resource", spy)
    few = run_program(_config_maps(10), project="p", stack="dev", config={})
    deepest_few = max(depths)
    depths.clear()
    # Far past what Python's recursion limit allowed when every RPC ran on the caller's stack.
    many = run_program(_config_maps(1500), project="p", stack="dev", config={})
    assert len(few.resources) == 10 and len(many.resources) == 1500
    assert [r.name for r in many.resources] == [f"cm{i}" for i in range(1500)]
    assert max(depths) == deepest_few < 100


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_an_exception_lost_in_the_event_loop_fails_the_run(aborted_run):
    def program() -> None:
        asyncio.get_event_loop().call_soon(lambda: 1 / 0)
        k8s.core.v1.ConfigMap("cm", metadata={"name": "cm"})

    with _deadline(60), pytest.raises(EngineError, match="ZeroDivisionError") as info:
        run_program(program, project="p", stack="dev", config={})
    assert isinstance(info.value.__cause__, ZeroDivisionError)
    # The next run in the same process starts clean.
    assert len(run_program(_config_maps(3), project="p", stack="dev", config={}).resources) == 3


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_a_wait_that_can_never_end_fails_instead_of_hanging(aborted_run):
    def program() -> None:
        never = asyncio.get_event_loop().create_future()
        pulumi.export("never", pulumi.Output.from_input(never))

    with _deadline(60), pytest.raises(EngineError, match="can never happen"):
        run_program(program, project="p", stack="dev", config={})


def _with_services(count: int):
    def mutate(values: dict) -> None:
        base = values["modelServices"][0]
        values["modelServices"] = [dict(copy.deepcopy(base), name=f"svc{i:02d}") for i in range(count)]

    return mutate


def _children_by_service(result) -> dict[str, Counter]:
    services = {r.urn: r.name for r in result.resources if r.type == "gpu-platform:serving:ModelService"}
    children: dict[str, Counter] = {name: Counter() for name in services.values()}
    for r in result.resources:
        if r.parent in services:
            children[services[r.parent]][r.type] += 1
    return children


def test_a_platform_with_sixty_model_services_synthesizes():
    one = build(load("dev"))
    (per_service,) = _children_by_service(one).values()
    assert per_service["kubernetes:apps/v1:Deployment"] >= 1

    with _deadline(240):
        sixty = build(load_with("dev", _with_services(60)))
    children = _children_by_service(sixty)
    assert sorted(children) == [f"llm-dev-svc{i:02d}" for i in range(60)]
    assert all(c == per_service for c in children.values())
    # Everything else is the same platform; each service adds its component and children.
    size = sum(per_service.values()) + 1
    assert len(sixty.resources) == len(one.resources) + 59 * size
    assert len({r.urn for r in sixty.resources}) == len(sixty.resources)


def test_the_sdk_keeps_its_own_asyncio_after_a_run():
    """The engine swaps the SDK's padding handles for a shared cancelled one only while it runs."""
    import asyncio

    from pulumi.runtime import sync_await

    run_program(lambda: None, project="p", stack="dev", config={})
    assert sync_await.asyncio is asyncio
