"""Request traces: the Azure LLM inference CSV format, a simple generic one, and Mooncake's JSONL.

- Azure (``AzureLLMInferenceTrace_*.csv``): ``TIMESTAMP,ContextTokens,GeneratedTokens`` with
  timestamps like ``2023-11-16 18:17:03.9800000`` (UTC).
- Generic: ``arrival_seconds,prompt_tokens,output_tokens``, arrivals in seconds from the start.
- Mooncake (FAST'25 release, ``*.jsonl``): one JSON object a line with ``timestamp`` (ms from the
  start), ``input_length``, ``output_length`` and ``hash_ids`` (the prompt's 512-token block
  hashes, kept on the request for a prefix-cache model).

The format is told by the extension (``.jsonl``) or, failing that, by the first character
(``{``: JSON lines; anything else: a CSV header).

``speedup`` compresses time (arrivals / speedup); ``rate_multiplier`` replays each request
``m`` times on average (fractional parts drawn with the seed), copies jittered within 1 s.
"""

from __future__ import annotations

import csv
import json
import math
import random
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

AZURE = ("TIMESTAMP", "ContextTokens", "GeneratedTokens")
GENERIC = ("arrival_seconds", "prompt_tokens", "output_tokens")
MOONCAKE = ("timestamp", "input_length", "output_length", "hash_ids")
# Traces without wall-clock times start here (for cron-like schedules): a Monday morning.
UNDATED_START = datetime(2024, 1, 1, 9, 0, tzinfo=timezone.utc)
Raw = tuple[float, int, int, tuple[int, ...]]  # arrival seconds, prompt, output, block hashes


@dataclass(frozen=True)
class Request:
    id: int
    arrival: float
    prompt_tokens: int
    output_tokens: int
    hash_ids: tuple[int, ...] = ()  # Mooncake: the prompt's 512-token block hashes (shared prefixes)


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


def _is_jsonl(path: Path) -> bool:
    if path.suffix == ".jsonl":
        return True
    with path.open() as f:
        head = f.read(4096).lstrip()
    return head.startswith("{")


def _mooncake_row(path: Path, line: int, text: str) -> Raw:
    """One Mooncake JSON line: a ValueError names the file, line and field."""
    try:
        row = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}:{line}: not a JSON object ({exc.msg})") from None
    if not isinstance(row, dict):
        raise ValueError(f"{path}:{line}: expected a JSON object with {', '.join(MOONCAKE)}")
    missing = [k for k in MOONCAKE[:3] if k not in row]
    if missing:
        raise ValueError(f"{path}:{line}: missing {', '.join(missing)} (Mooncake lines have {', '.join(MOONCAKE)})")
    numbers = []
    for key in MOONCAKE[:3]:
        value = row[key]
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"{path}:{line}: {key} {value!r} must be an integer >= 0")
        numbers.append(value)
    hashes = row.get("hash_ids", [])
    if not isinstance(hashes, list) or not all(isinstance(h, int) and not isinstance(h, bool) for h in hashes):
        raise ValueError(f"{path}:{line}: hash_ids must be a list of integers")
    return numbers[0] / 1000, numbers[1], numbers[2], tuple(hashes)


def _read_mooncake(path: Path) -> tuple[datetime, list[Raw]]:
    with path.open() as f:
        raw = [_mooncake_row(path, n, text) for n, text in enumerate(f, start=1) if text.strip()]
    if not raw:
        raise ValueError(f"{path}: empty trace file; expected JSON lines with {', '.join(MOONCAKE)}")
    return UNDATED_START, raw


def _read_csv(path: Path) -> tuple[datetime, list[Raw]]:
    with path.open(newline="") as f:
        reader = csv.reader(f)
        header = [h.strip() for h in next(reader, [])]
        # Line numbers as an editor shows them (the header is line 1); blank lines are skipped.
        rows = [(reader.line_num, r) for r in reader if any(c.strip() for c in r)]
    if not header:
        raise ValueError(f"{path}: empty trace file; expected a header and at least one request")
    if header[:3] not in (list(AZURE), list(GENERIC)):
        raise ValueError(f"{path}: unknown trace header {header[:3]}; expected Azure "
                         "(TIMESTAMP,ContextTokens,GeneratedTokens), generic (arrival_seconds,prompt_tokens,output_tokens) "
                         "or Mooncake JSON lines (.jsonl)")
    if not rows:
        raise ValueError(f"{path}: no requests after the header")
    if header[:3] == list(AZURE):
        stamped = [(_azure_time(path, n, r[0]), _tokens(path, n, AZURE, r)) for n, r in rows]
        start = min(stamp for stamp, _ in stamped)
        return start, [((stamp - start).total_seconds(), *tokens, ()) for stamp, tokens in stamped]
    return UNDATED_START, [(_number(path, n, GENERIC[0], r[0], float), *_tokens(path, n, GENERIC, r), ()) for n, r in rows]


def load(path: Path, *, speedup: float = 1.0, rate_multiplier: float = 1.0, seed: int = 0) -> Trace:
    """Read a trace; a ValueError names the file, line and field of the first bad value."""
    if not (speedup > 0 and math.isfinite(speedup)):
        raise ValueError(f"speedup must be a positive number, got {speedup}")
    if not (rate_multiplier > 0 and math.isfinite(rate_multiplier)):
        raise ValueError(f"rate multiplier must be a positive number, got {rate_multiplier}")
    start, raw = _read_mooncake(path) if _is_jsonl(path) else _read_csv(path)
    rng = random.Random(seed)
    out: list[Raw] = []
    for arrival, prompt, output, hashes in sorted(raw, key=lambda r: r[:3]):
        copies = int(rate_multiplier) + (1 if rng.random() < rate_multiplier % 1 else 0)
        for c in range(copies):
            jitter = rng.random() if c else 0.0
            out.append((arrival / speedup + jitter, max(prompt, 1), max(output, 1), hashes))
    out.sort(key=lambda r: r[:3])  # as before hash_ids: ties by tokens
    return Trace(tuple(Request(i, a, p, o, h) for i, (a, p, o, h) in enumerate(out)), start, str(path))
