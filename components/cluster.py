"""GpuCluster: VPC (or an existing one), EKS with encrypted secrets and audit logs, the
on-demand system node group the controllers run on, and the cluster add-ons everything
else relies on: Pod Identity agent, CoreDNS, the EBS CSI driver and its gp3 StorageClass."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws
import pulumi_eks as eks
import pulumi_kubernetes as k8s

from components import versions
from components.config import ClusterConfig, EgressConfig, NetworkConfig
from components.egress import EndpointArgs, node_pull_through_policy, pull_through_cache_rules, vpc_endpoints
from components.naming import child
from components.render import addons as render_addons
from components.render.iam import CLUSTER_ADMIN_POLICY, NODE_POLICIES, assume_role, pod_identity_trust
from components.render.network import subnet_plan

CONTROL_PLANE_LOGS = ["api", "audit", "authenticator"]
# Controllers tolerate this taint; GPU and user workloads stay off the system nodes.
SYSTEM_TAINT = {"key": "CriticalAddonsOnly", "value": "true", "effect": "NoSchedule"}
SYSTEM_POOL_LABEL = {"platform.gpu/pool": "system"}
# Spot launches need this role once per account; EC2 creates it only on a console request.
# Root device of the AL2023 EKS AMIs.
SYSTEM_ROOT_DEVICE = "/dev/xvda"
SPOT_SERVICE_LINKED_ROLE = "AWSServiceRoleForEC2Spot"
# Tag on the spot role when a stack created it: that stack keeps declaring it on later runs
# (when the lookup finds it), instead of deleting what it created.
SPOT_ROLE_OWNER_TAG = "gpu-platform/created-by"


@dataclass(frozen=True)
class NetworkArgs:
    cluster_name: str
    """The EKS cluster the VPC serves: names and tags its subnets for load balancers and Karpenter."""
    network: NetworkConfig
    """CIDR, zones, NAT gateways, or an existing VPC to use instead."""
    tags: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    """AWS tags on every taggable resource."""
    egress: EgressConfig = field(default_factory=EgressConfig)
    """VPC endpoints (a created VPC only) and the ECR pull-through cache rules."""
    region: str = ""
    """The VPC's region: names the endpoint services (looked up from the provider when empty)."""


@dataclass(frozen=True)
class GpuClusterArgs:
    cluster: ClusterConfig
    """Name, version, endpoint access, admins, network and system node group."""
    region: str
    """The cluster's AWS region: controllers are told it (with IMDS hop limit 1 they cannot ask)."""
    tags: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    """AWS tags on every taggable resource."""


@dataclass(frozen=True)
class ClusterRef:
    """A cluster as the components that run inside it need it, passed as objects.

    ``GpuCluster.ref()`` gives ours; a consumer with an EKS cluster of its own builds one from
    that cluster's outputs and can then use ``Karpenter`` (or ``Monitoring``) without the rest.
    """

    name: str
    """The cluster name, known before the cluster exists: it names queues, roles and chart values."""
    ready_name: pulumi.Output[str]
    """The same name as an output of the cluster: resources that take it wait for the cluster."""
    private_subnet_ids: pulumi.Input[Sequence[str]]
    """Subnets for nodes."""
    node_security_group_id: pulumi.Input[str]
    """The security group every node joins."""
    system_nodes: tuple[pulumi.Resource, ...] = ()
    """What controllers pinned to the system nodes wait for (the node group)."""
    pod_identity: tuple[pulumi.Resource, ...] = ()
    """What pods using EKS Pod Identity wait for (the agent add-on): a pod created before it
    never gets credentials."""


