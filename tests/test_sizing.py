"""Sizing arithmetic on hand-worked figures (catalog facts: l40s 45776 MiB, h100 81920 MiB)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from components import sizing
from platform_facts import catalog


@dataclass(frozen=True)
class Shape:
    gpus_per_replica: int
    cpu_per_replica: int
    memory_gib_per_replica: int


def test_gpu_memory():
    assert sizing.gpu_gib("p5.48xlarge") == 80.0
    assert sizing.gpu_gib("g6e.xlarge") == pytest.approx(44.703, abs=1e-3)
    assert sizing.gpu_gib("p4d.24xlarge") == 40.0  # the instance type decides, not the GPU family
    # 130 GiB of weights over 4 GPUs; 80 GiB x 0.9 less 2 GiB kept for the KV cache.
    assert sizing.weights_gib_per_gpu(130.0, 4) == 32.5
    assert sizing.usable_gib_per_gpu(80.0, 0.9) == pytest.approx(70.0)
    assert sizing.usable_gib_per_gpu(80.0, 0.9, 1.5) == pytest.approx(70.5)


def test_kv_cache_left_after_the_weights():
    # (80 x 0.9 - 1.5) x 4 - 130 = 152 GiB over the replica's four GPUs.
    assert sizing.kv_cache_gib(80.0, 0.9, 4, 130.0, 1.5) == pytest.approx(152.0)
    # A model that does not fit leaves a negative figure; the caller decides what that means.
    assert sizing.kv_cache_gib(80.0, 0.9, 1, 130.0, 1.5) < 0


@pytest.mark.parametrize("weights,usable,max_gpus,expected", [
    (130.0, 70.0, 8, 2),    # 65 GiB per GPU at TP 2
    (130.0, 30.0, 8, 8),    # 32.5 at TP 4 is still too much
    (130.0, 30.0, 4, None),  # the node has no 8 GPUs
    (15.0, 70.0, 8, 1),
])
def test_smallest_tensor_parallel(weights, usable, max_gpus, expected):
    assert sizing.smallest_tensor_parallel(weights, usable, max_gpus) == expected


def test_replica_requests():
    assert sizing.replica_vcpu(1) == 4 and sizing.replica_vcpu(4) == 16
    # 8B bf16 ~ 14.9 GiB: ceil(14.9 x 1.2) + 4 = 22 GiB; a tiny model still gets 8 GiB per GPU.
    assert sizing.replica_memory_gib(catalog.weights_gib(8, "bfloat16"), 1) == 22
    assert sizing.replica_memory_gib(1.0, 1) == 8
    assert sizing.replica_memory_gib(1.0, 4) == 32


def test_node_reservations():
    g6e = catalog.INSTANCE_TYPES["g6e.2xlarge"]  # 8 vCPU, 64 GiB
    assert sizing.allocatable_vcpu(g6e) == 7.5
    assert sizing.allocatable_memory_gib(g6e) == pytest.approx(56.6)


def test_replica_fits_and_packs():
    g6 = catalog.INSTANCE_TYPES["g6.xlarge"]  # 1 GPU, 4 vCPU, 16 GiB: 3.5 vCPU allocatable
    assert not sizing.replica_fits(Shape(1, 4, 8), g6)
    assert sizing.replica_fits(Shape(1, 3, 8), g6)
    assert not sizing.replica_fits(Shape(2, 1, 1), g6)
    p5 = catalog.INSTANCE_TYPES["p5.48xlarge"]  # 8 GPUs, 192 vCPU, 2048 GiB
    assert sizing.replicas_per_node(Shape(4, 16, 160), p5) == 2
    assert sizing.replicas_per_node(Shape(1, 4, 22), p5) == 8
    # Memory binds before GPUs: 2048 x 0.9 - 1 = 1842.2 GiB holds 3 replicas of 600 GiB.
    assert sizing.replicas_per_node(Shape(1, 4, 600), p5) == 3


def test_replicas_per_node_is_at_least_one_whenever_a_replica_fits():
    shapes = [Shape(g, c, m) for g in (1, 2, 4, 8) for c in (2, 4, 16, 64) for m in (8, 22, 160, 600)]
    for it in catalog.INSTANCE_TYPES.values():
        for shape in shapes:
            assert sizing.replica_fits(shape, it) == (sizing.replicas_per_node(shape, it) >= 1), (it.name, shape)
