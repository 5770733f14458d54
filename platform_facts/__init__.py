"""Facts that the components, the policy pack and the simulator all need, kept once.

The rule: this package is a leaf of pure data (and the one-line arithmetic that reads it).
It imports nothing of ours and nothing outside the standard library, so the policy pack,
which judges resources whoever made them and must load on its own, can depend on it
without pulling in the components.

- ``catalog``: GPU and EC2 instance facts (GPU memory and bandwidth per instance type), model weight sizes.
- ``models``: model architectures (layers, KV heads, head dim, parameters) from their config.json.
- ``aws``: platform facts of AWS and EKS (spot notice, supported Kubernetes versions,
  documentation-only CIDRs).
- ``vllm``, ``dcgm``: metric names of vLLM (current and removed) and of the DCGM exporter.
- ``coldstart``: the phases of a replica's cold start.
- ``registries``: the upstream registries ECR pull-through cache mirrors, and which registry
  an image reference names.
- ``cidrs``: what an allow-list of CIDRs admits, as address ranges.
- ``kubernetes``: namespaces no workload of ours may use.
"""
