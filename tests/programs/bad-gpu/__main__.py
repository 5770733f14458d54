"""A raw Deployment, written without our components, that breaks the pack's GPU rules:
a :latest image; GPU requests (1) != limits (2); no CPU or memory request; no GPU
toleration; no startup, readiness or preStop; the default 30 s grace and 25 % maxUnavailable;
and no ServiceMonitor. tests/test_synth.py expects exactly these violations."""

import pulumi
import pulumi_kubernetes as k8s

replicas = pulumi.Config().require_int("replicas")
provider = k8s.Provider("cluster", kubeconfig="{}")
k8s.apps.v1.Deployment(
    "llm",
    metadata={"name": "llm", "namespace": "default"},
    spec={
        "replicas": replicas,
        "selector": {"matchLabels": {"app": "llm"}},
        "template": {
            "metadata": {"labels": {"app": "llm"}},
            "spec": {
                "containers": [{
                    "name": "vllm",
                    "image": "vllm/vllm-openai:latest",
                    "resources": {"requests": {"nvidia.com/gpu": "1"}, "limits": {"nvidia.com/gpu": "2"}},
                }],
            },
        },
    },
    opts=pulumi.ResourceOptions(provider=provider),
)
