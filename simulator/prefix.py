"""The prefix-cache model: which prompt blocks a replica (or the router's view of it) holds.

vLLM's automatic prefix caching is on by default in the V1 engine (the pinned image is
``vllm/vllm-openai:v0.33.0``, V1 only; docs.vllm.ai ``features/automatic_prefix_caching``): a
prompt whose leading KV blocks are still in the replica's cache skips their prefill. The cache
is the KV memory itself, freed blocks stay reusable until evicted least recently used first.

The model here, per replica, in the trace's blocks (Mooncake ``hash_ids``: 512-token blocks):

- an LRU set of block hashes bounded by the replica's KV cache (``ReplicaPerf.kv_tokens`` / 512);
- a request's cached prefix is the longest run of its leading ``hash_ids`` in the set; its
  prefill skips those tokens, but at least one token is computed (vLLM always recomputes the
  last prompt token to get the first output token's logits);
- after prefill the request's blocks are inserted (most recently used).

Simplifications: running sequences' blocks can be evicted from the model (vLLM pins them while
they run); a request without ``hash_ids`` (the Azure traces) never hits.

``RouterIndex`` is the llm-d EPP's approximate view (``approx-prefix-cache-producer``,
llm-d/llm-d-router ``pkg/epp/framework/plugins/requestcontrol/dataproducer/approximateprefix``
@ebab687): per endpoint an LRU of block hashes, filled when the EPP *picks* the endpoint
(``PreRequest``), not when the replica computes; matched greedily from the first block
(``matchLongestPrefix``: stop at the first block no endpoint holds).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Sequence

BLOCK_TOKENS = 512  # Mooncake's hash_ids: one hash per 512 prompt tokens (FAST'25 trace README)
# The EPP's LRU capacity per endpoint is vLLM's ``num_gpu_blocks`` (autoTune, from the
# cache_config_info metric) counted in its own 64-token blocks (blockSizeTokens is floored to
# 64, vLLM's blocks are 16 tokens): it tracks 64/16 = 4x the replica's KV tokens
# (approximateprefix/plugin.go ``makeserver``, ``minBlockSizeTokens``@ebab687).
EPP_INDEX_TOKENS_PER_KV_TOKEN = 64 / 16


class LruBlocks:
    """An LRU set of block hashes holding at most ``capacity`` blocks."""

    __slots__ = ("blocks", "capacity")

    def __init__(self, capacity: int):
        self.capacity = max(0, capacity)
        self.blocks: OrderedDict[int, None] = OrderedDict()

    def __contains__(self, block: int) -> bool:
        return block in self.blocks

    def __len__(self) -> int:
        return len(self.blocks)

    def leading(self, hashes: Sequence[int]) -> int:
        """How many of ``hashes``, from the first, are held without a gap."""
        n = 0
        for h in hashes:
            if h not in self.blocks:
                break
            n += 1
        return n

    def insert(self, hashes: Iterable[int]) -> None:
        """Mark the blocks most recently used, evicting the least recently used over capacity."""
        blocks = self.blocks
        for h in hashes:
            if h in blocks:
                blocks.move_to_end(h)
            else:
                blocks[h] = None
        while len(blocks) > self.capacity:
            blocks.popitem(last=False)


def replica_cache(kv_tokens: int) -> LruBlocks:
    """A replica's prefix cache: its whole KV cache, in the trace's 512-token blocks."""
    return LruBlocks(kv_tokens // BLOCK_TOKENS)


def router_index(kv_tokens: int) -> LruBlocks:
    """The EPP's approximate index of one endpoint (see ``EPP_INDEX_TOKENS_PER_KV_TOKEN``)."""
    return LruBlocks(int(kv_tokens * EPP_INDEX_TOKENS_PER_KV_TOKEN) // BLOCK_TOKENS)


def cached_tokens(blocks: int, prompt_tokens: int) -> int:
    """The prompt tokens a hit of ``blocks`` leading blocks saves: at least one token is computed."""
    return max(0, min(blocks * BLOCK_TOKENS, prompt_tokens - 1))


def match_longest_prefix(hashes: Sequence[int], indexes: Sequence[LruBlocks]) -> list[int]:
    """Per endpoint, the matched blocks as the EPP counts them: walk the request's blocks from the
    first, count one for every endpoint holding the block, stop at the first block none holds
    (``matchLongestPrefix`` in approximateprefix/plugin.go@ebab687)."""
    counts = [0] * len(indexes)
    for h in hashes:
        found = False
        for i, index in enumerate(indexes):
            if h in index:
                counts[i] += 1
                found = True
        if not found:
            break
    return counts
