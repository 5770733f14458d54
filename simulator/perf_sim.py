"""A closed-loop benchmark of one replica, step by step, on the step model of ``simulator.perf``.

``concurrency`` clients each keep one request in flight and send the next when it finishes,
``requests`` in all (``requests == concurrency`` is one batch). The engine behaves as vLLM V1's
scheduler does: running sequences decode first (one token each), then prompts are prefilled in
chunks within ``max_num_batched_tokens``; a request is admitted while ``max_num_seqs`` and the KV
cache allow, else it queues (as vLLM does: ``num_requests_waiting``); when the KV cache
overflows, the newest sequence is preempted and recomputed later.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from simulator.perf import ReplicaPerf


@dataclass
class _Seq:
    sent: float
    prefill_left: int
    out_left: int
    context: int = 0
    first_token: float | None = None


@dataclass
class Outcome:
    ttft: list[float] = field(default_factory=list)
    tpot: list[float] = field(default_factory=list)
    e2e: list[float] = field(default_factory=list)
    makespan: float = 0.0
    output_tokens: int = 0
    max_running: int = 0
    queued: int = 0  # requests that waited for a slot or KV room
    preemptions: int = 0


def _mean(xs: list[float]) -> float:
    return sum(xs) / len(xs) if xs else 0.0


def _admit(perf: ReplicaPerf, waiting: deque[_Seq], running: list[_Seq], out: Outcome) -> None:
    kv = sum(s.context + s.prefill_left for s in running)
    while waiting and len(running) < perf.max_num_seqs:
        nxt = waiting[0]
        if running and kv + nxt.prefill_left + 1 > perf.kv_tokens:
            break
        running.append(waiting.popleft())
        kv += nxt.prefill_left
    out.queued = max(out.queued, len(waiting))


def _step(perf: ReplicaPerf, running: list[_Seq]) -> tuple[list[_Seq], list[tuple[_Seq, int]], float]:
    """Who decodes, which prompts get how many tokens, and how long the step takes."""
    decoding = [s for s in running if s.prefill_left == 0]
    budget = perf.max_num_batched_tokens - len(decoding)
    chunks: list[tuple[_Seq, int]] = []
    for s in running:
        if s.prefill_left and budget > 0:
            take = min(s.prefill_left, budget)
            chunks.append((s, take))
            budget -= take
    context = sum(s.context for s in running)
    seconds = perf.step_seconds(len(decoding), context, sum(n for _, n in chunks))
    return decoding, chunks, seconds


def _finish(s: _Seq, t: float, out: Outcome, output_tokens: int) -> None:
    first = s.first_token if s.first_token is not None else t
    out.ttft.append(first - s.sent)
    out.e2e.append(t - s.sent)
    if output_tokens > 1:
        out.tpot.append((t - first) / (output_tokens - 1))
    out.output_tokens += output_tokens


def closed_loop(perf: ReplicaPerf, concurrency: int, requests: int, input_tokens: int, output_tokens: int) -> Outcome:
    """Run the benchmark; every request has ``input_tokens`` in and ``output_tokens`` out."""
    out = Outcome()
    waiting: deque[_Seq] = deque(_Seq(0.0, input_tokens, output_tokens) for _ in range(min(concurrency, requests)))
    sent, t = len(waiting), 0.0
    running: list[_Seq] = []
    while waiting or running:
        _admit(perf, waiting, running, out)
        out.max_running = max(out.max_running, len(running))
        decoding, chunks, seconds = _step(perf, running)
        t += seconds
        done: list[_Seq] = []
        for s in decoding:
            s.out_left -= 1
            s.context += 1
        for s, n in chunks:
            s.prefill_left -= n
            s.context += n
            if s.prefill_left == 0 and s.first_token is None:  # the step that ends a prompt samples a token
                s.first_token = t
                s.out_left -= 1
        done = [s for s in running if s.prefill_left == 0 and s.out_left <= 0]
        for s in done:
            running.remove(s)
            _finish(s, t, out, output_tokens)
            if sent < requests:
                waiting.append(_Seq(t, input_tokens, output_tokens))
                sent += 1
        _preempt(perf, running, waiting, out)
    out.makespan = t
    return out


def _preempt(perf: ReplicaPerf, running: list[_Seq], waiting: deque[_Seq], out: Outcome) -> None:
    """vLLM's RECOMPUTE preemption: the newest sequence frees its blocks and is prefilled again."""
    while len(running) > 1 and sum(s.context + s.prefill_left for s in running) > perf.kv_tokens:
        s = running.pop()
        s.prefill_left, s.context = s.context + s.prefill_left, 0
        waiting.appendleft(s)
        out.preemptions += 1


def summary(out: Outcome, requests: int, kv_tokens: int) -> dict[str, float | int]:
    """The ``perf`` command's JSON fields (means over the requests; rates over the whole run)."""
    return {
        "ttft_s": round(_mean(out.ttft), 6),
        "tpot_s": round(_mean(out.tpot), 6),
        "e2e_latency_s": round(_mean(out.e2e), 6),
        "output_tokens_per_s": round(out.output_tokens / out.makespan, 3) if out.makespan else 0.0,
        "requests_per_s": round(requests / out.makespan, 4) if out.makespan else 0.0,
        "kv_cache_tokens": kv_tokens,
    }
