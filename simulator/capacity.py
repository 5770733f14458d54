"""Nodes: the warm start, Karpenter's provisioning and consolidation, spot interruptions, cost.

One instance type (the cheapest that fits a replica, as ``capacity.md`` picks). Burst pods
go to spot first with an on-demand fallback, the baseline to on-demand only, within each
NodePool's GPU limit; replicas spread over nodes as their Deployment's topology spread says
(``simulator.packing``); Karpenter's batching is "pending for 1 s". Spot nodes are reclaimed
at a Poisson rate with the two-minute notice. Empty nodes go within the NodePool's disruption
budgets (``simulator.disruption``); every live node is billed whole.
"""

from __future__ import annotations

from platform_facts.aws import SPOT_NOTICE_SECONDS
from simulator import packing
from simulator.pods import delete_pod, terminate
from simulator.state import DT, Capacity, Event, Node, Pod, ReplaySetup, ReplayState, Role

KARPENTER_BATCH_SECONDS = 1.0


def preferred_capacity(setup: ReplaySetup, role: Role) -> list[Capacity]:
    """The NodePools a pod of this role may land on, in Karpenter's order (weights)."""
    return ["on-demand"] if role == "baseline" or not setup.profile.burst_on_spot else ["spot", "on-demand"]


def schedule_interruption(setup: ReplaySetup, state: ReplayState, node: Node, t: float) -> None:
    """A spot node's reclaim time: exponential with the configured rate per node-hour."""
    if node.capacity == "spot" and setup.spot_interruptions_per_hour > 0:
        node.interrupt_at = t + state.rng.expovariate(setup.spot_interruptions_per_hour / 3600)


def warm_start(setup: ReplaySetup, state: ReplayState) -> None:
    """The service ran before the trace began: its initial replicas are Ready on warm nodes
    (the baseline on on-demand, burst on its preferred capacity), placed as Karpenter
    provisioned them (``packing.provisioner_node``; the warm nodes predate the limits' check)."""
    roles: tuple[tuple[Role, int], ...] = (("baseline", setup.profile.baseline), ("burst", state.burst_desired))
    for role, count in roles:
        for _ in range(count):
            order = preferred_capacity(setup, role)[:1]
            node = packing.provisioner_node(state.nodes, order, role, setup.spread[role], relax=False)
            if node is None:
                node = Node(state.new_id(), order[0], 0.0, 0.0, setup.replicas_per_node,
                            image_cached=True, model_cached=True, compiled_at=0.0)
                schedule_interruption(setup, state, node, 0.0)
                state.nodes.append(node)
            pod = Pod(state.new_id(), role, 0.0, node=node, start_at=0.0, ready=True)
            node.pods.append(pod)
            state.pods.append(pod)
    refill_buffer(setup, state, 0.0, warm=True)


def refill_buffer(setup: ReplaySetup, state: ReplayState, t: float, *, warm: bool = False) -> None:
    """The tier's capacity buffer (issue 18): ``buffer_nodes`` whole on-demand nodes held by
    placeholders, Ready with the image pre-pulled (the DaemonSet), billed while idle. A pod that
    takes one turns it into an ordinary node; Karpenter launches a replacement, which is a buffer
    again after node launch and the image pull (within the on-demand limit, which counts it)."""
    held = sum(1 for nd in state.nodes if nd.live and nd.buffer)
    for _ in range(setup.buffer_nodes - held):
        gpus = setup.instance.gpus
        if gpus * (len(state.live_nodes("on-demand")) + 1) > setup.gpu_limits["on-demand"]:
            return
        ready = t if warm else t + setup.cold.node_ready + setup.cold.image_pull
        node = Node(state.new_id(), "on-demand", t, ready, setup.replicas_per_node, image_cached=True, buffer=True)
        state.nodes.append(node)
        if not warm:
            state.events.append(Event(t, "node-launch", 0.0))


def place_pending_pods(setup: ReplaySetup, state: ReplayState, t: float) -> None:
    """A pod pending for the batching delay binds: the kube-scheduler's pick among Ready nodes
    with room, else Karpenter nominates it to an in-flight node or a new one (``simulator.packing``)."""
    pending = [q for q in state.pods if q.node is None and not q.gone and not q.terminating]
    for pod in pending:
        if setup.instant:
            bind_on_oracle_node(setup, state, pod, t)
            continue
        if t - pod.created < KARPENTER_BATCH_SECONDS:
            continue
        order = preferred_capacity(setup, pod.role)
        node = packing.scheduler_node(state.nodes, order, pod.role, setup.spread[pod.role], t) or provision(setup, state, pod, t)
        if node is not None:  # else at the NodePool limits with no room anywhere: stays Pending
            bind(setup, pod, node, t)


def provision(setup: ReplaySetup, state: ReplayState, pod: Pod, t: float) -> Node | None:
    """Karpenter for a pod no Ready node takes: its preferences (the spot affinity of a burst
    pod, the spread) are taken as required first, so each capacity type in turn offers an
    in-flight node the spread allows or a new node within the pool's limit; only when none
    does is the spread relaxed (a ``ScheduleAnyway`` spread; the affinity already was)."""
    order, spread = preferred_capacity(setup, pod.role), setup.spread[pod.role]
    for capacity in order:
        node = (packing.provisioner_node(state.nodes, [capacity], pod.role, spread, relax=False)
                or launch_node(setup, state, [capacity], t))
        if node is not None:
            return node
    return packing.provisioner_node(state.nodes, order, pod.role, spread, relax=True)


