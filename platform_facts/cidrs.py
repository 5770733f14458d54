"""What an allow-list of CIDRs admits, reasoned about as address ranges, not as strings.

A string comparison with "0.0.0.0/0" misses every other way of writing the internet:
"0.0.0.0/00", the two halves "0.0.0.0/1" + "128.0.0.0/1", "::/0", or "0.0.0.0/4" and its
friends. Here the list is parsed with ``ipaddress`` (host bits allowed, as AWS accepts
"10.0.0.1/8"), merged per IP version, and measured.

"The internet" is a threshold, not only the whole space: by default an allow-list whose IPv4
ranges together cover more addresses than one /8 (2**24), or whose IPv6 ranges cover more
than one /16, is treated as open. A /8 is the largest block ever allocated to a single
organisation in IPv4; a /16 of IPv6 is 65,536 ISP-sized /32 allocations. Nobody's "own
networks" are wider.

Pure and stdlib-only: the stack config (the prod endpoint rule) and the policy pack (which
judges the EKS cluster resource) read allow-lists the same way.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

from platform_facts.aws import DOCUMENTATION_CIDRS

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

DOCUMENTATION = tuple(ipaddress.ip_network(c) for c in DOCUMENTATION_CIDRS)
# The widest prefix that still names someone's own networks, per IP version.
WIDEST_PREFIX = {4: 8, 6: 16}


@dataclass(frozen=True)
class AllowList:
    """An allow-list parsed: (entry as written, network) pairs, and the entries that are not CIDRs."""

    entries: tuple[tuple[str, Network], ...]
    malformed: tuple[str, ...]

    @property
    def networks(self) -> list[Network]:
        return [n for _, n in self.entries]

    def merged(self, version: int) -> list[Network]:
        # collapse_addresses wants one address family; the filter gives it one (mypy cannot see it).
        return list(ipaddress.collapse_addresses(n for n in self.networks if n.version == version))  # type: ignore[type-var]

    def addresses(self, version: int) -> int:
        return sum(n.num_addresses for n in self.merged(version))


def parse(cidrs: Iterable[object]) -> AllowList:
    entries: list[tuple[str, Network]] = []
    malformed: list[str] = []
    for raw in cidrs:
        text = str(raw).strip()
        if "/" not in text:  # a bare address is a /32 or /128 to ipaddress; AWS wants a CIDR
            malformed.append(str(raw))
            continue
        try:
            entries.append((str(raw), ipaddress.ip_network(text, strict=False)))
        except ValueError:
            malformed.append(str(raw))
    return AllowList(tuple(entries), tuple(malformed))


def too_wide(allow: AllowList, widest_prefix: dict[int, int] = WIDEST_PREFIX) -> list[str]:
    """One finding per IP version whose ranges cover all of it, or more than one /widest_prefix."""
    found = []
    for version, bits in ((4, 32), (6, 128)):
        written = [raw for raw, n in allow.entries if n.version == version]
        if not written:
            continue
        total = allow.addresses(version)
        listed = ", ".join(written)
        if total == 2**bits:
            verb = "covers" if len(written) == 1 else "together cover"
            found.append(f"all of IPv{version} ({listed} {verb} {'0.0.0.0/0' if version == 4 else '::/0'})")
        elif total > 2 ** (bits - widest_prefix[version]):
            size = f"{total:,}" if version == 4 else f"2^{total.bit_length() - 1}" + ("" if total & (total - 1) == 0 else "+")
            found.append(f"{size} IPv{version} addresses ({listed}), more than one /{widest_prefix[version]}")
    return found


def documentation_only(allow: AllowList) -> bool:
    """Every entry lies inside a documentation-only range (RFC 5737, RFC 3849)."""
    return bool(allow.entries) and not allow.malformed and all(
        any(n.version == d.version and n.subnet_of(d) for d in DOCUMENTATION)  # type: ignore[arg-type]
        for n in allow.networks)
