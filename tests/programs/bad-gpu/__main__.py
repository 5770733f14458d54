"""A raw Deployment that breaks GPU rules: :latest image, GPU requests != limits,
no GPU toleration, no preStop hook."""

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
