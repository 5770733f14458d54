"""Pod lifecycle: readiness, termination with a drain, and deletion (requests go back to the caller)."""

from __future__ import annotations

import math

from simulator.state import Event, Pod, ReplaySetup, ReplayState


def terminate(setup: ReplaySetup, pod: Pod, t: float) -> None:
    """SIGTERM: the pod leaves the Service's endpoints and drains until the ``preStop`` sleep
    plus vLLM's shutdown timeout have passed."""
    pod.terminating = True
    pod.drain_deadline = t + setup.pre_stop_seconds + setup.shutdown_timeout_seconds


def retry(state: ReplayState, idx: int) -> None:
    """The caller sees a reset connection and sends the request again, from the start."""
    state.retries += 1
    state.outcomes.first_token[idx] = math.nan
    state.gateway.append(idx)


def delete_pod(state: ReplayState, pod: Pod) -> None:
    """The pod is gone: whatever it queued or was running is retried by the caller."""
    pod.gone = True
    for idx in list(pod.queue):
        retry(state, idx)
    for seq in pod.running:
        retry(state, seq.request)
    pod.queue.clear()
    pod.running.clear()
    if pod.node is not None and pod in pod.node.pods:
        pod.node.pods.remove(pod)


def advance_pods(state: ReplayState, t: float) -> None:
    """Started pods turn Ready; terminating pods are deleted once idle, at their drain deadline,
    or at once if they never became Ready."""
    for pod in state.pods:
        if pod.gone:
            continue
        if not pod.ready and pod.start_at is not None and t >= pod.start_at and not pod.terminating:
            pod.ready = True
            state.events.append(Event(t, "replica-ready", t - pod.created))
        if pod.terminating and (not pod.busy or t >= pod.drain_deadline or not pod.ready):
            delete_pod(state, pod)
    state.pods = [q for q in state.pods if not q.gone]
