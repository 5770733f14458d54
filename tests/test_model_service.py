"""ModelService: workload shape, drain, readiness, scaling objects, cache and identity."""

from __future__ import annotations

import json
import re

import pytest

from components.render import scaling, vllm
from platform_facts import llmd
from platform_facts.vllm import METRIC_FAMILIES as VLLM_METRICS
from tests.conftest import STACKS, build, by_type, load, load_plain_prod, load_with

KINDS = {
    "kubernetes:apps/v1:Deployment", "kubernetes:core/v1:Service", "kubernetes:policy/v1:PodDisruptionBudget",
    "kubernetes:monitoring.coreos.com/v1:ServiceMonitor", "kubernetes:monitoring.coreos.com/v1:PrometheusRule",
    "kubernetes:keda.sh/v1alpha1:ScaledObject", "aws:iam/role:Role",
    "aws:eks/podIdentityAssociation:PodIdentityAssociation",
}


@pytest.fixture(scope="module")
def results():
    """Every stack, and prod before its re-tune and levers (``plain_prod``) for the tests of render
    mechanics that a re-tune should not move."""
    return {**{s: build(load(s)) for s in STACKS}, "plain-prod": build(load_plain_prod())}


def _service_resources(result, name):
    (component,) = [r for r in by_type(result, "gpu-platform:serving:ModelService") if r.name.endswith(f"-{name}")]
    return [r for r in result.resources if r.parent == component.urn]


def _deployments(result, name=None):
    return {r.inputs["metadata"]["name"]: r.inputs for r in by_type(result, "kubernetes:apps/v1:Deployment")
            if name is None or r.inputs["metadata"]["name"].startswith(name + "-")}


@pytest.mark.parametrize("stack", STACKS)
def test_each_service_synthesizes_its_objects(results, stack):
    for svc in load(stack).model_services:
        kinds = {r.type for r in _service_resources(results[stack], svc.name)}
        assert KINDS <= kinds, KINDS - kinds


@pytest.mark.parametrize("stack", STACKS)
def test_gpu_requests_equal_limits_and_resources(results, stack):
    cfg = load(stack)
    for svc in cfg.model_services:
        for dep in _deployments(results[stack], svc.name).values():
            (c,) = dep["spec"]["template"]["spec"]["containers"]
            res = c["resources"]
            assert res["requests"]["nvidia.com/gpu"] == res["limits"]["nvidia.com/gpu"] == str(svc.tensor_parallel_size)
            assert int(res["requests"]["cpu"]) >= 4 * svc.tensor_parallel_size
            assert int(res["requests"]["memory"].removesuffix("Gi")) >= 8 * svc.tensor_parallel_size
            assert c["command"] == ["vllm", "serve"] and "--shutdown-timeout" in c["args"]


@pytest.mark.parametrize("stack", STACKS)
def test_drain_inequality_holds(results, stack):
    cfg = load(stack)
    for svc in cfg.model_services:
        for role, dep in _deployments(results[stack], svc.name).items():
            spec = dep["spec"]["template"]["spec"]
            (c,) = spec["containers"]
            pre_stop = c["lifecycle"]["preStop"]["sleep"]["seconds"]
            shutdown = int(c["args"][c["args"].index("--shutdown-timeout") + 1])
            grace = spec["terminationGracePeriodSeconds"]
            assert grace >= pre_stop + shutdown + 5
            assert shutdown >= 2 * svc.slo.p99_generation_seconds
            prefers_spot = "preferredDuringSchedulingIgnoredDuringExecution" in spec["affinity"]["nodeAffinity"]
            if prefers_spot:
                assert grace <= 120, f"{role}: the drain must fit the spot notice"