def bind_on_oracle_node(setup: ReplaySetup, state: ReplayState, pod: Pod, t: float) -> None:
    """The oracle's capacity, Ready, cached and serving at once: for the unconstrained oracle a
    node share per replica (billed as that share), for the constrained oracle a free slot on a
    whole node (packed, no spread, billed whole); on-demand up to the baseline, then as the
    service's burst capacity."""
    on_demand = sum(len(nd.pods) for nd in state.live_nodes("on-demand"))
    capacity: Capacity = "on-demand" if on_demand < setup.profile.baseline or not setup.profile.burst_on_spot else "spot"
    node = next((nd for nd in state.live_nodes(capacity) if len(nd.pods) < nd.slots), None) if setup.whole_nodes else None
    if node is None:  # whole nodes (the constrained oracle) or a node share per replica
        slots, share = (setup.replicas_per_node, 1.0) if setup.whole_nodes else (1, 1 / setup.replicas_per_node)
        node = Node(state.new_id(), capacity, t, t, slots, image_cached=True, model_cached=True, share=share)
        state.nodes.append(node)
    node.pods.append(pod)
    node.empty_since = None
    pod.node, pod.start_at, pod.ready = node, t, True


def launch_node(setup: ReplaySetup, state: ReplayState, order: list[Capacity], t: float) -> Node | None:
    """A new node in the first NodePool whose GPU limit has room for it; None at every limit."""
    gpus = setup.instance.gpus
    for capacity in order:
        used = gpus * len(state.live_nodes(capacity))
        if used + gpus <= setup.gpu_limits[capacity]:
            node = Node(state.new_id(), capacity, t, t + setup.cold.node_ready, setup.replicas_per_node)
            schedule_interruption(setup, state, node, t)
            state.nodes.append(node)
            state.events.append(Event(t, "node-launch", 0.0))
            return node
    return None


def bind(setup: ReplaySetup, pod: Pod, node: Node, t: float) -> None:
    """The pod starts once the node is Ready, after the image pull and model download the node
    has not cached yet; pods bound after it wait for the same pull, so the node counts as cached.
    With a persisted compile cache, a pod bound once an earlier pod is Ready on the node skips
    most of the compile (``ColdStart.compile_saving``; zero without the lever)."""
    node.pods.append(pod)
    node.empty_since = None
    node.buffer = False
    pod.node = node
    begin = max(t, node.ready_at)
    compiled = node.compiled_at <= begin  # an earlier pod of the model finished compiling here
    pod.start_at = begin + setup.cold.pod_seconds(image_cached=node.image_cached, model_cached=node.model_cached,
                                                  compiled=compiled)
    node.image_cached = node.model_cached = True
    node.compiled_at = min(node.compiled_at, pod.start_at)


def spot_interruptions(setup: ReplaySetup, state: ReplayState, t: float) -> None:
    """The two-minute notice terminates the node's pods (their drain cut to the reclaim time);
    at the reclaim the node disappears and requests still on it are retried."""
    for node in state.nodes:
        if not node.live:
            continue
        if not node.noticed and t >= node.interrupt_at - SPOT_NOTICE_SECONDS:
            node.noticed = True
            state.events.append(Event(t, "spot-notice", 0.0))
            for pod in node.pods:
                if not pod.terminating:
                    terminate(setup, pod, t)
                    pod.drain_deadline = min(pod.drain_deadline, node.interrupt_at)
        if t >= node.interrupt_at:
            for pod in list(node.pods):
                delete_pod(state, pod)
            node.gone_at = t
            state.events.append(Event(t, "spot-reclaim", 0.0))


def consolidate(setup: ReplaySetup, state: ReplayState, t: float) -> None:
    """Karpenter removes a Ready node that has been empty for its NodePool's ``consolidateAfter``,
    as far as the pool's disruption budgets allow ``Empty`` disruptions now (``simulator.disruption``;
    the oracle's nodes go as soon as they are empty)."""
    for node in state.nodes:
        if node.live and not node.pods and not node.buffer and t >= node.ready_at and node.empty_since is None:
            node.empty_since = t
    if setup.buffer_nodes:
        refill_buffer(setup, state, t)
    if setup.instant:
        for node in state.nodes:
            if node.live and not node.pods:
                node.gone_at = t
        return
    for capacity, pool in setup.disruption.items():
        nodes = state.live_nodes(capacity)
        allowed = pool.allowed("Empty", t, total=len(nodes), deleting=0,
                               not_ready=sum(1 for nd in nodes if t < nd.ready_at))
        for node in nodes:
            if allowed <= 0:
                break
            if not node.pods and node.empty_since is not None and t - node.empty_since >= pool.consolidate_after_seconds:
                node.gone_at = t
                allowed -= 1
                state.events.append(Event(t, "node-removed", 0.0))


def accrue_cost(setup: ReplaySetup, state: ReplayState) -> None:
    """One tick of every live node, billed whole (a node is paid for however many replicas it
    holds), per second at its capacity type's price; only the unconstrained oracle's nodes are
    shares of one."""
    for node in state.nodes:
        if node.live:
            state.node_seconds[node.capacity] += DT * node.share
            state.cost += setup.hourly_price(node.capacity) * node.share * DT / 3600
