"""The simulator's trace formats, warm-up and steady state, rejections, oracles and the tuner (issue 17)."""

from __future__ import annotations

import pytest

from simulator.trace import load as load_trace
from tests.conftest import REPO

MOONCAKE = REPO / "tests" / "upstream" / "traces" / "mooncake_conversation_trace.jsonl"


def test_mooncake_trace_keeps_times_tokens_and_block_hashes():
    trace = load_trace(MOONCAKE)
    assert len(trace.requests) == 12031
    # The file's first line; requests at the same time are ordered by their token counts.
    first = next(r for r in trace.requests if r.prompt_tokens == 6758 and r.output_tokens == 500)
    assert first.arrival == 0.0 and first.hash_ids == tuple(range(14))  # 6758 tokens: 14 blocks of 512
    assert trace.duration == pytest.approx(3536.999)  # the last timestamp, 3,536,999 ms


def test_mooncake_is_told_by_content_and_copies_keep_their_hashes(tmp_path):
    path = tmp_path / "conversation.txt"  # no .jsonl extension: the first character decides
    path.write_text('{"timestamp": 1500, "input_length": 700, "output_length": 3, "hash_ids": [0, 1]}\n\n'
                    '{"timestamp": 0, "input_length": 10, "output_length": 0, "hash_ids": []}\n')
    trace = load_trace(path, rate_multiplier=2)
    assert [(r.arrival, r.prompt_tokens, r.output_tokens) for r in trace.requests][::2] == [(0.0, 10, 1), (1.5, 700, 3)]
    assert [r.hash_ids for r in trace.requests] == [(), (), (0, 1), (0, 1)]


@pytest.mark.parametrize(("text", "fragment"), [
    ("", "empty trace file; expected JSON lines with timestamp, input_length, output_length, hash_ids"),
    ('{"timestamp": 0, "input_length": 1, "output_length": 1}\n{"timestamp": 5,\n', ":2: not a JSON object"),
    ('{"timestamp": 0, "output_length": 1}\n', ":1: missing input_length"),
    ('\n{"timestamp": -1, "input_length": 1, "output_length": 1}\n', ":2: timestamp -1 must be an integer >= 0"),
    ('{"timestamp": 0, "input_length": "9", "output_length": 1}\n', ":1: input_length '9' must be an integer >= 0"),
    ('{"timestamp": 0, "input_length": 9, "output_length": 1.5}\n', ":1: output_length 1.5 must be an integer >= 0"),
    ('{"timestamp": 0, "input_length": 9, "output_length": 1, "hash_ids": [1, "a"]}\n', ":1: hash_ids must be a list of integers"),
    ('[1, 2]\n', ":1: expected a JSON object"),
])
def test_bad_mooncake_lines_name_the_file_line_and_field(tmp_path, text, fragment):
    path = tmp_path / "t.jsonl"
    path.write_text(text)
    with pytest.raises(ValueError) as err:
        load_trace(path)
    assert str(err.value).startswith(str(path)) and fragment in str(err.value)
