"""Raw pulumi_aws / pulumi_eks / pulumi_kubernetes resources that make the deploy mistakes the
pack's cross-object rules catch; tests/test_deploy_rules.py expects each of them to fire:

- storage-class-provisioned: a PVC on "gp3", a class nobody creates, and no EBS CSI add-on;
- await-timeout-covers-rollout: 3 GPU replicas with a 600 s startup budget, maxSurge 1, and
  the default 10 min timeouts;
- capacity-on-demand-headroom: an on-demand pool limited to exactly the baseline's GPUs;
- pod-identity-before-pods: a Pod Identity association the Deployment does not depend on;
- gpu-pod-schedulable: a pod that asks for the h100 tier when only l40s pools exist;
- scaling-value-trigger-own-pods: a Value trigger on pod=~"svc-.*" scaling only svc-burst;
- system-nodes-fit: 4 CPU pinned to two m7i.large system nodes (3 CPU allocatable);
- s3-no-example-buckets: weights from s3://my-bucket.
"""

import json

import pulumi
import pulumi_aws as aws
import pulumi_eks as eks
import pulumi_kubernetes as k8s

replicas = pulumi.Config().require_int("replicas")
PROM = "http://kps-prometheus.monitoring.svc:9090"
GPU_TOLERATION = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}

cluster = eks.Cluster("mistakes", skip_default_node_group=True, authentication_mode="API")
node_role = aws.iam.Role("system-nodes", assume_role_policy=json.dumps({"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}]}))
eks.ManagedNodeGroup("system", cluster=cluster, node_role=node_role, instance_types=["m7i.large"],
                     scaling_config=aws.eks.NodeGroupScalingConfigArgs(min_size=2, desired_size=2, max_size=3),
                     labels={"platform.gpu/pool": "system"},
                     taints=[aws.eks.NodeGroupTaintArgs(key="CriticalAddonsOnly", value="true", effect="NO_SCHEDULE")])
provider = k8s.Provider("cluster", kubeconfig="{}")
opts = pulumi.ResourceOptions(provider=provider)


def nodepool(name: str, capacity: str, limit: str) -> None:
    k8s.apiextensions.CustomResource(name, api_version="karpenter.sh/v1", kind="NodePool", metadata={"name": name}, spec={
        "limits": {"nvidia.com/gpu": limit},
        "disruption": {"consolidateAfter": "10m", "budgets": [{"nodes": "1"}]},
        "template": {"metadata": {"labels": {"platform.gpu/tier": "l40s"}}, "spec": {
            "expireAfter": "720h", "nodeClassRef": {"group": "karpenter.k8s.aws", "kind": "EC2NodeClass", "name": "l40s"},
            "taints": [{"key": "nvidia.com/gpu", "value": "true", "effect": "NoSchedule"}],
            "requirements": [{"key": "karpenter.sh/capacity-type", "operator": "In", "values": [capacity]},
                             {"key": "node.kubernetes.io/instance-type", "operator": "In", "values": ["g6e.xlarge"]}]}}},
        opts=opts)


# The baseline needs 3 GPUs; surge and a replacement node need 2 more.
nodepool("l40s-on-demand", "on-demand", str(replicas))
nodepool("l40s-spot", "spot", "8")


def vllm(name: str, count: int, node_selector: dict, service_account: str = "default") -> k8s.apps.v1.Deployment:
    container = {
        "name": "vllm", "image": "vllm/vllm-openai:v0.33.0", "command": ["vllm", "serve"],
        "args": ["/models/m", "--shutdown-timeout", "60"],
        "env": [{"name": "MODEL_SOURCE", "value": "s3://my-bucket/llama-3.1-8b"}],
        "resources": {"requests": {"nvidia.com/gpu": "1", "cpu": "3", "memory": "16Gi"},
                      "limits": {"nvidia.com/gpu": "1", "memory": "16Gi"}},
        "lifecycle": {"preStop": {"sleep": {"seconds": 15}}},
        "startupProbe": {"httpGet": {"path": "/health", "port": 8000}, "periodSeconds": 10, "failureThreshold": 60},
        "readinessProbe": {"httpGet": {"path": "/health", "port": 8000}},
    }
    return k8s.apps.v1.Deployment(name, metadata={"name": name, "namespace": "inference"}, spec={
        "replicas": count,
        "selector": {"matchLabels": {"app": name}},
        "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
        "template": {"metadata": {"labels": {"app": name, "service": "svc"}}, "spec": {
            "serviceAccountName": service_account, "containers": [container], "tolerations": [GPU_TOLERATION],
            "terminationGracePeriodSeconds": 85, "nodeSelector": node_selector}}}, opts=opts)


# The association exists, but nothing orders the pods after it.
aws.eks.PodIdentityAssociation("svc-reader", cluster_name="mistakes", namespace="inference",
                               service_account="svc", role_arn=node_role.arn)
vllm("svc-baseline", replicas, {"platform.gpu/tier": "l40s", "karpenter.sh/capacity-type": "on-demand"}, "svc")
vllm("svc-burst", 0, {"platform.gpu/tier": "l40s"})
vllm("svc-large", 1, {"platform.gpu/tier": "h100"})

k8s.apiextensions.CustomResource("svc-burst", api_version="keda.sh/v1alpha1", kind="ScaledObject",
    metadata={"name": "svc-burst", "namespace": "inference"}, spec={
        "scaleTargetRef": {"name": "svc-burst"}, "minReplicaCount": 0, "maxReplicaCount": 4,
        "triggers": [
            {"type": "prometheus", "name": "running", "metadata": {
                "serverAddress": PROM, "query": "sum(vllm:num_requests_running{namespace=\"inference\"})",
                "threshold": "64", "activationThreshold": "0"}},
            # baseline and burst pods alike: the signal does not fall as svc-burst scales out.
            {"type": "prometheus", "name": "kv", "metricType": "Value", "metadata": {
                "serverAddress": PROM, "query": "max(vllm:kv_cache_usage_perc{namespace=\"inference\",pod=~\"svc-.*\"})",
                "threshold": "0.8"}}]}, opts=opts)

k8s.core.v1.PersistentVolumeClaim("cache", metadata={"name": "cache", "namespace": "inference"}, spec={
    "accessModes": ["ReadWriteOnce"], "storageClassName": "gp3", "resources": {"requests": {"storage": "100Gi"}}}, opts=opts)

k8s.apps.v1.Deployment("controller", metadata={"name": "controller", "namespace": "kube-system"}, spec={
    "replicas": 2, "selector": {"matchLabels": {"app": "controller"}},
    "template": {"metadata": {"labels": {"app": "controller"}}, "spec": {
        "nodeSelector": {"platform.gpu/pool": "system"},
        "tolerations": [{"key": "CriticalAddonsOnly", "operator": "Exists", "effect": "NoSchedule"}],
        "containers": [{"name": "controller", "image": "registry.k8s.io/pause:3.10",
                        "resources": {"requests": {"cpu": "2", "memory": "2Gi"}}}]}}}, opts=opts)
