"""Name builders: properties of k8s_name (hypothesis) and literal expectations of the helpers."""

from __future__ import annotations

import re

import pytest
from hypothesis import assume, example, given
from hypothesis import strategies as st

from components.naming import SCALED_OBJECT_MAX, child, k8s_name

# RFC 1123 label as Kubernetes checks it (IsDNS1123Label): the pattern and at most 63 characters.
LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
HASH_SUFFIX = re.compile(r"-[0-9a-f]{6}")

# A valid part: a DNS-1123 label of 1..40 characters (what our config allows for names).
parts_st = st.from_regex(r"\A[a-z0-9]([-a-z0-9]{0,38}[a-z0-9])?\Z")
part_lists = st.lists(parts_st, min_size=1, max_size=4)
# Empty parts are skipped, so they may appear anywhere.
parts_with_gaps = st.lists(st.one_of(parts_st, st.just("")), min_size=1, max_size=5).filter(any)
limits = st.integers(min_value=8, max_value=63)


def _is_label(s: str) -> bool:
    return bool(LABEL.fullmatch(s)) and len(s) <= 63


@given(parts_with_gaps, limits)
@example(["x" * 64], 63)
@example(["a" * 30, "burst"], SCALED_OBJECT_MAX)
@example(["chat", "burst"], 8)
def test_result_is_a_dns1123_label_within_the_limit(parts, max_length):
    name = k8s_name(*parts, max_length=max_length)
    assert _is_label(name), name
    assert len(name) <= max_length


@given(parts_with_gaps, limits)
def test_short_names_are_the_parts_joined_unchanged(parts, max_length):
    joined = "-".join(p for p in parts if p)
    assume(len(joined) <= max_length)
    assert k8s_name(*parts, max_length=max_length) == joined


long_parts = st.lists(st.from_regex(r"\A[a-z0-9][-a-z0-9]{18,38}[a-z0-9]\Z"), min_size=4, max_size=6)


@given(long_parts, limits)
def test_long_names_keep_a_readable_prefix_and_a_hash(parts, max_length):
    joined = "-".join(parts)
    assert len(joined) > max_length
    name = k8s_name(*parts, max_length=max_length)
    head, suffix = name[:-7], name[-7:]
    assert HASH_SUFFIX.fullmatch(suffix), name
    assert head and joined.startswith(head)


@given(part_lists, limits)
def test_deterministic(parts, max_length):
    # Within a process; across processes and hash seeds, test_golden_names pins the hash.
    assert k8s_name(*parts, max_length=max_length) == k8s_name(*list(parts), max_length=max_length)


@given(st.lists(parts_st, min_size=2, max_size=2, unique=True).map(tuple), st.text("abc", min_size=60, max_size=60), limits)
def test_distinct_names_stay_distinct_after_truncation(tails, prefix, max_length):
    # Two names that share a long prefix (so their truncated heads are equal) still differ.
    a, b = (k8s_name("p" + prefix.replace("c", "-c"), t, max_length=max_length) for t in tails)
    assert a != b


@given(st.sets(st.tuples(parts_st, parts_st), min_size=2, max_size=30), limits)
def test_no_collisions_among_many_names(pairs, max_length):
    joined = {"-".join(p) for p in pairs}
    names = {k8s_name(*p, max_length=max_length) for p in pairs}
    assert len(names) == len(joined)


@given(st.text(min_size=1, max_size=20).filter(lambda s: not LABEL.fullmatch(s)))
@example("chat\n")
@example("Chat")
@example("chat-")
def test_an_invalid_name_is_refused(bad):
    with pytest.raises(ValueError, match="is not a DNS-1123 label"):
        k8s_name(bad)


@pytest.mark.parametrize("max_length", [0, 7, 64, 253])
def test_a_limit_outside_what_a_label_and_hash_can_fit_is_refused(max_length):
    with pytest.raises(ValueError, match="max_length"):
        k8s_name("chat", "burst", max_length=max_length)


def test_golden_names():
    # Reviewed literals: a change here renames (and so replaces) live objects.
    assert k8s_name("chat-8b", "burst") == "chat-8b-burst"
    assert k8s_name("x" * 64) == "x" * 56 + "-7ce100"
    assert k8s_name("chat", "burst", max_length=8) == "c-1663fe"
    assert k8s_name("llm", "", "cache") == "llm-cache"


def test_scaled_object_limit_leaves_room_for_kedas_hpa_prefix():
    assert SCALED_OBJECT_MAX == 54 and len("keda-hpa-") + SCALED_OBJECT_MAX == 63


def test_child_names():
    assert child("llm-dev", "vpc") == "llm-dev-vpc"
    assert child("karpenter", "node-AmazonEKSWorkerNodePolicy") == "karpenter-node-AmazonEKSWorkerNodePolicy"