@pytest.mark.parametrize("stack", STACKS)
def test_startup_budget_exceeds_load_time_and_liveness_waits(results, stack):
    cfg = load(stack)
    for svc in cfg.model_services:
        for dep in _deployments(results[stack], svc.name).values():
            (c,) = dep["spec"]["template"]["spec"]["containers"]
            probe = c["startupProbe"]
            budget = probe["periodSeconds"] * probe["failureThreshold"]
            # The worst-case load from the node cache (pinned by literals in
            # test_startup_budget_literals) must fit the startup budget.
            assert budget > vllm.load_seconds(svc.model)
            assert "initialDelaySeconds" not in c["livenessProbe"] and c["livenessProbe"]["httpGet"]["path"] == "/health"


def test_startup_budget_literals():
    cfg = load("prod")
    small, large = cfg.model_services
    # 8B and 70B at bf16: load from the node cache (imports 120 s + weights at 0.3 GiB/s + engine
    # init 240 s), download-then-load (0.25 GiB/s), and probe failures allowed at a 10 s period
    # (62 x 10 s = 620 s for a 410 s load).
    assert vllm.load_seconds(small.model) == 410 and vllm.cold_start_seconds(small.model) == 470
    assert vllm.startup_failure_threshold(small.model) == 62
    assert vllm.load_seconds(large.model) == 795 and vllm.cold_start_seconds(large.model) == 1317
    assert vllm.startup_failure_threshold(large.model) == 120


def test_readiness_needs_a_real_completion():
    svc = load("dev").model_services[0]
    (c,) = vllm.deployment(svc, load("dev").gpu_tiers[0], "burst", "inference", 0, region="us-east-1")["spec"]["template"]["spec"]["containers"]
    script = c["readinessProbe"]["exec"]["command"][2]
    assert "/v1/completions" in script and "'max_tokens': 1" in script and "/health" in script
    compile(script, "readiness", "exec")


