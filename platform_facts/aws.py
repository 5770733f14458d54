"""Platform facts of AWS and EKS."""

from __future__ import annotations

# EC2 warns two minutes before it reclaims a spot instance (EC2 user guide, "Spot Instance
# interruption notices").
SPOT_NOTICE_SECONDS = 120

# Supported control-plane versions: EKS standard support and Karpenter 1.14 (1.26-1.36).
KUBERNETES_VERSIONS = ("1.33", "1.34", "1.35", "1.36")

# Address ranges reserved for documentation (RFC 5737 for IPv4, RFC 3849 for IPv6): an
# allow-list made of them admits nobody in a real deploy.
DOCUMENTATION_CIDRS = ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24", "2001:db8::/32")
