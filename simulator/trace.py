"""Request traces: the Azure LLM inference CSV format and a simple generic one.

- Azure (``AzureLLMInferenceTrace_*.csv``): ``TIMESTAMP,ContextTokens,GeneratedTokens`` with
  timestamps like ``2023-11-16 18:17:03.9800000`` (UTC).
- Generic: ``arrival_seconds,prompt_tokens,output_tokens``, arrivals in seconds from the start.

``speedup`` compresses time (arrivals / speedup); ``rate_multiplier`` replays each request
``m`` times on average (fractional parts drawn with the seed), copies jittered within 1 s.
"""

from __future__ import annotations

import csv
import random
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path


@dataclass(frozen=True)
class Request:
    id: int
    arrival: float
    prompt_tokens: int
    output_tokens: int


@dataclass(frozen=True)
class Trace:
    requests: tuple[Request, ...]
    start: datetime  # wall-clock time of arrival 0 (for cron-like schedules)
    source: str

    @property
    def duration(self) -> float:
        return self.requests[-1].arrival if self.requests else 0.0


def _parse_azure_time(value: str) -> datetime:
    date, _, frac = value.strip().partition(".")
    stamp = datetime.strptime(date, "%Y-%m-%d %H:%M:%S").replace(tzinfo=timezone.utc)
    return stamp.replace(microsecond=int((frac + "000000")[:6])) if frac else stamp


def load(path: Path, *, speedup: float = 1.0, rate_multiplier: float = 1.0, seed: int = 0) -> Trace:
    if speedup <= 0 or rate_multiplier <= 0:
        raise ValueError("speedup and rate multiplier must be positive")
    with path.open(newline="") as f:
        reader = csv.reader(f)
        header = [h.strip() for h in next(reader)]
        rows = [r for r in reader if r]
    raw: list[tuple[float, int, int]] = []
    if header[:3] == ["TIMESTAMP", "ContextTokens", "GeneratedTokens"]:
        stamps = [_parse_azure_time(r[0]) for r in rows]
        start = min(stamps)
        raw = [((s - start).total_seconds(), int(r[1]), int(r[2])) for s, r in zip(stamps, rows, strict=True)]
    elif header[:3] == ["arrival_seconds", "prompt_tokens", "output_tokens"]:
        start = datetime(2024, 1, 1, 9, 0, tzinfo=timezone.utc)  # a Monday morning
        raw = [(float(r[0]), int(r[1]), int(r[2])) for r in rows]
    else:
        raise ValueError(f"{path}: unknown trace header {header[:3]}; expected Azure "
                         "(TIMESTAMP,ContextTokens,GeneratedTokens) or generic (arrival_seconds,prompt_tokens,output_tokens)")
    rng = random.Random(seed)
    out: list[tuple[float, int, int]] = []
    for arrival, prompt, output in sorted(raw):
        copies = int(rate_multiplier) + (1 if rng.random() < rate_multiplier % 1 else 0)
        for c in range(copies):
            jitter = rng.random() if c else 0.0
            out.append((arrival / speedup + jitter, max(prompt, 1), max(output, 1)))
    out.sort()
    return Trace(tuple(Request(i, a, p, o) for i, (a, p, o) in enumerate(out)), start, str(path))
