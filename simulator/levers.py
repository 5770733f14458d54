"""The cold-start levers (issue 18) as the simulator replays them, and the lever report.

Each lever reaches the replay through one phase of ``platform_facts.coldstart.expected_phases``
(``simulator.perf.cold_start``: the service's loader and compile cache, the cluster's
FastImagePull) or through the capacity it keeps up (the tier's capacity buffer: whole
on-demand nodes, ``ReplaySetup.buffer_nodes``). ``variants`` turns each lever on alone on the
stack as configured; ``report`` replays the stack profile under each.
"""

from __future__ import annotations

from components.config import ModelServiceConfig, StackConfig
from components.config.levers import CapacityBufferConfig, buffer_chunk, buffer_node_gpus
from components.render.capacity import placement
from platform_facts import catalog
from simulator.perf import cold_start, replica_perf
from simulator.trace import Trace


def fast_image_pull(config: StackConfig) -> bool:
    return config.cluster.fast_image_pull.enabled


def buffer_nodes(config: StackConfig, service: ModelServiceConfig, instance: catalog.InstanceType,
                 override: int | None = None) -> int:
    """Whole nodes of the replayed instance type the service's tier's buffer keeps Ready (0 without
    one); ``override``: the tuner's choice instead (``Profile.buffer_nodes``)."""
    if override is not None:
        return override
    tier = config.tier(service.tier)
    chunk = buffer_chunk(config, tier)
    if chunk is None:
        return 0
    return -(-buffer_node_gpus(chunk, instance.gpus) // instance.gpus)


LEVERS = ("runaiNvme", "runaiS3", "fastsafetensors", "compileCache", "fastImagePull", "capacityBuffer", "predictive")
LOADER_LEVERS = ("runaiNvme", "runaiS3", "fastsafetensors")


def replica_rps(service: ModelServiceConfig, config: StackConfig, trace: Trace) -> float:
    """Requests per second one replica sustains on this trace's mix at a full batch: each request
    costs its prompt's prefill (``delta`` per token) and its share of the decode steps (the
    predictive lever's ``requestsPerSecondPerReplica`` when the stack sets none)."""
    perf = replica_perf(service, placement(service, config.tier(service.tier)).instance)
    n = max(len(trace.requests), 1)
    prompt = sum(r.prompt_tokens for r in trace.requests) / n
    out = sum(r.output_tokens for r in trace.requests) / n
    ctx = prompt + out / 2
    batch = min(perf.max_num_seqs, max(1, int(perf.kv_tokens // max(ctx, 1.0))))
    seconds = prompt * perf.delta + out * perf.step_seconds(batch, batch * ctx) / batch
    return round(1.0 / seconds, 2)


def with_lever(config: StackConfig, service: ModelServiceConfig, lever: str, rps: float) -> tuple[StackConfig, ModelServiceConfig]:
    """The stack with one more lever on for this service (its tier, its cluster); validated as a stack file would be
    not required here: the variants are what-ifs of the simulator (a runaiS3 loader without an s3:// source, say)."""
    return _toggle(config, service, lever, True, rps)


def without_lever(config: StackConfig, service: ModelServiceConfig, lever: str) -> tuple[StackConfig, ModelServiceConfig]:
    """The stack with one of its levers off for this service (the loader back to the default)."""
    return _toggle(config, service, lever, False, None)


def _toggle(config: StackConfig, service: ModelServiceConfig, lever: str, on: bool,
            rps: float | None) -> tuple[StackConfig, ModelServiceConfig]:
    svc, cfg = service, config
    if lever in LOADER_LEVERS:
        svc = svc.model_copy(update={"loader": svc.loader.model_copy(update={"format": lever if on else "default"})})
    elif lever == "compileCache":
        svc = svc.model_copy(update={"compile_cache": svc.compile_cache.model_copy(update={"persist": on})})
    elif lever == "predictive":
        update: dict[str, object] = {"enabled": on}
        if on:
            update["requests_per_second_per_replica"] = svc.predictive_scaling.requests_per_second_per_replica or rps
        svc = svc.model_copy(update={"predictive_scaling": svc.predictive_scaling.model_copy(update=update)})
    elif lever == "fastImagePull":
        cluster = cfg.cluster.model_copy(update={"fast_image_pull": cfg.cluster.fast_image_pull.model_copy(update={"enabled": on})})
        cfg = cfg.model_copy(update={"cluster": cluster})
    elif lever == "capacityBuffer":
        tiers = tuple(t.model_copy(update={"capacity_buffer": (t.capacity_buffer or CapacityBufferConfig(service=svc.name))
                                                              if on else None})
                      if t.name == svc.tier else t for t in cfg.gpu_tiers)
        cfg = cfg.model_copy(update={"gpu_tiers": tiers})
    else:
        raise ValueError(f"lever {lever!r}: one of {', '.join(LEVERS)}")
    services = tuple(svc if s.name == svc.name else s for s in cfg.model_services)
    return cfg.model_copy(update={"model_services": services}), svc


def burst_cold_start(config: StackConfig, service: ModelServiceConfig) -> dict[str, float]:
    """The modelled cold start of a burst replica: on a buffer node when the tier keeps one, else on a new node."""
    instance = placement(service, config.tier(service.tier)).instance
    cold = cold_start(service, instance, fast_image_pull=fast_image_pull(config))
    buffered = buffer_nodes(config, service, instance) > 0
    return {"node_ready": 0.0 if buffered else round(cold.node_ready, 1),
            "image_pull": 0.0 if buffered else round(cold.image_pull, 1),
            "download": round(cold.download, 1), "load": round(cold.load, 1),
            "seconds": round(cold.burst_seconds(buffered=buffered), 1), "buffered": buffered}


def has_lever(config: StackConfig, service: ModelServiceConfig, lever: str) -> bool:
    """Whether the stack already has this lever on for the service."""
    if lever in LOADER_LEVERS:
        return service.loader.format == lever
    return {"compileCache": service.compile_cache.persist, "predictive": service.predictive_scaling.enabled,
            "fastImagePull": fast_image_pull(config),
            "capacityBuffer": config.tier(service.tier).capacity_buffer is not None}[lever]
