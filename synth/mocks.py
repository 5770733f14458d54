"""What the recording engine answers: realistic outputs per resource type and the invokes
the program makes (ARNs, IDs, queue URLs, a kubeconfig, the EKS cluster security group...),
each derived from a hash of the resource's type and name, so the same program gives the same
outputs on every run."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Mapping
from typing import Any

from pulumi.runtime import mocks as pmocks

ACCOUNT_ID = "123456789012"
# IAM roles the recorded account already has: ``aws.iam.get_role`` finds these (name -> tags)
# and reports any other as NoSuchEntity, as IAM does. By default the account has launched spot
# before, so its spot service-linked role exists (untagged); a test passes other roles.
EXISTING_ROLES: Mapping[str, Mapping[str, str]] = {"AWSServiceRoleForEC2Spot": {}}


def _digest(*parts: str, n: int = 17) -> str:
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:n]



class RecordingMocks(pmocks.Mocks):
    """Outputs per resource type; answers StackReferences and the invokes we use."""

    def __init__(self, region: str, stack_references: Mapping[str, Mapping[str, Any]] | None = None,
                 existing_roles: Mapping[str, Mapping[str, str]] | None = None):
        self.region = region
        self.existing_roles = dict(EXISTING_ROLES if existing_roles is None else existing_roles)
        # Kept as given: a lazy mapping resolves references only when the program asks.
        self.stack_references = stack_references if stack_references is not None else {}

    # -- invokes ------------------------------------------------------------------------
    def call(self, args: pmocks.MockCallArgs):
        token = args.token
        if token == "aws:index/getCallerIdentity:getCallerIdentity":
            return {
                "accountId": ACCOUNT_ID,
                "arn": f"arn:aws:iam::{ACCOUNT_ID}:role/deployer",
                "userId": "AROAEXAMPLEDEPLOYER",
                "id": ACCOUNT_ID,
            }
        if token == "aws:index/getPartition:getPartition":
            return {"partition": "aws", "dnsSuffix": "amazonaws.com", "id": "aws"}
        if token == "aws:index/getRegion:getRegion":
            return {"name": self.region, "region": self.region, "id": self.region}
        if token == "aws:iam/getSessionContext:getSessionContext":
            return {"issuerArn": f"arn:aws:iam::{ACCOUNT_ID}:role/deployer", "arn": args.args.get("arn")}
        if token == "aws:index/getAvailabilityZones:getAvailabilityZones":
            names = [f"{self.region}{z}" for z in "abcdef"]
            return {"names": names, "zoneIds": [f"use1-az{i}" for i in range(1, 7)], "id": self.region}
        if token == "aws:secretsmanager/getSecret:getSecret":
            # Secrets Manager appends six random characters to a secret's ARN; derived here.
            name = str(args.args.get("name"))
            arn = f"arn:aws:secretsmanager:{self.region}:{ACCOUNT_ID}:secret:{name}-{_digest('secret', name, n=6)}"
            return {"id": arn, "arn": arn, "name": name, "description": "", "kmsKeyId": "", "policy": "", "tags": {}}
        if token == "aws:iam/getRole:getRole":
            return self._get_role(str(args.args.get("name")))
        raise NotImplementedError(f"the recording engine has no answer for invoke {token}")

    def _get_role(self, name: str):
        if name not in self.existing_roles:
            # A failed invoke: the SDK raises with this reason, as it does for IAM's 404.
            return {}, [("name", f"NoSuchEntity: The role with name {name} cannot be found.")]
        path = "/aws-service-role/spot.amazonaws.com/" if name.startswith("AWSServiceRole") else "/"
        return {
            "id": name, "name": name, "path": path, "arn": f"arn:aws:iam::{ACCOUNT_ID}:role{path}{name}",
            "uniqueId": f"AROA{_digest('role', name).upper()}", "tags": dict(self.existing_roles[name]),
            "assumeRolePolicy": "{}", "createDate": "2024-01-01T00:00:00Z", "description": "",
            "maxSessionDuration": 3600, "permissionsBoundary": "", "roleLastUseds": [],
        }

    # -- resources ----------------------------------------------------------------------
    def new_resource(self, args: pmocks.MockResourceArgs):
        typ, name, inputs = args.typ, args.name, dict(args.inputs)
        h = _digest(typ, name)
        if typ == "pulumi:pulumi:StackReference":
            ref = inputs.get("name") or name
            if ref not in self.stack_references:
                raise KeyError(f"no recorded outputs for stack reference {ref!r}")
            return ref, {**inputs, "name": ref, "outputs": self.stack_references[ref], "secretOutputNames": []}
        if typ.startswith("pulumi:providers:"):
            return f"{name}-{h[:8]}", inputs
        if typ.startswith("kubernetes:"):
            return self._kubernetes(typ, name, inputs, h)
        if typ.startswith("eks:"):
            return self._eks(typ, name, inputs, h)
        if typ.startswith("aws:"):
            return self._aws(typ, name, inputs, h)
        if typ == "random:index/randomPassword:RandomPassword":
            # Deterministic, derived from the name: a stand-in value, never a real secret.
            return f"{name}-{h[:8]}", {**inputs, "result": _digest("password", name, n=int(inputs.get("length", 32)))}
        return f"{name}-{h[:8]}", inputs

    def _arn(self, service: str, resource: str, regional: bool = True) -> str:
        region = self.region if regional else ""
        return f"arn:aws:{service}:{region}:{ACCOUNT_ID}:{resource}"

    def _aws(self, typ: str, name: str, inputs: dict, h: str):
        auto = inputs.get("name") or f"{name}-{h[:7]}"
        module = typ.split(":")[1].split("/")[0]
        kind = typ.rsplit(":", 1)[1]
        prefix = {
            "Vpc": "vpc", "Subnet": "subnet", "SecurityGroup": "sg", "InternetGateway": "igw",
            "NatGateway": "nat", "Eip": "eipalloc", "RouteTable": "rtb", "LaunchTemplate": "lt",
        }.get(kind)
        if prefix:
            rid = f"{prefix}-{h}"
            return rid, {**inputs, "id": rid, "arn": self._arn("ec2", f"{kind.lower()}/{rid}"), "name": auto}
        if module == "iam":
            path_kind = {"Role": "role", "Policy": "policy", "InstanceProfile": "instance-profile"}.get(kind)
            if path_kind:
                arn = self._arn("iam", f"{path_kind}/{auto}", regional=False)
                return auto, {**inputs, "name": auto, "arn": arn, "uniqueId": f"AROA{h.upper()[:17]}"}
            return f"{name}-{h[:8]}", inputs
        if typ == "aws:kms/key:Key":
            key_id = str(uuid.UUID(hashlib.sha256(name.encode()).hexdigest()[:32]))
            return key_id, {**inputs, "keyId": key_id, "arn": self._arn("kms", f"key/{key_id}")}
        if typ == "aws:sqs/queue:Queue":
            url = f"https://sqs.{self.region}.amazonaws.com/{ACCOUNT_ID}/{auto}"
            return url, {**inputs, "name": auto, "url": url, "arn": self._arn("sqs", auto)}
        if typ == "aws:cloudwatch/eventRule:EventRule":
            return auto, {**inputs, "name": auto, "arn": self._arn("events", f"rule/{auto}")}
        if typ == "aws:eks/podIdentityAssociation:PodIdentityAssociation":
            aid = f"a-{h}"
            arn = self._arn("eks", f"podidentityassociation/{inputs.get('clusterName')}/{aid}")
            return aid, {**inputs, "associationId": aid, "associationArn": arn}
        if typ == "aws:eks/addon:Addon":
            return f"{inputs.get('clusterName')}:{inputs.get('addonName')}", {
                **inputs, "arn": self._arn("eks", f"addon/{inputs.get('clusterName')}/{inputs.get('addonName')}/{h[:8]}"),
            }
        service = module.replace("cloudwatch", "events")
        return f"{name}-{h[:8]}", {**inputs, "arn": self._arn(service, f"{kind.lower()}/{auto}")}

    def _eks(self, typ: str, name: str, inputs: dict, h: str):
        if typ == "eks:index:Cluster":
            cluster = inputs.get("name") or f"{name}-eksCluster-{h[:7]}"
            endpoint = f"https://{h.upper()[:32]}.gr7.{self.region}.eks.amazonaws.com"
            oidc = f"oidc.eks.{self.region}.amazonaws.com/id/{h.upper()[:32]}"
            kubeconfig = {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": cluster, "cluster": {"server": endpoint,
                                                           "certificate-authority-data": "LS0tLS1CRUdJTi0tLS0t"}}],
                "contexts": [{"name": "aws", "context": {"cluster": cluster, "user": "aws"}}],
                "current-context": "aws",
                "users": [{"name": "aws", "user": {"exec": {
                    "apiVersion": "client.authentication.k8s.io/v1beta1", "command": "aws",
                    "args": ["eks", "get-token", "--cluster-name", cluster, "--output", "json"],
                }}}],
            }
            return cluster, {
                **inputs,
                "kubeconfig": kubeconfig,
                "kubeconfigJson": json.dumps(kubeconfig, sort_keys=True),
                "clusterSecurityGroupId": f"sg-{h}",
                "nodeSecurityGroupId": f"sg-{_digest(h, 'node')}",
                "oidcIssuer": oidc,
                "oidcProviderUrl": f"https://{oidc}",
                "oidcProviderArn": self._arn("iam", f"oidc-provider/{oidc}", regional=False),
            }
        return f"{name}-{h[:8]}", inputs

    def _kubernetes(self, typ: str, name: str, inputs: dict, h: str):
        if typ == "kubernetes:helm.sh/v3:Release":
            rel = inputs.get("name") or f"{name}-{h[:8]}"
            ns = inputs.get("namespace") or "default"
            status = {"name": rel, "namespace": ns, "chart": inputs.get("chart"), "version": inputs.get("version"),
                      "status": "deployed", "revision": 1}
            return f"{ns}/{rel}", {**inputs, "name": rel, "namespace": ns, "status": status}
        meta = dict(inputs.get("metadata") or {})
        meta.setdefault("name", f"{name}-{h[:8]}")
        return f"{meta.get('namespace', '')}/{meta['name']}".lstrip("/"), {**inputs, "metadata": meta}
