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

# Bucket names that only examples use: the AWS documentation's placeholders
# (``amzn-s3-demo-bucket`` since 2024, ``DOC-EXAMPLE-BUCKET`` and ``awsexamplebucket1``
# before it) and the names tutorials and templates reach for. A real deploy that reads
# models from, or grants access to, such a bucket was copied from an example and never
# edited (the bucket is someone else's, or nobody's). Compared lower-cased.
EXAMPLE_BUCKET_NAMES = ("amzn-s3-demo-bucket", "doc-example-bucket", "awsexamplebucket", "awsexamplebucket1",
                        "my-bucket", "mybucket", "my-s3-bucket", "your-bucket", "your-bucket-name", "bucket-name",
                        "example", "example-bucket", "examplebucket", "test-bucket", "changeme")
# A bucket is an example too when one of its dash- or dot-separated words is one of these
# ("example-models", "models-example", "acme.example.weights").
EXAMPLE_BUCKET_WORDS = ("example", "examples", "placeholder", "changeme")
