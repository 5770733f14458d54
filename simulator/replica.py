"""One vLLM replica for one tick, as a fluid model (``simulator.perf`` has the step-time sources).

Admission while ``max_num_seqs`` and the KV budget allow; prefill at ``delta`` seconds per
prompt token (the first token comes out of prefill); decode steps of ``alpha + beta * batch``
seconds, one token per running sequence; when the KV cache overflows, the newest sequence is
preempted and recomputed (vLLM's default ``RECOMPUTE`` mode: back to the queue, prefill again).
Prefill that runs past the tick is carried as debt into the next one. Automatic prefix caching
(``simulator.prefix``): the prompt's leading blocks still in the replica's cache are not
prefilled again (a preempted request's recompute hits its own blocks too).
"""

from __future__ import annotations

import heapq
import math

from simulator.prefix import cached_tokens, replica_cache
from simulator.state import DT, FirstToken, Pod, ReplaySetup, ReplayState, Sequence
from simulator.trace import Request


def serve(setup: ReplaySetup, state: ReplayState, pod: Pod, t0: float) -> None:
    """The replica's work in the tick ``[t0, t0 + DT)``: admit and prefill, then decode."""
    budget = DT - pod.debt
    pod.debt = 0.0
    budget = admit_and_prefill(setup, state, pod, t0, budget)
    if budget <= 0:
        pod.debt = -budget
        return
    if not pod.running:
        return
    decode(setup, state, pod, t0, budget)
    preempt_on_overflow(setup, state, pod)


def admit_and_prefill(setup: ReplaySetup, state: ReplayState, pod: Pod, t0: float, budget: float) -> float:
    """The scheduler takes queued requests while a sequence slot and the KV cache allow (one
    request is always admitted into an empty batch) and prefills each; returns the seconds left."""
    perf, out = setup.perf, state.outcomes
    while pod.queue and len(pod.running) < perf.max_num_seqs:
        idx = pod.queue[0]
        r = setup.requests[idx]
        need = r.prompt_tokens + 1
        if pod.kv_used + need > perf.kv_tokens and pod.running:
            break
        pod.queue.popleft()
        # Within the tick, work starts no earlier than the request arrived.
        start = max(t0 + (DT - budget), out.arrival[idx])
        budget = DT - (start - t0)
        if math.isnan(out.admitted[idx]):
            out.admitted[idx] = start
        hit = prefix_hit(setup, pod, r)
        budget -= perf.delta * (r.prompt_tokens - hit)
        done = t0 + (DT - budget)
        if math.isnan(out.first_token[idx]):  # a preempted request keeps its first token
            out.cached[idx] = hit
            out.first_token[idx] = done
            state.first_tokens.append(FirstToken(done, done - out.arrival[idx]))
            out.capacity[idx] = pod.node.capacity if pod.node else ""
        pod.running.append(Sequence(idx, r.output_tokens - 1, need))
        pod.kv_used += need
        if pod.cache is not None:
            pod.cache.insert(r.hash_ids)  # prefilled: its blocks are the most recently used
    return budget


def prefix_hit(setup: ReplaySetup, pod: Pod, r: Request) -> int:
    """The prompt tokens the replica's prefix cache saves ``r`` (none without block hashes)."""
    if not r.hash_ids:
        return 0
    if pod.cache is None:
        pod.cache = replica_cache(setup.perf.kv_tokens)
    return cached_tokens(pod.cache.leading(r.hash_ids), r.prompt_tokens)


def decode(setup: ReplaySetup, state: ReplayState, pod: Pod, t0: float, budget: float) -> None:
    """Decode steps for the rest of the tick at the batch's step time; sequences that finish
    free their KV cache, the others grow theirs by one token per step."""
    step = setup.perf.step_seconds(len(pod.running), pod.kv_used)
    tokens = budget / step
    keep: list[Sequence] = []
    for seq in pod.running:
        if seq.tokens_left <= tokens:
            end = t0 + (DT - budget) + seq.tokens_left * step
            state.outcomes.end[seq.request] = end
            heapq.heappush(state.ends_pending, end)
            pod.kv_used -= seq.kv_tokens + seq.tokens_left
        else:
            seq.tokens_left = seq.tokens_left - tokens
            seq.kv_tokens = seq.kv_tokens + tokens
            keep.append(seq)
    pod.kv_used += tokens * len(keep)
    pod.running = keep


def preempt_on_overflow(setup: ReplaySetup, state: ReplayState, pod: Pod) -> None:
    """While the KV cache is over budget, the newest sequence gives its blocks back and its
    request goes to the front of the queue (output restarts); the oldest always stays."""
    while pod.kv_used > setup.perf.kv_tokens and len(pod.running) > 1:
        seq = pod.running.pop()
        pod.kv_used -= seq.kv_tokens
        pod.queue.appendleft(seq.request)
        state.preemptions += 1
