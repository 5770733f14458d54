"""The recording engine: runs a Pulumi program offline and records every resource.

It is a ``pulumi.runtime.Mocks`` implementation plus a monitor that keeps what the real
engine would see for each registration: type, name, URN, parent, provider, explicit and
implicit dependencies, and the resolved inputs. Each resource gets realistic outputs
(``synth/mocks.py``), derived from a hash of its type and name so that the same program
gives the same outputs on every run.

Options: each resource also carries ``options``, the resource options that change what
the real engine does, as its RegisterResourceRequest carries them. The object is always
present and holds only the options that are set, under the engine's names:

- ``aliases``: [urn], the resource's own aliases resolved to URNs (an ``Alias`` spec's
  missing name, type, stack, project and parent are the resource's own), in program order;
- ``customTimeouts``: {"create"?, "update"?, "delete"?}, only the durations given ("30m");
- ``ignoreChanges``: [property path], as the engine receives them (camelCase);
- ``deleteBeforeReplace``: bool, when the program set it (an explicit ``False`` too: the
  request marks it as defined);
- ``protect``: bool, when set on the resource or inherited from its parent (the SDK
  passes a parent's ``protect`` down to its children).

A resource with none of them has ``"options": {}``.

Determinism: the order in which the SDK's registrations reach the engine varies between
runs (they go through a thread pool, and the SDK awaits dependencies held in sets of
resource objects, whose iteration order follows memory addresses). The engine therefore
runs every call on the loop's own thread, and reports resources in the order the program
constructed them, recorded by a stack transformation, which runs synchronously inside each
resource's constructor. That order is a function of the program alone.

Stack depth: the SDK hands each RPC to the loop's default executor, and the mock monitor
answers by pumping the loop re-entrantly (``_sync_await``). Running a call inline on the
caller's stack would nest one pump per pending registration, so depth would grow with the
resource count (a few hundred resources pass Python's recursion limit). Submitted calls
are queued instead, first in, first out, and run by a drain callback of the loop itself
(``_LoopExecutor``), one call per turn in which no other callback is ready; a drain that
finds another already running leaves the queue to it. A call runs nested inside another
only when the loop has nothing else left to do (the running call then waits for a queued
one), so depth follows the program's chains of dependencies between RPCs, not their number.
Waiting for an idle turn also keeps the time linear: the SDK pads the ready list back to
its length after each re-entrant pump, so a call made while N callbacks wait costs O(N).

Failures: an exception the loop would only log (a callback that raised) or a wait that
nothing can ever end (no ready callbacks, no timers, no threads: everything runs here)
stops the run with ``EngineError`` instead of a line on stderr or a hang.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import runpy
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
from pulumi.runtime import mocks as pmocks
from pulumi.runtime import settings as psettings
from pulumi.runtime import sync_await as _sdk_sync_await
from pulumi.runtime.config import set_all_config
from pulumi.runtime.stack import run_pulumi_func, wait_for_rpcs
from pulumi.runtime.sync_await import _sync_await

from components.stack import SECRET_PLACEHOLDER
from synth.mocks import ACCOUNT_ID, RecordingMocks
from synth.options import options_of, urn_of

__all__ = ["ACCOUNT_ID", "EngineError", "Recorded", "RecordingMocks", "RecordingMonitor", "RunResult", "run_program"]



@dataclass
class Recorded:
    """One registered resource, as ``resources.json`` writes it."""

    type: str
    name: str
    urn: str
    parent: str | None
    custom: bool
    provider: str | None
    depends_on: list[str]
    inputs: dict[str, Any]
    outputs: dict[str, Any] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)
    revealed_inputs: dict[str, Any] = field(default_factory=dict)
    """The inputs with secrets as their values, as CrossGuard hands them to policies (never written:
    the SDK marks a whole top-level property secret, so a masked ``spec`` would blind the rules)."""

    def contract(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "name": self.name,
            "urn": self.urn,
            "parent": self.parent,
            "custom": self.custom,
            "provider": self.provider,
            "depends_on": self.depends_on,
            "inputs": self.inputs,
            "options": self.options,
        }


def _mask(value: Any) -> Any:
    """A secret value with its structure kept and every leaf replaced by the placeholder
    (a Secret's stringData stays a map, so the manifest still validates)."""
    if isinstance(value, Mapping):
        return {str(k): _mask(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_mask(v) for v in value]
    return SECRET_PLACEHOLDER


def _plain(value: Any, reveal: bool = False) -> Any:
    """Inputs as JSON data: secrets (unless ``reveal``) and unknowns replaced, resources by URN."""
    if isinstance(value, Mapping):
        if value.get(pulumi.runtime.rpc._special_sig_key) == pulumi.runtime.rpc._special_secret_sig:
            return _plain(value.get("value"), reveal) if reveal else _mask(value.get("value"))
        return {str(k): _plain(v, reveal) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v, reveal) for v in value]
    if isinstance(value, pulumi.Resource):
        return {"resource": getattr(value, "_synth_urn", None) or type(value).__name__}
    if isinstance(value, float) and value.is_integer():
        # The wire carries every number as a double; the manifests want integers back.
        return int(value)
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


class RecordingMonitor(pmocks.MockMonitor):
    """A mock monitor that keeps parent, provider and dependencies, and real-engine URNs."""

    def __init__(self, mocks: RecordingMocks):
        super().__init__(mocks)
        self.recorded: list[Recorded] = []
        self.stack_urn = ""

    def make_urn(self, parent: str, type_: str, name: str) -> str:
        return urn_of(psettings.get_stack(), psettings.get_project(), parent, type_, name)

    def RegisterResource(self, request):
        if request.type == "pulumi:pulumi:Stack":
            self.stack_urn = self.make_urn("", request.type, request.name)
            return super().RegisterResource(request)
        resp = super().RegisterResource(request)
        urn = resp.urn
        state = self.resources[urn].state
        inputs = pulumi.runtime.rpc.deserialize_properties(request.object)
        # A provider reference is "<urn>::<id>"; the contract wants the URN.
        provider = request.provider.rsplit("::", 1)[0] if request.provider else None
        deps = set(request.dependencies)
        for pd in request.propertyDependencies.values():
            deps.update(pd.urns)
        deps.discard(urn)
        self.recorded.append(
            Recorded(
                type=request.type,
                name=request.name,
                urn=urn,
                parent=request.parent if request.parent and request.parent != self.stack_urn else None,
                custom=bool(request.custom),
                provider=provider,
                depends_on=sorted(deps),
                inputs=_plain(inputs),
                outputs=_plain(state),
                options=options_of(request),
                revealed_inputs=_plain(inputs, reveal=True),
            )
        )
        return resp


class EngineError(RuntimeError):
    """The event loop failed or can never finish: the run is stopped, not left hanging."""


class _LoopExecutor(concurrent.futures.ThreadPoolExecutor):
    """The loop's default executor: runs submitted calls in order on the loop's thread.

    ``submit`` only queues the call; a drain callback scheduled on the loop runs the queued
    calls first in, first out, one per turn of the loop when no other callback is ready, so
    the stack under a call is the loop's own, whatever the number of calls (see the module
    docstring). It is a ThreadPoolExecutor only
    because asyncio requires one; it never starts a thread.
    """

    def __init__(self, loop: _RecordingLoop):
        super().__init__(max_workers=1)
        self._loop = loop
        self._queue: collections.deque = collections.deque()
        self._draining = False
        self._scheduled = False

    def submit(self, fn, /, *args, **kwargs):
        fut: concurrent.futures.Future = concurrent.futures.Future()
        self._queue.append((fut, fn, args, kwargs))
        self._schedule()
        return fut

    @property
    def pending(self) -> bool:
        return bool(self._queue)

    def run_one(self) -> None:
        fut, fn, args, kwargs = self._queue.popleft()
        if not fut.set_running_or_notify_cancel():
            return
        try:
            result = fn(*args, **kwargs)
        except BaseException as exc:  # noqa: BLE001 - handed to the awaiting coroutine
            fut.set_exception(exc)
        else:
            fut.set_result(result)

    def _schedule(self) -> None:
        if not self._scheduled:
            self._scheduled = True
            self._loop.call_soon(self._drain)

    def _drain(self) -> None:
        self._scheduled = False
        if self._draining:
            # Re-entered from a call that pumps the loop: the outer drain reschedules after it.
            return
        if self._loop._ready:  # type: ignore[attr-defined]
            # Other callbacks first. A call pumps the loop (the monitor's _sync_await), and
            # the SDK pads the ready list back to its length on entry with dummy handles:
            # a call made while N callbacks wait costs O(N), and N grows with the program.
            self._schedule()
            return
        self._draining = True
        try:
            self.run_one()
        finally:
            self._draining = False
        if self._queue:
            self._schedule()


class _RecordingLoop(asyncio.SelectorEventLoop):
    """An event loop that turns lost exceptions and waits without end into ``EngineError``.

    Nothing here does I/O or runs on another thread, so a loop with no ready callbacks, no
    timers and no queued RPC can never make progress again: that is reported at once. The
    first failure is sticky: every later turn of the loop raises it again, so it unwinds
    every nested pump of the loop up to ``run_program``.
    """

    def __init__(self) -> None:
        super().__init__()
        self.executor = _LoopExecutor(self)
        self.set_default_executor(self.executor)
        self.set_exception_handler(self._record_failure)
        self.failure: EngineError | None = None

    def _record_failure(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        if self.failure is None:
            exc = context.get("exception")
            detail = f": {type(exc).__name__}: {exc}" if exc is not None else ""
            self.failure = EngineError(f"the event loop reported an error: {context.get('message')}{detail}")
            self.failure.__cause__ = exc

    def _run_once(self) -> None:
        if self.failure is not None:
            raise self.failure
        if not self._ready and not self._scheduled:  # type: ignore[attr-defined]
            if self.executor.pending:
                # The running call waits for a queued one: run it here (see the module docstring).
                self.executor.run_one()
                return
            self.failure = EngineError(
                "the program waits for something that can never happen: no callback is ready, "
                "no timer is set and no RPC is queued (an awaited future nobody resolves?)")
            raise self.failure
        super()._run_once()  # type: ignore[misc]


@dataclass
class RunResult:
    resources: list[Recorded]
    outputs: dict[str, Any]  # secrets replaced by a placeholder: safe to write
    raw_outputs: dict[str, Any]  # plain values, for answering StackReferences in memory


class _CheapPadding:
    """Stands in for the ``asyncio`` module inside ``pulumi.runtime.sync_await``.

    After each re-entrant pump the SDK pads the loop's ready list back to its old length with
    freshly made cancelled handles; each ``asyncio.Handle`` copies the context, so with many
    registrations pending that padding dominated a large synth (1.4 M handles for 100 services).
    A cancelled handle is skipped whatever its identity, so one shared cancelled handle per loop
    pads the list the same way at no cost. Everything else is the real ``asyncio``.
    """

    def __init__(self) -> None:
        self._padding: dict[int, asyncio.Handle] = {}

    def __getattr__(self, name: str) -> Any:
        return getattr(asyncio, name)

    def Handle(self, callback, args, loop, context=None):  # noqa: N802 - mirrors asyncio.Handle
        handle = self._padding.get(id(loop))
        if handle is None or handle._loop is not loop:
            handle = asyncio.Handle(callback, args, loop, context)
            handle._cancelled = True
            self._padding[id(loop)] = handle
        return handle


def run_program(
    program: Callable[[], None] | Path,
    *,
    project: str,
    stack: str,
    config: Mapping[str, str],
    secret_keys: list[str] | None = None,
    region: str = "us-east-1",
    stack_references: Mapping[str, Mapping[str, Any]] | None = None,
) -> RunResult:
    """Run a program (a callable, or a directory holding ``__main__.py``) on the recording engine.

    ``config`` holds full keys (``project:key``) with string values, as the Pulumi CLI
    passes them. Returns the recorded resources, in registration order, and the stack's
    exported outputs (resolved, secrets replaced by a placeholder).
    """
    loop = _RecordingLoop()
    asyncio.set_event_loop(loop)
    mocks = RecordingMocks(region, stack_references)
    monitor = RecordingMonitor(mocks)
    # Reset the runtime state a previous run in this process may have left.
    psettings.reset_options(project=project, stack=stack)
    set_all_config(dict(config), list(secret_keys or []))
    pmocks.set_mocks(mocks, project=project, stack=stack, preview=False, monitor=monitor)

    if isinstance(program, Path):
        main = program / "__main__.py"
        sys.path.insert(0, str(program))

        def body() -> None:
            runpy.run_path(str(main), run_name="__main__")
    else:
        body = program

    constructed: list[pulumi.Resource] = []

    def record_construction(args: pulumi.ResourceTransformationArgs) -> None:
        constructed.append(args.resource)

    pulumi.runtime.register_stack_transformation(record_construction)
    real_asyncio = _sdk_sync_await.asyncio
    _sdk_sync_await.asyncio = _CheapPadding()  # type: ignore[assignment]
    try:
        _sync_await(run_pulumi_func(body))
        _sync_await(wait_for_rpcs())
        root = psettings.get_root_resource()
        outputs, raw = _sync_await(_resolve_outputs(getattr(root, "outputs", None) or {}))
        sequence = {_sync_await(res.urn.future()): i for i, res in enumerate(constructed)}
    finally:
        _sdk_sync_await.asyncio = real_asyncio
        if isinstance(program, Path):
            sys.path.remove(str(program))
        loop.close()
        asyncio.set_event_loop(None)
    ordered = sorted(monitor.recorded, key=lambda r: sequence.get(r.urn, len(sequence)))
    return RunResult(resources=ordered, outputs=outputs, raw_outputs=raw)


async def _resolve_outputs(outputs: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    redacted: dict[str, Any] = {}
    raw: dict[str, Any] = {}
    for key in sorted(outputs):
        out = pulumi.Output.from_input(outputs[key])
        value = _plain(await out.future(with_unknowns=True))
        raw[key] = value
        redacted[key] = SECRET_PLACEHOLDER if await out.is_secret() else value
    return redacted, raw
