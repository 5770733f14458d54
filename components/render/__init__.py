"""Pure functions: config in, plain dicts out (Kubernetes objects, Helm values, IAM documents)."""
