"""A closed network: NetworkPolicies of the serving namespaces and the API key."""

from __future__ import annotations

import pytest

from components.render import vllm
from tests.conftest import build, by_type, load, load_with


@pytest.fixture(scope="module")
def prod():
    return build(load("prod"))


def _policies(result) -> dict[tuple[str, str], dict]:
    return {(r.inputs["metadata"]["namespace"], r.inputs["metadata"]["name"]): r.inputs["spec"]
            for r in by_type(result, "kubernetes:networking.k8s.io/v1:NetworkPolicy")}


def test_every_serving_namespace_denies_ingress_by_default(prod):
    assert _policies(prod)[("inference", "default-deny-ingress")] == {"podSelector": {}, "policyTypes": ["Ingress"]}


PROMETHEUS_PEER = {"namespaceSelector": {"matchExpressions": [
    {"key": "kubernetes.io/metadata.name", "operator": "In", "values": ["monitoring"]}]},
    "podSelector": {"matchLabels": {"app.kubernetes.io/name": "prometheus"}}}
GATEWAY_PEER = {"namespaceSelector": {"matchExpressions": [
    {"key": "kubernetes.io/metadata.name", "operator": "In", "values": ["gateway"]}]}}


def _service_mode(values):
    for s in values["modelServices"]:
        s.pop("routing", None)


def test_the_port_is_open_to_the_consumer_namespaces_and_prometheus_only():
    spec = _policies(build(load_with("prod", _service_mode)))[("inference", "chat-8b-ingress")]
    assert spec == {
        "podSelector": {"matchLabels": {"app.kubernetes.io/name": "vllm", "app.kubernetes.io/instance": "chat-8b"}},
        "policyTypes": ["Ingress"],
        "ingress": [
            {"from": [PROMETHEUS_PEER], "ports": [{"protocol": "TCP", "port": 8000}]},
            {"from": [GATEWAY_PEER], "ports": [{"protocol": "TCP", "port": 8000}]},
        ],
    }


def test_routed_pods_are_reached_by_the_router_and_prometheus_only(prod):
    spec = _policies(prod)[("inference", "chat-8b-ingress")]
    assert spec["ingress"] == [{"from": [{"podSelector": {"matchLabels": {"llm-d-router-gateway": "chat-8b-router-epp"}}},
                                         PROMETHEUS_PEER], "ports": [{"protocol": "TCP", "port": 8000}]}]
    # Consumers reach the router's listener; Prometheus its metrics port.
    router = _policies(prod)[("inference", "chat-8b-router-ingress")]
    assert router["podSelector"] == {"matchLabels": {"llm-d-router-gateway": "chat-8b-router-epp"}}
    assert router["ingress"] == [{"from": [PROMETHEUS_PEER], "ports": [{"protocol": "TCP", "port": 9090}]},
                                 {"from": [GATEWAY_PEER], "ports": [{"protocol": "TCP", "port": 8081}]}]


def test_without_consumers_only_prometheus_reaches_the_port():
    result = build(load("dev"))
    spec = _policies(result)[("inference", "chat-ingress")]
    assert len(spec["ingress"]) == 1
    assert spec["ingress"][0]["from"][0]["podSelector"] == {"matchLabels": {"app.kubernetes.io/name": "prometheus"}}


def test_egress_is_dns_pod_identity_and_public_https(prod):
    spec = _policies(prod)[("inference", "reason-70b-egress")]
    assert spec["policyTypes"] == ["Egress"]
    # The serving pods and the pre-pull pods (which run the same cache init container).
    assert spec["podSelector"] == {"matchLabels": {"app.kubernetes.io/instance": "reason-70b"},
                                   "matchExpressions": [{"key": "app.kubernetes.io/name", "operator": "In",
                                                         "values": ["vllm", "vllm-pre-pull"]}]}
    dns, agent, https = spec["egress"]
    assert dns == {"to": [{"namespaceSelector": {"matchExpressions": [
        {"key": "kubernetes.io/metadata.name", "operator": "In", "values": ["kube-system"]}]},
        "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}],
        "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]}
    assert agent == {"to": [{"ipBlock": {"cidr": "169.254.170.23/32"}}], "ports": [{"protocol": "TCP", "port": 80}]}
    assert https == {"to": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": [
        "10.0.0.0/8", "100.64.0.0/10", "172.16.0.0/12", "192.168.0.0/16"]}}],
        "ports": [{"protocol": "TCP", "port": 443}]}


def test_the_vpc_and_service_ranges_are_excluded_from_https_egress(prod):
    """The API server (its ENIs in the VPC, its Service IP) is never reachable from the pods."""
    import ipaddress

    cfg = load("prod")
    spec = _policies(prod)[("inference", "chat-8b-egress")]
    excluded = [ipaddress.ip_network(c) for c in spec["egress"][2]["to"][0]["ipBlock"]["except"]]
    # The VPC, and both ranges EKS picks Service IPs from (10.100.0.0/16, 172.20.0.0/16).
    for cidr in (cfg.cluster.network.cidr, "10.100.0.0/16", "172.20.0.0/16"):
        assert any(ipaddress.ip_network(cidr).subnet_of(e) for e in excluded), cidr


