"""Request traces: the Azure LLM inference CSV format and a simple generic one.

- Azure (``AzureLLMInferenceTrace_*.csv``): ``TIMESTAMP,ContextTokens,GeneratedTokens`` with
  timestamps like ``2023-11-16 18:17:03.9800000`` (UTC).
- Generic: ``arrival_seconds,prompt_tokens,output_tokens``, arrivals in seconds from the start.

``speedup`` compresses time (arrivals / speedup); ``rate_multiplier`` replays each request
``m`` times on average (fractional parts drawn with the seed), copies jittered within 1 s.
"""

from __future__ import annotations

import csv
import math
import random
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

AZURE = ("TIMESTAMP", "ContextTokens", "GeneratedTokens")
GENERIC = ("arrival_seconds", "prompt_tokens", "output_tokens")


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


def _number(path: Path, line: int, field: str, value: str, kind: type) -> float:
    """One numeric field, non-negative, or a ValueError naming the file, line and field."""
    try:
        number = kind(value.strip())
    except ValueError:
        what = "an integer" if kind is int else "a number"
        raise ValueError(f"{path}:{line}: {field} {value.strip()!r} is not {what}") from None
    if not math.isfinite(number) or number < 0:
        raise ValueError(f"{path}:{line}: {field} {value.strip()!r} must be a finite number >= 0")
    return number


def _tokens(path: Path, line: int, fields: tuple[str, str, str], row: list[str]) -> tuple[int, int]:
    """The prompt and output token counts of one row."""
    if len(row) < 3:
        raise ValueError(f"{path}:{line}: expected 3 fields ({','.join(fields)}), got {len(row)}")
    return int(_number(path, line, fields[1], row[1], int)), int(_number(path, line, fields[2], row[2], int))


def _azure_time(path: Path, line: int, value: str) -> datetime:
    try:
        return _parse_azure_time(value)
    except ValueError:
        raise ValueError(f"{path}:{line}: TIMESTAMP {value.strip()!r} is not a time like "
                         "2023-11-16 18:17:03.9800000") from None


def load(path: Path, *, speedup: float = 1.0, rate_multiplier: float = 1.0, seed: int = 0) -> Trace:
    """Read a trace; a ValueError names the file, line and field of the first bad value."""
    if not (speedup > 0 and math.isfinite(speedup)):
        raise ValueError(f"speedup must be a positive number, got {speedup}")
    if not (rate_multiplier > 0 and math.isfinite(rate_multiplier)):
        raise ValueError(f"rate multiplier must be a positive number, got {rate_multiplier}")
    with path.open(newline="") as f:
        reader = csv.reader(f)
        header = [h.strip() for h in next(reader, [])]
        # Line numbers as an editor shows them (the header is line 1); blank lines are skipped.
        rows = [(reader.line_num, r) for r in reader if any(c.strip() for c in r)]
    if not header:
        raise ValueError(f"{path}: empty trace file; expected a header and at least one request")
    if header[:3] not in (list(AZURE), list(GENERIC)):
        raise ValueError(f"{path}: unknown trace header {header[:3]}; expected Azure "
                         "(TIMESTAMP,ContextTokens,GeneratedTokens) or generic (arrival_seconds,prompt_tokens,output_tokens)")
    if not rows:
        raise ValueError(f"{path}: no requests after the header")
    if header[:3] == list(AZURE):
        stamped = [(_azure_time(path, n, r[0]), _tokens(path, n, AZURE, r)) for n, r in rows]
        start = min(stamp for stamp, _ in stamped)
        raw = [((stamp - start).total_seconds(), *tokens) for stamp, tokens in stamped]
    else:
        start = datetime(2024, 1, 1, 9, 0, tzinfo=timezone.utc)  # a Monday morning
        raw = [(_number(path, n, GENERIC[0], r[0], float), *_tokens(path, n, GENERIC, r)) for n, r in rows]
    rng = random.Random(seed)
    out: list[tuple[float, int, int]] = []
    for arrival, prompt, output in sorted(raw):
        copies = int(rate_multiplier) + (1 if rng.random() < rate_multiplier % 1 else 0)
        for c in range(copies):
            jitter = rng.random() if c else 0.0
            out.append((arrival / speedup + jitter, max(prompt, 1), max(output, 1)))
    out.sort()
    return Trace(tuple(Request(i, a, p, o) for i, (a, p, o) in enumerate(out)), start, str(path))