def test_baseline_on_demand_burst_prefers_spot(results):
    deps = _deployments(results["prod"], "chat-8b")
    base = deps["chat-8b-baseline"]["spec"]
    assert base["replicas"] == 2
    terms = base["template"]["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
    assert {"key": "karpenter.sh/capacity-type", "operator": "In", "values": ["on-demand"]} in terms[0]["matchExpressions"]
    burst = deps["chat-8b-burst"]["spec"]["template"]["spec"]["affinity"]["nodeAffinity"]
    assert burst["preferredDuringSchedulingIgnoredDuringExecution"][0]["preference"]["matchExpressions"][0]["values"] == ["spot"]
    assert "karpenter.sh/capacity-type" not in json.dumps(burst["requiredDuringSchedulingIgnoredDuringExecution"])
    # burstCapacity onDemand: the 70B's burst is required on-demand.
    burst70 = _deployments(results["prod"], "reason-70b")["reason-70b-burst"]["spec"]["template"]["spec"]["affinity"]
    assert "on-demand" in json.dumps(burst70["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"])
    for dep in deps.values():
        assert dep["spec"]["strategy"]["rollingUpdate"] == {"maxUnavailable": 0, "maxSurge": 1}
        assert dep["spec"]["template"]["spec"]["enableServiceLinks"] is False


def test_dev_scales_to_zero_without_baseline(results):
    deps = _deployments(results["dev"], "chat")
    assert set(deps) == {"chat-burst"}
    (so,) = [r.inputs for r in by_type(results["dev"], "kubernetes:keda.sh/v1alpha1:ScaledObject")]
    assert so["spec"]["minReplicaCount"] == 1 and so["spec"]["idleReplicaCount"] == 0
    triggers = {t["name"]: t for t in so["spec"]["triggers"]}
    assert triggers["active-hours"]["type"] == "cron" and triggers["active-hours"]["metadata"]["desiredReplicas"] == "1"
    assert triggers["keep-alive"]["metadata"]["activationThreshold"] == "0"


def test_scaled_object_shape(results):
    so = next(r.inputs for r in by_type(results["plain-prod"], "kubernetes:keda.sh/v1alpha1:ScaledObject")
              if r.inputs["metadata"]["name"] == "chat-8b-burst")
    spec = so["spec"]
    assert spec["scaleTargetRef"]["name"] == "chat-8b-burst"
    assert spec["minReplicaCount"] == 0 and "idleReplicaCount" not in spec
    assert spec["maxReplicaCount"] == 8 - 2
    # A new replica is not judged before a cold start (download, then load) can be over.
    assert spec["initialCooldownPeriod"] == 470
    assert spec["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]["scaleDown"]["stabilizationWindowSeconds"] == 600
    assert spec["fallback"] == {"failureThreshold": 3, "replicas": 3}
    # The policy pack reads this key (policies/rules_stack.py), so it is a contract: a literal.
    assert so["metadata"]["annotations"] == {"platform.gpu/baseline-deployment": "chat-8b-baseline"}
    triggers = {t["name"]: t for t in spec["triggers"]}
    assert triggers["waiting"]["metricType"] == "AverageValue"
    # No Value trigger: Value multiplies the burst's Ready pods by a ratio more pods do not lower.
    assert {t["metricType"] for t in triggers.values() if t["type"] == "prometheus"} == {"AverageValue"}
    # Activation-only triggers answer 0 or 1 against threshold 1: they never propose above 1.
    for name in ("ttft-p95", "burst-above-one"):
        assert (triggers[name]["metadata"]["threshold"], triggers[name]["metadata"]["activationThreshold"]) == ("1", "0")
    for t in triggers.values():
        assert all(isinstance(v, str) for v in t["metadata"].values())
        if t["type"] == "prometheus":
            assert t["metadata"]["serverAddress"] == "http://kps-prometheus.monitoring.svc:9090"


def test_burst_query_subtracts_the_baseline():
    cfg = load_plain_prod()
    q = scaling.queries(cfg.model_services[0], "inference")
    # 5 waiting per fixed (non-burst) pod that Prometheus scrapes now are absorbed before any
    # burst replica: a lost baseline pod is not subtracted (promtool cases in test_promql_triggers).
    assert q["waiting"] == ('clamp_min(sum(vllm:num_requests_waiting{namespace="inference",service="chat-8b"}) - 5 * '
                            '(count(vllm:num_requests_waiting{namespace="inference",service="chat-8b",'
                            'platform_gpu_role!="burst"}) or vector(0)), 0) or vector(0)')


SINGLE_SERIES = re.compile(r"^(clamp_min\((predict_linear\()?sum\(|max\(|sum\(|histogram_quantile\(0\.95, sum by \(le\))")


@pytest.mark.parametrize("stack", STACKS)
def test_triggers_and_alerts_use_emitted_metrics_and_one_series(results, stack):
    for so in by_type(results[stack], "kubernetes:keda.sh/v1alpha1:ScaledObject"):
        for t in so.inputs["spec"]["triggers"]:
            if t["type"] != "prometheus":
                continue
            query = t["metadata"]["query"]
            assert SINGLE_SERIES.match(query), query
            if t["name"] == "burst-above-one":  # the burst Deployment's size, from kube-state-metrics
                assert "kube_deployment_spec_replicas{" in query and 'deployment="' in query
                continue
            used = {re.sub(r"_(bucket|sum|count)$", "", m) for m in re.findall(r"vllm:[a-z_]+", query)}
            router = set(re.findall(r"llm_d_epp_[a-z_]+", query))
            assert (used or router) and used <= VLLM_METRICS and router <= llmd.METRICS
            assert 'service="' in query and 'namespace="' in query
    for rule in by_type(results[stack], "kubernetes:monitoring.coreos.com/v1:PrometheusRule"):
        text = json.dumps(rule.inputs)
        used = {re.sub(r"_(bucket|sum|count)$", "", m) for m in re.findall(r"vllm:[a-z_]+", text)}
        assert used <= VLLM_METRICS
        assert set(re.findall(r"llm_d_epp_[a-z_]+", text)) <= llmd.METRICS


def test_alerts_cover_the_failure_modes(results):
    rule = next(r.inputs for r in by_type(results["prod"], "kubernetes:monitoring.coreos.com/v1:PrometheusRule")
                if r.inputs["metadata"]["name"] == "chat-8b-alerts")
    alerts = {a["alert"]: a for a in rule["spec"]["groups"][0]["rules"]}
    assert set(alerts) == {"Chat8bQueueBacklog", "Chat8bTTFTAboveSLO", "Chat8bKVCacheNearFull",
                           "Chat8bGPUPodsPending", "Chat8bPinnedAtMax"}
    assert "> 1.5" in alerts["Chat8bTTFTAboveSLO"]["expr"]
    assert alerts["Chat8bGPUPodsPending"]["for"] == "10m"


def test_pdbs_never_deadlock(results):
    for stack in STACKS:
        for pdb in by_type(results[stack], "kubernetes:policy/v1:PodDisruptionBudget"):
            spec = pdb.inputs["spec"]
            assert spec == {**spec, "maxUnavailable": 1, "unhealthyPodEvictionPolicy": "AlwaysAllow"}
            assert "minAvailable" not in spec


def test_service_and_monitor(results):
    # Router mode (staging): the public name selects the router's Envoy; the vLLM pods keep a
    # headless Service for scraping only, whose series keep service="chat".
    (svc,) = [r.inputs for r in by_type(results["staging"], "kubernetes:core/v1:Service") if r.inputs["metadata"]["name"] == "chat"]
    assert svc["spec"]["type"] == "ClusterIP" and svc["spec"]["ports"][0]["port"] == 8000
    assert svc["spec"]["selector"] == {"llm-d-router-gateway": "chat-router-epp"}
    assert svc["spec"]["ports"][0]["targetPort"] == 8081
    (pods,) = [r.inputs for r in by_type(results["staging"], "kubernetes:core/v1:Service")
               if r.inputs["metadata"]["name"] == "chat-pods"]
    assert pods["spec"]["clusterIP"] == "None" and pods["spec"]["selector"] == vllm.selector(load("staging").model_services[0])
    (mon,) = [r.inputs for r in by_type(results["staging"], "kubernetes:monitoring.coreos.com/v1:ServiceMonitor")
              if r.inputs["metadata"]["name"] == "chat"]
    assert mon["spec"]["endpoints"] == [{"port": "http", "path": "/metrics", "interval": "15s", "relabelings": [
        {"action": "replace", "targetLabel": "service", "replacement": "chat"}]}]
    assert mon["spec"]["selector"]["matchLabels"] == pods["spec"]["selector"]
    assert results["staging"].outputs["services"]["chat"]["url"] == "http://chat.inference.svc:8000"


def test_service_mode_keeps_the_plain_service(results):
    svc_cfg = load("dev").model_services[0]
    assert svc_cfg.routing.mode == "service"
    (svc,) = [r.inputs for r in by_type(results["dev"], "kubernetes:core/v1:Service")
              if r.inputs["metadata"]["name"] == svc_cfg.name]
    assert svc["spec"]["selector"] == vllm.selector(svc_cfg) and "clusterIP" not in svc["spec"]
    (mon,) = [r.inputs for r in by_type(results["dev"], "kubernetes:monitoring.coreos.com/v1:ServiceMonitor")
              if r.inputs["metadata"]["name"] == svc_cfg.name]
    assert mon["spec"]["endpoints"] == [{"port": "http", "path": "/metrics", "interval": "15s"}]
    assert not by_type(results["dev"], "kubernetes:helm.sh/v3:Release") or all(
        "llm-d" not in r.inputs["chart"] for r in by_type(results["dev"], "kubernetes:helm.sh/v3:Release"))


def test_cache_reader_may_only_read_the_model_prefix(results):
    policies = [json.loads(r.inputs["policy"]) for r in by_type(results["prod"], "aws:iam/rolePolicy:RolePolicy")]
    chat = next(p for p in policies if "Llama-3.1-8B" in json.dumps(p))
    stmts = {s["Sid"]: s for s in chat["Statement"]}
    assert stmts["ReadModel"] == {"Sid": "ReadModel", "Effect": "Allow", "Action": "s3:GetObject",
                                  "Resource": "arn:aws:s3:::llm-prod-models/meta-llama/Llama-3.1-8B-Instruct/*"}
    assert stmts["ListModel"]["Resource"] == "arn:aws:s3:::llm-prod-models"
    assert stmts["ListModel"]["Condition"]["StringLike"]["s3:prefix"][0] == "meta-llama/Llama-3.1-8B-Instruct"
    # SSE-KMS: decrypt only when S3 asks on the role's behalf, for this bucket's objects.
    assert stmts["DecryptModel"] == {
        "Sid": "DecryptModel", "Effect": "Allow", "Action": "kms:Decrypt", "Resource": "*",
        "Condition": {"StringEquals": {"kms:ViaService": "s3.us-east-1.amazonaws.com"},
                      "StringLike": {"kms:EncryptionContext:aws:s3:arn": [
                          "arn:aws:s3:::llm-prod-models/meta-llama/Llama-3.1-8B-Instruct/*", "arn:aws:s3:::llm-prod-models"]}}}
    assocs = [r.inputs for r in by_type(results["prod"], "aws:eks/podIdentityAssociation:PodIdentityAssociation")]
    assert {"namespace": "inference", "serviceAccount": "chat-8b"}.items() <= next(
        a for a in assocs if a["serviceAccount"] == "chat-8b").items()


def test_model_cache_init_container(results):
    dep = _deployments(results["plain-prod"], "chat-8b")["chat-8b-baseline"]["spec"]["template"]["spec"]
    owner, init = dep["initContainers"]  # the hostPath owner step first
    (app,) = dep["containers"]
    assert init["name"] == "model-cache" and init["image"] == (
        "123456789012.dkr.ecr.us-east-1.amazonaws.com/mirror/ecr-public/aws-cli/aws-cli:2.31.12")  # through prod's pull-through cache
    assert init["env"] == [
        {"name": "MODEL_SOURCE", "value": "s3://llm-prod-models/meta-llama/Llama-3.1-8B-Instruct"},
        {"name": "CACHE_DIR", "value": "/models/llm-prod-models/meta-llama/Llama-3.1-8B-Instruct"},
        {"name": "HOME", "value": "/tmp"},  # the scratch emptyDir: the root filesystem is read-only
        # The system and GPU nodes' IMDS hop limit 1 keeps the AWS CLI from looking the region up.
        {"name": "AWS_REGION", "value": "us-east-1"},
        {"name": "AWS_DEFAULT_REGION", "value": "us-east-1"},
    ]
    assert init["resources"] == {"requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"memory": "2Gi"}}
    assert init["command"][:2] == ["/bin/sh", "-c"]
    script = init["command"][2]
    # S3 listing as the version, a node-wide lock, only the files vLLM loads, a checked commit
    # (the script itself runs in tests/test_cache_script.py).
    assert "aws s3api list-objects-v2 --bucket \"$bucket\" --prefix \"$prefix\"" in script
    assert 'until mkdir "$lock" 2>/dev/null; do' in script
    assert '--exclude "*" --include "$weights" --include "*.json"' in script
    assert 'mv "$part" "$dest"' in script
    assert dep["volumes"][0] == {"name": "model-cache", "hostPath": {"path": "/mnt/k8s-disks/0/models", "type": "DirectoryOrCreate"}}
    # The init container writes the cache, vLLM only reads it, from where it was written.
    assert init["volumeMounts"] == [{"name": "model-cache", "mountPath": "/models"},
                                   {"name": "model-cache-tmp", "mountPath": "/tmp"}]
    assert {"name": "model-cache", "mountPath": "/models", "readOnly": True} in app["volumeMounts"]
    assert app["args"][0] == "/models/llm-prod-models/meta-llama/Llama-3.1-8B-Instruct"
    env = {e["name"]: e.get("value") for e in app["env"]}
    assert env["HF_HUB_OFFLINE"] == "1"


def test_empty_dir_cache_requests_ephemeral_storage():
    # (An emptyDir cache cannot keep the compile cache: staging's persist is turned off with it.)
    cfg = load_with("staging", lambda v: v["modelServices"][0].update(cache={"medium": "emptyDir", "sizeGib": 120},
                                                                      compileCache={"persist": False}))
    dep = _deployments(build(cfg), "chat")["chat-baseline"]["spec"]["template"]["spec"]
    assert dep["containers"][0]["resources"]["requests"]["ephemeral-storage"] == "120Gi"
    assert dep["volumes"][0] == {"name": "model-cache", "emptyDir": {"sizeLimit": "120Gi"}}


def test_hf_source_uses_the_token_secret_never_a_literal():
    cfg = load_with("staging", lambda v: v["modelServices"][0].update(
        model={"id": "org/m", "source": "hf://org/m", "parametersBillion": 8},
        hfTokenSecret={"name": "hf", "key": "token"}))
    result = build(cfg)
    dep = _deployments(result, "chat")["chat-baseline"]["spec"]["template"]["spec"]
    token = {"name": "HF_TOKEN", "valueFrom": {"secretKeyRef": {"name": "hf", "key": "token"}}}
    sync = next(c for c in dep["initContainers"] if c["name"] == "model-cache")
    assert token in sync["env"] and token in dep["containers"][0]["env"]
    # No S3 source: no reader role for the service (the batch worker keeps its own).
    assert [r.name for r in by_type(result, "aws:iam/rolePolicy:RolePolicy")
            if r.name.endswith("cache-reader")] == ["llm-staging-embed-cache-reader"]


def test_hpa_mode_replaces_the_scaled_object():
    cfg = load_with("staging", lambda v: v["modelServices"][0]["scaling"].update(mode="hpa"))
    result = build(cfg)
    assert not by_type(result, "kubernetes:keda.sh/v1alpha1:ScaledObject")
    (hpa,) = [r.inputs for r in by_type(result, "kubernetes:autoscaling/v2:HorizontalPodAutoscaler")]
    assert hpa["spec"]["scaleTargetRef"]["name"] == "chat-burst"
    assert hpa["spec"]["metrics"][0]["pods"]["metric"]["name"] == "vllm_num_requests_waiting"


def test_canary_behind_the_same_service():
    cfg = load_with("prod", lambda v: v["modelServices"][0].update(
        canary={"image": "vllm/vllm-openai:v0.34.0", "replicas": 1, "maxSharePercent": 34}))
    deps = _deployments(build(cfg), "chat-8b")
    canary = deps["chat-8b-canary"]
    assert canary["spec"]["replicas"] == 1
    assert canary["spec"]["template"]["metadata"]["labels"]["track"] == "canary"
    # The canary's image goes through prod's pull-through cache like the pinned one.
    assert canary["spec"]["template"]["spec"]["containers"][0]["image"] == "123456789012.dkr.ecr.us-east-1.amazonaws.com/mirror/docker-hub/vllm/vllm-openai:v0.34.0"
    assert "on-demand" in json.dumps(canary["spec"]["template"]["spec"]["affinity"])


def test_pre_pull_daemonset():
    cfg = load_plain_prod(lambda v: v["modelServices"][0].update(prePull=True))
    (ds,) = [r.inputs for r in by_type(build(cfg), "kubernetes:apps/v1:DaemonSet")]
    spec = ds["spec"]["template"]["spec"]
    assert spec["nodeSelector"] == {"platform.gpu/tier": "l40s"}
    assert [c["name"] for c in spec["initContainers"]] == ["pull-vllm", "model-cache-owner", "model-cache"]


def test_long_names_fit_the_scaled_object_limit():
    long = "a" * 30
    cfg = load_with("dev", lambda v: v["modelServices"][0].update(name=long))
    names = vllm.names(cfg.model_services[0])
    assert len(names["scaled_object"]) <= 54 and len("keda-hpa-" + names["scaled_object"]) <= 63
