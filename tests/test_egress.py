"""Private egress: the image mapping, the egress config, the endpoints, cache rules and node
permissions in the synthesized stacks, and the GPU Operator's own ServiceMonitor."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml

from components.config import PullThroughCacheConfig, load_stack_config
from components.render import addons, chart_images
from components.render.images import Mirror, chart_image, image_ref, mirror_for, mirror_images
from platform_facts import registries
from tests.conftest import REPO, STACKS, assert_config_rejected, stack_values
from tests.test_config import _set

ECR = "123456789012.dkr.ecr.us-east-1.amazonaws.com"
HUB_SECRET = {"docker-hub": "ecr-pullthroughcache/docker-hub"}
MIRROR = mirror_for(PullThroughCacheConfig(enabled=True, credentials=HUB_SECRET), account="123456789012",
                    region="us-east-1")

# (reference as written, what the kubelet pulls when the stack caches ecr-public, k8s, quay, docker-hub)
MAPPED = [
    ("vllm/vllm-openai:v0.33.0", f"{ECR}/mirror/docker-hub/vllm/vllm-openai:v0.33.0"),
    ("redis:7.4.6-alpine", f"{ECR}/mirror/docker-hub/library/redis:7.4.6-alpine"),
    ("docker.io/library/redis:7.4.6-alpine", f"{ECR}/mirror/docker-hub/library/redis:7.4.6-alpine"),
    ("docker.io/redis:7", f"{ECR}/mirror/docker-hub/library/redis:7"),
    ("index.docker.io/grafana/grafana:13.2.0", f"{ECR}/mirror/docker-hub/grafana/grafana:13.2.0"),
    ("busybox@sha256:" + "a" * 64, f"{ECR}/mirror/docker-hub/library/busybox@sha256:" + "a" * 64),
    ("busybox", f"{ECR}/mirror/docker-hub/library/busybox"),
    ("registry.k8s.io/pause:3.10", f"{ECR}/mirror/k8s/pause:3.10"),
    ("public.ecr.aws/aws-cli/aws-cli:2.31.12", f"{ECR}/mirror/ecr-public/aws-cli/aws-cli:2.31.12"),
    ("quay.io/prometheus/prometheus:v3.14.0", f"{ECR}/mirror/quay/prometheus/prometheus:v3.14.0"),
    # No rule: NGC is not an upstream ECR supports; GitHub needs a secret this stack does not give.
    ("nvcr.io/nvidia/gpu-operator:v26.7.0", "nvcr.io/nvidia/gpu-operator:v26.7.0"),
    ("ghcr.io/example/embed-worker:1.4.2", "ghcr.io/example/embed-worker:1.4.2"),
    # Already private, or a registry on a port: untouched.
    (f"{ECR}/team/app:1", f"{ECR}/team/app:1"),
    ("localhost:5000/app:1", "localhost:5000/app:1"),
    ("registry.example.com:5000/app:1", "registry.example.com:5000/app:1"),
]


@pytest.mark.parametrize("ref,expected", MAPPED)
def test_image_ref_maps_supported_registries_only(ref, expected):
    assert image_ref(ref, MIRROR) == expected


@pytest.mark.parametrize("ref,_", MAPPED)
def test_no_mirror_leaves_every_reference_alone(ref, _):
    assert image_ref(ref, None) == ref


def test_an_upstream_with_credentials_gets_a_rule_and_its_images_move():
    cache = PullThroughCacheConfig(enabled=True, credentials={**HUB_SECRET, "github-container-registry":
                                                              "ecr-pullthroughcache/ghcr"})
    mirror = mirror_for(cache, account="123456789012", region="eu-west-1")
    assert mirror is not None and mirror.prefix("github-container-registry") == "mirror/ghcr"
    assert image_ref("ghcr.io/kedacore/keda:2.20.2", mirror) == \
        "123456789012.dkr.ecr.eu-west-1.amazonaws.com/mirror/ghcr/kedacore/keda:2.20.2"
    assert mirror_for(PullThroughCacheConfig(enabled=False), account="1", region="us-east-1") is None


def test_chart_image_splits_as_the_chart_does():
    assert chart_image("quay.io", "prometheus/prometheus", MIRROR) == (f"{ECR}/mirror/quay", "prometheus/prometheus")
    assert chart_image("docker.io", "busybox", MIRROR) == (f"{ECR}/mirror/docker-hub", "library/busybox")
    assert chart_image("nvcr.io/nvidia", "gpu-operator", MIRROR) == ("nvcr.io/nvidia", "gpu-operator")


def test_mirror_images_reaches_every_container_list_at_any_depth():
    job = {"jobTargetRef": {"template": {"spec": {
        "initContainers": [{"name": "sync", "image": "public.ecr.aws/aws-cli/aws-cli:2.31.12"}],
        "containers": [{"name": "w", "image": "redis:7", "env": [{"name": "image", "value": "redis:7"}]}]}}}}
    out = mirror_images(job, MIRROR)
    spec = out["jobTargetRef"]["template"]["spec"]
    assert spec["initContainers"][0]["image"] == f"{ECR}/mirror/ecr-public/aws-cli/aws-cli:2.31.12"
    assert spec["containers"][0]["image"] == f"{ECR}/mirror/docker-hub/library/redis:7"
    assert spec["containers"][0]["env"] == [{"name": "image", "value": "redis:7"}], "only images move"
    assert job["jobTargetRef"]["template"]["spec"]["containers"][0]["image"] == "redis:7", "the input is not changed"


def test_the_upstream_list_matches_the_ecr_api():
    # CreatePullThroughCacheRule's upstreamRegistryUrl per upstreamRegistry (ECR API reference).
    assert {u.name: u.url for u in registries.UPSTREAMS} == {
        "ecr-public": "public.ecr.aws", "k8s": "registry.k8s.io", "quay": "quay.io",
        "docker-hub": "registry-1.docker.io", "github-container-registry": "ghcr.io",
        "gitlab-container-registry": "registry.gitlab.com"}
    assert {u.name for u in registries.UPSTREAMS if not u.needs_credentials} == {"ecr-public", "k8s", "quay"}


# --------------------------------------------------------------------------- config

BAD = [
    ("prefix-too-long", _set("cluster.egress.pullThroughCache.repositoryPrefix", "platform-team-mirror-us"),
     ["cluster.egress.pullThroughCache.repositoryPrefix: 'platform-team-mirror-us' makes the ecr-public rule's "
      "ecrRepositoryPrefix 'platform-team-mirror-us/ecr-public' 34 characters; AWS allows 2-30, so use at most 19"]),
    ("prefix-too-short", _set("cluster.egress.pullThroughCache.repositoryPrefix", "m"),
     ["cluster.egress.pullThroughCache.repositoryPrefix: 'm' is shorter than the 2 characters AWS requires"]),
    ("prefix-uppercase", _set("cluster.egress.pullThroughCache.repositoryPrefix", "Mirror"),
     ["cluster.egress.pullThroughCache.repositoryPrefix: 'Mirror' is not an ECR repository prefix"]),
    ("secret-outside-prefix", _set("cluster.egress.pullThroughCache.credentials", {"docker-hub": "dockerhub-token"}),
     ["cluster.egress.pullThroughCache.credentials.docker-hub: 'dockerhub-token' is not a Secrets Manager secret "
      "name or ARN under 'ecr-pullthroughcache/'", "(e.g. ecr-pullthroughcache/docker-hub)"]),
    ("secret-arn-outside-prefix", _set("cluster.egress.pullThroughCache.credentials",
                                       {"docker-hub": "arn:aws:secretsmanager:us-east-1:123456789012:secret:hub-AbCdEf"}),
     ["cluster.egress.pullThroughCache.credentials.docker-hub:", "under 'ecr-pullthroughcache/'"]),
    ("credentials-for-an-open-upstream", _set("cluster.egress.pullThroughCache.credentials",
                                              {**HUB_SECRET, "quay": "ecr-pullthroughcache/quay"}),
     ["cluster.egress.pullThroughCache.credentials.quay: ECR pulls quay without credentials; secrets are "
      "for docker-hub, github-container-registry, gitlab-container-registry"]),
    ("credentials-for-an-unsupported-registry", _set("cluster.egress.pullThroughCache.credentials",
                                                     {**HUB_SECRET, "nvcr": "ecr-pullthroughcache/ngc"}),
     ["cluster.egress.pullThroughCache.credentials.nvcr: 'nvcr' is not an upstream ECR pull-through cache supports"]),
    ("enabled-without-docker-hub", _set("cluster.egress.pullThroughCache.credentials", {}),
     ["cluster.egress.pullThroughCache.credentials: needs a docker-hub secret when enabled"]),
    ("unknown-endpoint", _set("cluster.egress.interfaceEndpoints", ["ecr.api", "ecr.dkr", "s3"]),
     ["cluster.egress.interfaceEndpoints[2]:", "'ecr.api', 'ecr.dkr' or 'sts'", "'s3'"]),
    ("endpoint-twice", _set("cluster.egress.interfaceEndpoints", ["sts", "sts"]),
     ["cluster.egress.interfaceEndpoints[1]: 'sts' is listed twice"]),
    ("ecr-half-pair", _set("cluster.egress.interfaceEndpoints", ["ecr.dkr"]),
     ["cluster.egress.interfaceEndpoints: ecr.api and ecr.dkr go together"]),
    ("ecr-endpoints-without-s3", _set("cluster.egress.s3GatewayEndpoint", False),
     ["cluster.egress.s3GatewayEndpoint: false with ECR interface endpoints: ECR serves image layers from S3"]),
    ("endpoints-in-an-existing-vpc", _set("cluster.network.existing", {
        "vpcId": "vpc-0abc", "privateSubnetIds": ["subnet-0a", "subnet-0b"]}),
     ["cluster.egress.interfaceEndpoints: set only for a VPC this stack creates"]),
    ("typo", _set("cluster.egress.pullThroughCache.enable", True),
     ["cluster.egress.pullThroughCache.enable: unknown key", "did you mean enabled?"]),
]


@pytest.mark.parametrize("mutate,expected", [(m, e) for _, m, e in BAD], ids=[b[0] for b in BAD])
def test_bad_egress_config_is_rejected_with_a_clear_message(mutate, expected):
    assert_config_rejected("prod", mutate, expected)


def test_a_secret_arn_is_accepted_and_used_as_is():
    arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:ecr-pullthroughcache/docker-hub-AbCdEf"
    values, region = stack_values("prod")
    _set("cluster.egress.pullThroughCache.credentials", {"docker-hub": arn})(values)
    cache = load_stack_config(values, region).cluster.egress.pull_through_cache
    assert cache.credential("docker-hub") == arn


def test_the_stacks_turn_the_cache_on_in_staging_and_prod_only():
    from tests.conftest import load
    assert {s: load(s).cluster.egress.pull_through_cache.enabled for s in STACKS} == {
        "dev": False, "staging": True, "prod": True}


# --------------------------------------------------------------------------- synthesized stacks


def _resources(out: Path, rtype: str) -> list[dict]:
    return [r for r in json.loads((out / "resources.json").read_text()) if r["type"] == rtype]


def _images(out: Path) -> list[str]:
    found = []
    for path in sorted((out / "manifests").glob("*.yaml")):
        def walk(node):
            if isinstance(node, dict):
                for key in ("containers", "initContainers"):
                    found.extend(c["image"] for c in node.get(key) or () if isinstance(c, dict))
                for v in node.values():
                    walk(v)
            elif isinstance(node, list):
                for v in node:
                    walk(v)
        walk(yaml.safe_load(path.read_text()))
    return found


def test_staging_and_prod_create_the_cache_rules_and_dev_does_not(synthesized):
    rule = "aws:ecr/pullThroughCacheRule:PullThroughCacheRule"
    assert _resources(synthesized["dev"], rule) == []
    for stack in ("staging", "prod"):
        rules = {r["inputs"]["ecrRepositoryPrefix"]: r["inputs"] for r in _resources(synthesized[stack], rule)}
        assert sorted(rules) == ["mirror/docker-hub", "mirror/ecr-public", "mirror/k8s", "mirror/quay"]
        hub = rules["mirror/docker-hub"]
        assert hub["upstreamRegistryUrl"] == "registry-1.docker.io"
        assert hub["credentialArn"].startswith(
            "arn:aws:secretsmanager:us-east-1:123456789012:secret:ecr-pullthroughcache/docker-hub-")
        assert "credentialArn" not in rules["mirror/quay"]


def test_every_image_of_staging_and_prod_is_pulled_through_the_cache_or_has_no_rule(synthesized):
    for stack in ("staging", "prod"):
        images = _images(synthesized[stack])
        assert images
        for image in images:
            assert image.startswith(f"{ECR}/mirror/") or registries.upstream_of(image).name == "github-container-registry", image
    assert not any(i.startswith(ECR) for i in _images(synthesized["dev"]))
    assert "vllm/vllm-openai:v0.33.0" in _images(synthesized["dev"])


def test_endpoints_per_stack(synthesized):
    def endpoints(stack):
        return {r["inputs"]["serviceName"]: r["inputs"] for r in _resources(synthesized[stack], "aws:ec2/vpcEndpoint:VpcEndpoint")}

    # S3 is free: every stack has it, on each private route table (one per zone).
    for stack, zones in (("dev", 2), ("staging", 3), ("prod", 3)):
        s3 = endpoints(stack)["com.amazonaws.us-east-1.s3"]
        assert s3["vpcEndpointType"] == "Gateway" and len(s3["routeTableIds"]) == zones
    assert sorted(endpoints("staging")) == sorted(endpoints("dev")) == ["com.amazonaws.us-east-1.s3"]
    prod = endpoints("prod")
    assert "com.amazonaws.us-east-1.sts" not in prod
    for service in ("ecr.api", "ecr.dkr"):
        ep = prod[f"com.amazonaws.us-east-1.{service}"]
        assert ep["vpcEndpointType"] == "Interface" and ep["privateDnsEnabled"] is True
        assert len(ep["subnetIds"]) == 3 and len(ep["securityGroupIds"]) == 1
    [sg] = [r for r in _resources(synthesized["prod"], "aws:ec2/securityGroup:SecurityGroup")
            if r["name"].endswith("network-endpoints")]
    assert sg["inputs"]["ingress"] == [{"protocol": "tcp", "fromPort": 443, "toPort": 443, "description":
                                        "HTTPS from the private subnets",
                                        "cidrBlocks": ["10.0.0.0/19", "10.0.32.0/19", "10.0.64.0/19"]}]
    assert "egress" not in sg["inputs"]


def test_node_roles_may_pull_through_the_cache_rules_only(synthesized):
    def policies(stack):
        return {r["name"]: json.loads(r["inputs"]["policy"]) for r in _resources(synthesized[stack], "aws:iam/rolePolicy:RolePolicy")
                if r["name"].endswith("pull-through-cache")}

    assert policies("dev") == {}
    docs = policies("prod")
    assert sorted(docs) == ["llm-prod-cluster-system-node-pull-through-cache", "llm-prod-karpenter-node-pull-through-cache"]
    for doc in docs.values():
        [st] = doc["Statement"]
        assert st["Action"] == ["ecr:BatchImportUpstreamImage", "ecr:CreateRepository"]
        assert sorted(st["Resource"]) == [f"arn:aws:ecr:us-east-1:123456789012:repository/mirror/{p}/*"
                                          for p in ("docker-hub", "ecr-public", "k8s", "quay")]


# --------------------------------------------------------------------------- GPU Operator metrics


def test_the_gpu_operator_declares_its_own_service_monitor(synthesized):
    values = yaml.safe_load((synthesized["prod"] / "helm" / "gpu-operator.yaml").read_text())["values"]
    monitor = values["operator"]["metrics"]["serviceMonitor"]
    assert monitor == {"enabled": True, "honorLabels": False}
    # The chart copies it into the ClusterPolicy's spec.operator.metrics.serviceMonitor: it must
    # validate against the ClusterPolicy CRD of the pinned operator.
    schema = json.loads((REPO / "tests/upstream/schemas/nvidia.com_clusterpolicy_v1.json").read_text())
    sm_schema = schema["properties"]["spec"]["properties"]["operator"]["properties"]["metrics"]
    jsonschema.validate({"serviceMonitor": monitor}, sm_schema)
    assert addons.gpu_operator.__doc__ is not None


def test_mirror_is_a_plain_value():
    assert MIRROR == Mirror(ECR, (("ecr-public", "mirror/ecr-public"), ("k8s", "mirror/k8s"), ("quay", "mirror/quay"),
                                  ("docker-hub", "mirror/docker-hub")))


# --------------------------------------------------------------------------- chart images

CHARTS = REPO / "tests" / "upstream" / "charts"


@pytest.mark.parametrize("chart,table", [("kube-prometheus-stack", chart_images.KUBE_PROMETHEUS_STACK),
                                         ("prometheus-adapter", chart_images.PROMETHEUS_ADAPTER),
                                         ("keda", chart_images.KEDA)])
def test_chart_image_tables_match_the_pinned_chart_defaults(chart, table):
    defaults = yaml.safe_load((CHARTS / chart / "values.yaml").read_text())
    for image in table:
        node = defaults
        for key in image.path:
            node = node[key]
        assert (node.get("registry"), node["repository"]) == (image.registry, image.repository), image.path


def test_chart_images_move_only_where_a_rule_covers_the_registry():
    kps = chart_images.overrides(chart_images.KUBE_PROMETHEUS_STACK, MIRROR)
    assert kps["prometheus"]["prometheusSpec"]["image"] == {"registry": f"{ECR}/mirror/quay", "repository": "prometheus/prometheus"}
    assert kps["crds"]["upgradeJob"]["image"]["busybox"] == {"registry": f"{ECR}/mirror/docker-hub", "repository": "library/busybox"}
    # ghcr.io: no rule without GitHub credentials, so the certgen image and KEDA stay.
    assert "patch" not in kps["prometheusOperator"]["admissionWebhooks"]
    assert chart_images.overrides(chart_images.KEDA, MIRROR) == {}
    assert chart_images.overrides(chart_images.KUBE_PROMETHEUS_STACK, None) == {}
    assert chart_images.overrides(chart_images.GPU_OPERATOR_SUBCHARTS, MIRROR) == {
        "node-feature-discovery": {"image": {"repository": f"{ECR}/mirror/k8s/nfd/node-feature-discovery"}}}


def test_merge_keeps_what_the_values_set():
    values = {"crds": {"upgradeJob": {"image": {"busybox": {"tag": "1.37.0"}}}}, "x": 1}
    merged = chart_images.merge(values, {"crds": {"upgradeJob": {"image": {"busybox": {"registry": "r"}}}}})
    assert merged == {"crds": {"upgradeJob": {"image": {"busybox": {"tag": "1.37.0", "registry": "r"}}}}, "x": 1}
    assert values["crds"]["upgradeJob"]["image"]["busybox"] == {"tag": "1.37.0"}


def test_synthesized_chart_values_pull_through_the_cache_in_staging_only_not_dev(synthesized):
    def values(stack, release):
        return yaml.safe_load((synthesized[stack] / "helm" / f"{release}.yaml").read_text())["values"]

    assert values("staging", "kps")["prometheus-node-exporter"]["image"]["registry"] == f"{ECR}/mirror/quay"
    assert values("prod", "prometheus-adapter")["image"]["repository"].startswith(f"{ECR}/mirror/k8s/")
    assert "image" not in values("dev", "prometheus-adapter")
    assert "image" not in values("dev", "gpu-operator")["node-feature-discovery"]


def test_nodes_wait_for_the_rules_and_the_right_to_pull_through_them(synthesized):
    res = json.loads((synthesized["staging"] / "resources.json").read_text())
    urn = {r["name"]: r["urn"] for r in res}
    group = next(r for r in res if r["type"] == "eks:index:ManagedNodeGroup")
    assert {urn["llm-staging-cluster-network-cache-docker-hub"],
            urn["llm-staging-cluster-system-node-pull-through-cache"]} <= set(group["depends_on"])
    node_class = next(r for r in res if r["type"].endswith("EC2NodeClass"))
    assert urn["llm-staging-karpenter-node-pull-through-cache"] in node_class["depends_on"]


def test_an_existing_vpc_gets_the_cache_rules_but_no_endpoints():
    from tests.conftest import build, by_type, load_with

    def existing(v):
        v["cluster"]["network"] = {"existing": {"vpcId": "vpc-0abc", "privateSubnetIds": ["subnet-0a", "subnet-0b"]}}
        v["cluster"]["egress"].pop("interfaceEndpoints")

    result = build(load_with("prod", existing))
    assert by_type(result, "aws:ec2/vpcEndpoint:VpcEndpoint") == []
    assert len(by_type(result, "aws:ecr/pullThroughCacheRule:PullThroughCacheRule")) == 4


def test_an_sts_endpoint_joins_the_others_behind_the_same_group():
    from tests.conftest import build, by_type, load_with

    result = build(load_with("staging", _set("cluster.egress.interfaceEndpoints", ["sts"])))
    (sg,) = [r for r in by_type(result, "aws:ec2/securityGroup:SecurityGroup") if r.name.endswith("network-endpoints")]
    (sts,) = [r.inputs for r in by_type(result, "aws:ec2/vpcEndpoint:VpcEndpoint")
              if r.inputs["serviceName"] == "com.amazonaws.us-east-1.sts"]
    assert sts["vpcEndpointType"] == "Interface" and sts["privateDnsEnabled"] is True
    assert sts["securityGroupIds"] == [sg.outputs["id"]]


def test_the_pre_pull_daemonset_pulls_through_the_cache():
    from tests.conftest import build, by_type, load_with

    result = build(load_with("staging", lambda v: v["modelServices"][0].update(prePull=True)))
    (ds,) = [r.inputs for r in by_type(result, "kubernetes:apps/v1:DaemonSet")]
    spec = ds["spec"]["template"]["spec"]
    images = [c["image"] for c in spec["initContainers"] + spec["containers"]]
    assert f"{ECR}/mirror/docker-hub/vllm/vllm-openai:v0.33.0" in images
    assert f"{ECR}/mirror/k8s/pause:3.10" in images
    assert all(i.startswith(f"{ECR}/mirror/") for i in images), images


def test_network_alone_names_its_s3_endpoint_from_the_provider_region():
    from components.cluster import Network, NetworkArgs
    from tests.conftest import load
    from tests.test_components import _alone

    cfg = load("dev").cluster
    resources = _alone(lambda: Network("net", NetworkArgs(cfg.name, cfg.network)))
    (s3,) = [r.inputs for r in resources if r.type == "aws:ec2/vpcEndpoint:VpcEndpoint"]
    assert s3["serviceName"] == "com.amazonaws.eu-west-1.s3" and len(s3["routeTableIds"]) == 2


def test_router_images_go_through_the_cache_where_a_rule_covers_them():
    from components import versions
    from components.render import router
    from tests.conftest import load

    svc = load("prod").model_services[0]
    plain = router.chart_values(svc)["router"]
    assert plain["proxy"]["image"] == versions.LLMD_ENVOY_IMAGE  # the chart preset's image, pinned
    assert plain["epp"]["image"]["registry"] == "ghcr.io/llm-d"
    mirrored = router.chart_values(svc, MIRROR)["router"]
    # Envoy comes from Docker Hub: through the docker-hub rule.
    assert mirrored["proxy"]["image"] == f"{ECR}/mirror/docker-hub/envoyproxy/envoy:distroless-v1.33.2"
    # The EPP comes from ghcr.io, which needs GitHub credentials this cache was not given: unchanged.
    assert mirrored["epp"]["image"]["registry"] == "ghcr.io/llm-d"
