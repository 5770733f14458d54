"""Allow-lists as address ranges (policies/cidrs.py): parsing, merging, widths, placeholders."""

from __future__ import annotations

import pytest

from platform_facts.cidrs import documentation_only, parse, too_wide

WIDEST = {4: 8, 6: 16}


def test_parse_keeps_what_was_written_and_sets_aside_what_is_not_a_cidr():
    allow = parse([" 10.0.0.1/8", "0.0.0.0/00", "1.2.3.4", "01.2.3.0/24", "0.0.0.0/33", "::/0"])
    assert [(raw, str(n)) for raw, n in allow.entries] == [(" 10.0.0.1/8", "10.0.0.0/8"), ("0.0.0.0/00", "0.0.0.0/0"),
                                                           ("::/0", "::/0")]
    assert allow.malformed == ("1.2.3.4", "01.2.3.0/24", "0.0.0.0/33")


@pytest.mark.parametrize("cidrs,expected", [
    (["0.0.0.0/1", "128.0.0.0/1"], ["all of IPv4 (0.0.0.0/1, 128.0.0.0/1 together cover 0.0.0.0/0)"]),
    (["0.0.0.0/2", "64.0.0.0/2", "128.0.0.0/2", "192.0.0.0/2"], ["all of IPv4 (0.0.0.0/2, 64.0.0.0/2, 128.0.0.0/2, "
                                                                  "192.0.0.0/2 together cover 0.0.0.0/0)"]),
    (["::/1", "8000::/1", "203.0.113.0/24"], ["all of IPv6 (::/1, 8000::/1 together cover ::/0)"]),
    (["10.0.0.0/8"], []),
    (["10.0.0.0/8", "10.0.0.0/9"], []),  # overlaps count once
    (["10.0.0.0/8", "12.0.0.0/24"], ["16,777,472 IPv4 addresses (10.0.0.0/8, 12.0.0.0/24), more than one /8"]),
    (["2600::/16"], []),
    (["2600::/15"], ["2^113 IPv6 addresses (2600::/15), more than one /16"]),
    (["2600::/16", "2a00::/32"], ["2^112+ IPv6 addresses (2600::/16, 2a00::/32), more than one /16"]),
])
def test_too_wide(cidrs, expected):
    assert too_wide(parse(cidrs), WIDEST) == expected


def test_the_threshold_is_configurable():
    assert too_wide(parse(["10.0.0.0/12"]), {4: 16, 6: 16}) == ["1,048,576 IPv4 addresses (10.0.0.0/12), more than one /16"]


@pytest.mark.parametrize("cidrs,expected", [
    (["192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24", "2001:db8::/32"], True),
    (["198.51.100.64/26"], True),
    (["198.51.100.0/23"], False),  # wider than the documentation range
    (["198.51.100.0/24", "52.94.0.0/22"], False),
    (["198.51.100.0/24", "not-a-cidr"], False),  # the malformed entry is reported by the other rule
    ([], False),
])
def test_documentation_only(cidrs, expected):
    assert documentation_only(parse(cidrs)) is expected