def _vllm_container(result, deployment: str) -> dict:
    (dep,) = [r.inputs for r in by_type(result, "kubernetes:apps/v1:Deployment")
              if r.inputs["metadata"]["name"] == deployment]
    (c,) = dep["spec"]["template"]["spec"]["containers"]
    return c


def test_the_api_key_comes_from_the_secret_as_vllm_api_key(prod):
    c = _vllm_container(prod, "chat-8b-baseline")
    assert {"name": "VLLM_API_KEY", "valueFrom": {"secretKeyRef": {"name": "chat-8b-api-key", "key": "api-key"}}} \
        in c["env"]
    assert not any(a.startswith("--api-key") for a in c["args"])


def test_the_probes_still_work_with_an_api_key(prod):
    c = _vllm_container(prod, "chat-8b-baseline")
    # /health is outside vLLM's guarded prefixes (/v1...): plain HTTP probes stay.
    assert c["startupProbe"]["httpGet"]["path"] == c["livenessProbe"]["httpGet"]["path"] == "/health"
    script = c["readinessProbe"]["exec"]["command"][2]
    assert "headers['Authorization'] = 'Bearer ' + os.environ['VLLM_API_KEY']" in script


def test_no_api_key_no_variable():
    result = build(load("dev"))
    for dep in by_type(result, "kubernetes:apps/v1:Deployment"):
        for c in dep.inputs["spec"]["template"]["spec"]["containers"]:
            assert all(e["name"] != "VLLM_API_KEY" for e in c.get("env", []))


def test_the_readiness_script_sends_the_key_only_when_set(monkeypatch):
    """Run the warm-up part of the script against a fake urlopen: the header follows the variable."""
    import urllib.request

    svc = load("prod").model_services[0]
    script = vllm._readiness_script(svc.model)
    sent: list[dict] = []

    class _Resp:
        def read(self):
            return b"{}"

    def fake_urlopen(req, timeout=None):
        if not isinstance(req, str):
            sent.append(dict(req.header_items()))
        return _Resp()

    monkeypatch.setattr(urllib.request, "urlopen", fake_urlopen)
    monkeypatch.setattr("os.path.exists", lambda p: False)
    monkeypatch.setattr("builtins.open", lambda *a, **k: __import__("io").StringIO())
    monkeypatch.setenv("VLLM_API_KEY", "k1")
    exec(script, {})
    monkeypatch.delenv("VLLM_API_KEY")
    exec(script, {})
    assert sent[0]["Authorization"] == "Bearer k1"
    assert "Authorization" not in sent[1]


def test_consumer_namespaces_must_be_dns_labels():
    from components.config import ConfigError

    def mutate(values):
        values["modelServices"][0]["consumerNamespaces"] = ["Gateway_NS"]

    with pytest.raises(ConfigError) as info:
        load_with("dev", mutate)
    assert "modelServices[0].consumerNamespaces[0]" in str(info.value)


# --------------------------------------------------------------------------- system nodes, region


def test_system_nodes_use_a_hardened_launch_template(prod):
    (lt,) = by_type(prod, "aws:ec2/launchTemplate:LaunchTemplate")
    assert lt.inputs["metadataOptions"] == {"httpEndpoint": "enabled", "httpTokens": "required",
                                            "httpPutResponseHopLimit": 1}
    assert lt.inputs["blockDeviceMappings"] == [{"deviceName": "/dev/xvda", "ebs": {
        "volumeSize": 50, "volumeType": "gp3", "encrypted": "true", "deleteOnTermination": "true"}}]
    (group,) = by_type(prod, "eks:index:ManagedNodeGroup")
    assert "diskSize" not in group.inputs  # conflicts with a launch template
    assert set(group.inputs["launchTemplate"]) == {"id", "version"}


def test_karpenter_is_told_its_region():
    from components.render import karpenter

    values = karpenter.chart_values(cluster="c", region="eu-west-1", queue_name="q", system_tolerations=[],
                                    system_selector={})
    assert values["controller"]["env"] == [{"name": "AWS_REGION", "value": "eu-west-1"}]


def test_the_ebs_csi_controller_is_told_its_region(prod):
    import json

    (addon,) = [r for r in by_type(prod, "aws:eks/addon:Addon") if r.inputs["addonName"] == "aws-ebs-csi-driver"]
    assert json.loads(addon.inputs["configurationValues"])["controller"]["region"] == "us-east-1"


def test_the_cache_init_container_is_told_its_region():
    from components.render import cache

    model = load("prod").model_services[0].model
    env = cache.init_container(model, region="eu-west-1")["env"]
    assert {"name": "AWS_REGION", "value": "eu-west-1"} in env
    assert {"name": "AWS_DEFAULT_REGION", "value": "eu-west-1"} in env