class Network(pulumi.ComponentResource):
    """A VPC across N zones: private subnets for nodes, public ones for load balancers and NAT."""

    vpc_id: pulumi.Output[str]
    """The VPC's ID."""
    private_subnet_ids: pulumi.Output[list[str]]
    """Private subnets, one per zone (nodes, pods, internal load balancers)."""
    public_subnet_ids: pulumi.Output[list[str]]
    """Public subnets, one per zone (internet-facing load balancers, NAT gateways)."""
    pull_through_rules: list[pulumi.Resource]
    """The ECR pull-through cache rules: nodes that pull through them wait for them."""

    def __init__(self, name: str, args: NetworkArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("gpu-platform:cluster:Network", name, None, opts)
        net = args.network
        if net.existing is not None:
            self.vpc_id = pulumi.Output.from_input(net.existing.vpc_id)
            self.private_subnet_ids = pulumi.Output.from_input(list(net.existing.private_subnet_ids))
            self.public_subnet_ids = pulumi.Output.from_input(list(net.existing.public_subnet_ids))
        else:
            self._create(name, args)
        self.pull_through_rules = pull_through_cache_rules(self, name, args.egress.pull_through_cache)
        self.register_outputs({"vpc_id": self.vpc_id, "private_subnet_ids": self.private_subnet_ids,
                               "public_subnet_ids": self.public_subnet_ids, "pull_through_rules": self.pull_through_rules})

    def _create(self, name: str, args: NetworkArgs) -> None:
        net, cluster = args.network, args.cluster_name
        tags = {**args.tags, f"kubernetes.io/cluster/{cluster}": "shared"}
        p = pulumi.ResourceOptions(parent=self)
        zones = aws.get_availability_zones(state="available").names[: net.availability_zones]
        vpc = aws.ec2.Vpc(child(name, "vpc"), cidr_block=net.cidr, enable_dns_hostnames=True,
                          enable_dns_support=True, tags={**tags, "Name": cluster}, opts=p)
        igw = aws.ec2.InternetGateway(child(name, "igw"), vpc_id=vpc.id, tags={**tags, "Name": cluster}, opts=p)
        public_rt = aws.ec2.RouteTable(
            child(name, "public"), vpc_id=vpc.id,
            routes=[aws.ec2.RouteTableRouteArgs(cidr_block="0.0.0.0/0", gateway_id=igw.id)],
            tags={**tags, "Name": f"{cluster}-public"}, opts=p,
        )
        public: list[aws.ec2.Subnet] = []
        private: list[aws.ec2.Subnet] = []
        nats: list[aws.ec2.NatGateway] = []
        for plan in subnet_plan(net.cidr, len(zones)):
            zone = zones[plan.zone_index]
            role = "public" if plan.public else "private"
            subnet_tags = {**tags, "Name": f"{cluster}-{role}-{zone}"}
            if plan.public:
                subnet_tags["kubernetes.io/role/elb"] = "1"
            else:
                subnet_tags["kubernetes.io/role/internal-elb"] = "1"
                subnet_tags["karpenter.sh/discovery"] = cluster
            subnet = aws.ec2.Subnet(child(name, f"{role}-{zone}"), vpc_id=vpc.id, cidr_block=plan.cidr,
                                    availability_zone=zone, map_public_ip_on_launch=False, tags=subnet_tags, opts=p)
            (public if plan.public else private).append(subnet)
        for i, subnet in enumerate(public):
            aws.ec2.RouteTableAssociation(child(name, f"public-{zones[i]}"), subnet_id=subnet.id,
                                          route_table_id=public_rt.id, opts=p)
        nat_count = 1 if net.nat_gateways == "single" else len(zones)
        for i in range(nat_count):
            eip = aws.ec2.Eip(child(name, f"nat-{zones[i]}"), domain="vpc", tags={**tags, "Name": f"{cluster}-nat-{zones[i]}"}, opts=p)
            nats.append(aws.ec2.NatGateway(child(name, f"nat-{zones[i]}"), allocation_id=eip.id, subnet_id=public[i].id,
                                           tags={**tags, "Name": f"{cluster}-{zones[i]}"},
                                           opts=pulumi.ResourceOptions(parent=self, depends_on=[igw])))
        private_rts: list[aws.ec2.RouteTable] = []
        for i, subnet in enumerate(private):
            nat = nats[i if nat_count > 1 else 0]
            rt = aws.ec2.RouteTable(
                child(name, f"private-{zones[i]}"), vpc_id=vpc.id,
                routes=[aws.ec2.RouteTableRouteArgs(cidr_block="0.0.0.0/0", nat_gateway_id=nat.id)],
                tags={**tags, "Name": f"{cluster}-private-{zones[i]}"}, opts=p,
            )
            aws.ec2.RouteTableAssociation(child(name, f"private-{zones[i]}"), subnet_id=subnet.id,
                                          route_table_id=rt.id, opts=p)
            private_rts.append(rt)
        vpc_endpoints(self, name, args.egress, EndpointArgs(
            vpc_id=vpc.id, vpc_cidr=net.cidr, region=args.region or aws.get_region().region, zones=len(zones),
            private_subnet_ids=[s.id for s in private], private_route_table_ids=[rt.id for rt in private_rts],
            tags=tags))
        self.vpc_id = vpc.id
        self.private_subnet_ids = pulumi.Output.all(*[s.id for s in private])
        self.public_subnet_ids = pulumi.Output.all(*[s.id for s in public])


class GpuCluster(pulumi.ComponentResource):
    """EKS (API authentication, KMS-encrypted secrets, audit logs) with a system node group."""

    cluster_name: pulumi.Output[str]
    """The EKS cluster name."""
    kubeconfig: pulumi.Output[str]
    """Kubeconfig (JSON) for the cluster; a secret."""
    oidc_issuer: pulumi.Output[str]
    """OIDC issuer of the cluster, without https://."""
    cluster_security_group_id: pulumi.Output[str]
    """The EKS-created cluster security group: system and Karpenter nodes share it."""
    private_subnet_ids: pulumi.Output[list[str]]
    """Subnets for nodes."""
    system_node_role_name: pulumi.Output[str]
    """IAM role of the system node group."""
    provider: k8s.Provider
    """Kubernetes provider for everything deployed into the cluster."""
    system_node_group: eks.ManagedNodeGroup
    """The controllers' node group; charts that must land there depend on it."""
    storage_class: k8s.storage.v1.StorageClass
    """The encrypted gp3 StorageClass (EBS CSI driver): whatever claims a volume names it and waits for it."""

    def __init__(self, name: str, args: GpuClusterArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("gpu-platform:cluster:GpuCluster", name, None, opts)
        cfg: ClusterConfig = args.cluster
        p = pulumi.ResourceOptions(parent=self)
        network = Network(child(name, "network"), NetworkArgs(cfg.name, cfg.network, args.tags, cfg.egress,
                                                                        args.region), opts=p)
        # Created before the cluster: EKS would otherwise create it on first write, with no retention.
        log_group = aws.cloudwatch.LogGroup(
            child(name, "control-plane-logs"), name=render_addons.control_plane_log_group(cfg.name),
            retention_in_days=cfg.log_retention_days, tags=dict(args.tags), opts=p)
        cluster = self._eks(name, args, network, log_group)
        self._pod_identity_agent = eks.Addon(child(name, "pod-identity-agent"), cluster=cluster,
                                             addon_name="eks-pod-identity-agent", opts=p)
        if cfg.spot_service_linked_role == "auto":
            self._spot_service_linked_role(name, args)
        node_role = aws.iam.Role(child(name, "system-node"), assume_role_policy=json.dumps(assume_role("ec2.amazonaws.com")),
                                 description=f"{cfg.name} system node group", tags=dict(args.tags), opts=p)
        for arn in NODE_POLICIES:
            aws.iam.RolePolicyAttachment(child(name, f"system-node-{arn.rsplit('/', 1)[1]}"), role=node_role.name,
                                         policy_arn=arn, opts=p)
        pull_policy = node_pull_through_policy(self, child(name, "system-node"), node_role, cfg.egress.pull_through_cache,
                                               args.region)
        # The controllers' images come through the cache: the nodes wait for the rules and the right to use them.
        self.system_node_group = self._system_nodes(name, args, cluster, node_role, network,
                                                    [*network.pull_through_rules, *([pull_policy] if pull_policy else [])])

        # The name is known up front; deriving it from a cluster output carries the
        # dependency, so whatever uses the name waits for the cluster to exist.
        self.cluster_name = cluster.kubeconfig_json.apply(lambda _: cfg.name)
        self.kubeconfig = pulumi.Output.secret(cluster.kubeconfig_json)
        self.oidc_issuer = cluster.oidc_issuer
        self.cluster_security_group_id = cluster.cluster_security_group_id
        self.private_subnet_ids = network.private_subnet_ids
        self.system_node_role_name = node_role.name
        self.provider = k8s.Provider(child(name, "k8s"), kubeconfig=self.kubeconfig, opts=p)
        ebs_csi = self._system_addons(name, args)
        sc = render_addons.gp3_storage_class()
        self.storage_class = k8s.storage.v1.StorageClass(
            child(name, "gp3"), metadata=sc["metadata"], provisioner=sc["provisioner"],
            volume_binding_mode=sc["volumeBindingMode"], allow_volume_expansion=sc["allowVolumeExpansion"],
            reclaim_policy=sc["reclaimPolicy"], parameters=sc["parameters"],
            # Consumers wait for the class; the class waits for the driver that provisions it.
            opts=pulumi.ResourceOptions(parent=self, provider=self.provider, depends_on=[ebs_csi]))
        self._name = cfg.name
        self.register_outputs({
            "cluster_name": self.cluster_name,
            "kubeconfig": self.kubeconfig,
            "oidc_issuer": self.oidc_issuer,
            "cluster_security_group_id": self.cluster_security_group_id,
            "private_subnet_ids": self.private_subnet_ids,
            "system_node_role_name": self.system_node_role_name,
            "provider": self.provider,
            "system_node_group": self.system_node_group,
            "storage_class": self.storage_class,
        })

    def _system_addons(self, name: str, args: GpuClusterArgs) -> aws.eks.Addon:
        """CoreDNS and the EBS CSI driver as EKS add-ons on the system nodes; returns the driver."""
        cfg, tags = args.cluster, dict(args.tags)
        on_nodes = pulumi.ResourceOptions(parent=self, depends_on=[self.system_node_group])
        # Takes over the copy EKS bootstraps (OVERWRITE), pinned to the system nodes.
        aws.eks.Addon(
            child(name, "coredns"), cluster_name=self.cluster_name, addon_name="coredns",
            addon_version=versions.COREDNS_ADDON[cfg.kubernetes_version],
            configuration_values=json.dumps(render_addons.coredns_configuration(SYSTEM_PLACEMENT)),
            resolve_conflicts_on_create="OVERWRITE", resolve_conflicts_on_update="OVERWRITE", tags=tags, opts=on_nodes)
        role = aws.iam.Role(child(name, "ebs-csi"), assume_role_policy=json.dumps(pod_identity_trust()),
                            description=f"{cfg.name} EBS CSI controller", tags=tags,
                            opts=pulumi.ResourceOptions(parent=self))
        policy = aws.iam.RolePolicyAttachment(child(name, "ebs-csi"), role=role.name,
                                              policy_arn=render_addons.EBS_CSI_POLICY,
                                              opts=pulumi.ResourceOptions(parent=self))
        ebs_config = render_addons.ebs_csi_configuration(SYSTEM_PLACEMENT)
        # The controller would look its region up in IMDS, which the system nodes' hop limit 1
        # closes to pods: the chart's controller.region sets AWS_REGION instead.
        ebs_config["controller"]["region"] = args.region
        return aws.eks.Addon(
            child(name, "ebs-csi-driver"), cluster_name=self.cluster_name, addon_name="aws-ebs-csi-driver",
            addon_version=versions.EBS_CSI_DRIVER_ADDON,
            configuration_values=json.dumps(ebs_config),
            # The controller's identity: created with the add-on, so its pods start with credentials.
            pod_identity_associations=[aws.eks.AddonPodIdentityAssociationArgs(
                role_arn=role.arn, service_account=render_addons.EBS_CSI_SERVICE_ACCOUNT)],
            resolve_conflicts_on_create="OVERWRITE", resolve_conflicts_on_update="OVERWRITE", tags=tags,
            opts=pulumi.ResourceOptions(parent=self,
                                        depends_on=[self.system_node_group, self._pod_identity_agent, policy]))

    def _spot_service_linked_role(self, name: str, args: GpuClusterArgs) -> None:
        """Preflight: create AWSServiceRoleForEC2Spot only where the account has none.

        Creating it where it exists fails; without it spot launches fail. The lookup runs on
        every preview and update: a role this stack created carries its tag, so the stack
        keeps declaring it rather than deleting it on the next run.
        """
        owner = args.cluster.name
        try:
            found = aws.iam.get_role(name=SPOT_SERVICE_LINKED_ROLE)
        except Exception as err:  # the invoke reports a missing role as an error
            if "NoSuchEntity" not in str(err):
                raise
            found = None
        if found is not None and (found.tags or {}).get(SPOT_ROLE_OWNER_TAG) != owner:
            return
        # Retained on delete: other stacks of the account may launch spot instances with it.
        aws.iam.ServiceLinkedRole(child(name, "spot"), aws_service_name="spot.amazonaws.com",
                                  tags={**args.tags, SPOT_ROLE_OWNER_TAG: owner},
                                  opts=pulumi.ResourceOptions(parent=self, retain_on_delete=True))

    def _eks(self, name: str, args: GpuClusterArgs, network: Network,
             log_group: aws.cloudwatch.LogGroup) -> eks.Cluster:
        """The control plane: API authentication, KMS-encrypted secrets, audit logs."""
        cfg, p = args.cluster, pulumi.ResourceOptions(parent=self)
        key = aws.kms.Key(child(name, "secrets"), description=f"EKS secrets envelope encryption for {cfg.name}",
                          enable_key_rotation=True, deletion_window_in_days=30, tags=dict(args.tags), opts=p)
        endpoint = cfg.endpoint
        admins = {
            f"admin-{i}": eks.AccessEntryArgs(
                principal_arn=arn,
                access_policies={"cluster-admin": eks.AccessPolicyAssociationArgs(
                    policy_arn=CLUSTER_ADMIN_POLICY,
                    access_scope=aws.eks.AccessPolicyAssociationAccessScopeArgs(type="cluster"),
                )},
            )
            for i, arn in enumerate(cfg.admin_role_arns)
        }
        cluster = eks.Cluster(
            child(name, "eks"),
            name=cfg.name,
            version=cfg.kubernetes_version,
            vpc_id=network.vpc_id,
            private_subnet_ids=network.private_subnet_ids,
            public_subnet_ids=network.public_subnet_ids,
            # API mode: access entries, and the deploying identity gets cluster admin
            # (pulumi-eks sends bootstrapClusterCreatorAdminPermissions with it).
            authentication_mode=eks.AuthenticationMode.API,
            access_entries=admins or None,
            encryption_config_key_arn=key.arn,
            enabled_cluster_log_types=CONTROL_PLANE_LOGS,
            # CoreDNS is our aws.eks.Addon (GpuCluster._system_addons), pinned to the system nodes.
            coredns_addon_options=eks.CoreDnsAddonOptionsArgs(enabled=False),
            endpoint_private_access=endpoint.private_access,
            endpoint_public_access=endpoint.public_access,
            public_access_cidrs=list(endpoint.public_access_cidrs) or None,
            skip_default_node_group=True,
            # The VPC CNI enforces NetworkPolicies only with its policy agent on; without it
            # EKS accepts NetworkPolicy objects and silently ignores them.
            vpc_cni_options=eks.VpcCniOptionsArgs(enable_network_policy=True),
            # One security group for all nodes: the EKS-created cluster SG, which managed
            # node groups use already; Karpenter nodes join it by ID.
            skip_default_security_groups=True,
            create_oidc_provider=False,
            tags=dict(args.tags),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[log_group]),
        )
        return cluster

    def _system_nodes(self, name: str, args: GpuClusterArgs, cluster: eks.Cluster, node_role: aws.iam.Role,
                      network: Network, pulls: list[pulumi.Resource]) -> eks.ManagedNodeGroup:
        """The on-demand managed node group the controllers run on, tainted CriticalAddonsOnly."""
        sys_nodes, p = args.cluster.system_nodes, pulumi.ResourceOptions(parent=self)
        # Hardened like the GPU nodes (Karpenter's EC2NodeClass): IMDSv2 only, hop limit 1 so pods
        # cannot borrow the node role, and an encrypted root volume. The EKS-created default
        # template leaves hop limit and encryption to EKS's defaults.
        template = aws.ec2.LaunchTemplate(
            child(name, "system"), description=f"{args.cluster.name} system nodes",
            metadata_options=aws.ec2.LaunchTemplateMetadataOptionsArgs(
                http_endpoint="enabled", http_tokens="required", http_put_response_hop_limit=1),
            block_device_mappings=[aws.ec2.LaunchTemplateBlockDeviceMappingArgs(
                device_name=SYSTEM_ROOT_DEVICE, ebs=aws.ec2.LaunchTemplateBlockDeviceMappingEbsArgs(
                    volume_size=sys_nodes.disk_size_gib, volume_type="gp3", encrypted="true",
                    delete_on_termination="true"))],
            tags=dict(args.tags), opts=p)
        return eks.ManagedNodeGroup(
            child(name, "system"),
            cluster=cluster,
            node_role=node_role,
            ami_type="AL2023_x86_64_STANDARD",
            capacity_type="ON_DEMAND",
            instance_types=list(sys_nodes.instance_types),
            # Always the private subnets: the default would include the public ones.
            subnet_ids=network.private_subnet_ids,
            scaling_config=aws.eks.NodeGroupScalingConfigArgs(
                min_size=sys_nodes.min_size, desired_size=sys_nodes.desired_size, max_size=sys_nodes.max_size),
            # disk_size conflicts with a launch template: the template's block device sets it.
            launch_template=aws.eks.NodeGroupLaunchTemplateArgs(
                id=template.id, version=template.latest_version.apply(str)),
            labels=SYSTEM_POOL_LABEL,
            taints=[aws.eks.NodeGroupTaintArgs(key=SYSTEM_TAINT["key"], value=SYSTEM_TAINT["value"], effect="NO_SCHEDULE")],
            tags=dict(args.tags),
            opts=pulumi.ResourceOptions(parent=self, depends_on=pulls),
        )

    def ref(self) -> ClusterRef:
        """This cluster as the components inside it take it."""
        return ClusterRef(name=self._name, ready_name=self.cluster_name, private_subnet_ids=self.private_subnet_ids,
                          node_security_group_id=self.cluster_security_group_id,
                          system_nodes=(self.system_node_group,), pod_identity=(self._pod_identity_agent,))


SYSTEM_TOLERATIONS = [{"key": SYSTEM_TAINT["key"], "operator": "Exists", "effect": "NoSchedule"}]
SYSTEM_NODE_SELECTOR = dict(SYSTEM_POOL_LABEL)
# Where controllers run: on the system node group, tolerating its taint.
SYSTEM_PLACEMENT = {"nodeSelector": SYSTEM_NODE_SELECTOR, "tolerations": SYSTEM_TOLERATIONS}
