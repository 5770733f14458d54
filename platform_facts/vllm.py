"""vLLM's Prometheus metric names (vLLM >= 0.12, the V1 engine's names)."""

from __future__ import annotations

NUM_REQUESTS_WAITING = "vllm:num_requests_waiting"
NUM_REQUESTS_RUNNING = "vllm:num_requests_running"
KV_CACHE_USAGE = "vllm:kv_cache_usage_perc"
TTFT_BUCKET = "vllm:time_to_first_token_seconds_bucket"
# Finished requests (a counter, labelled by finished_reason): the predictive trigger's rate.
# vLLM exports no arrival counter; at steady state completions track arrivals one request later.
REQUEST_SUCCESS = "vllm:request_success_total"

# Names that vLLM removed, with their replacements: a query on a removed name returns
# nothing, so a trigger on it never scales.
REMOVED_METRICS = {
    "vllm:gpu_cache_usage_perc": KV_CACHE_USAGE,
    "vllm:time_per_output_token_seconds": "vllm:inter_token_latency_seconds",
}

# vLLM 0.12+ metric families (vllm/v1/metrics/loggers.py); histograms are queried as
# _bucket/_sum/_count, counters with _total.
METRIC_FAMILIES = {
    "vllm:num_requests_running", "vllm:num_requests_waiting", "vllm:kv_cache_usage_perc",
    "vllm:prompt_tokens_total", "vllm:generation_tokens_total", "vllm:num_preemptions_total",
    "vllm:request_success_total", "vllm:prefix_cache_queries_total", "vllm:prefix_cache_hits_total",
    "vllm:time_to_first_token_seconds", "vllm:e2e_request_latency_seconds", "vllm:inter_token_latency_seconds",
    "vllm:request_queue_time_seconds", "vllm:request_prefill_time_seconds", "vllm:request_decode_time_seconds",
}

# Short aliases of `vllm serve` flags (vllm/engine/arg_utils.py, ParallelConfig group).
SHORT_FLAGS = {
    "-tp": "--tensor-parallel-size",
    "-pp": "--pipeline-parallel-size",
    "-dp": "--data-parallel-size",
    "-dpl": "--data-parallel-size-local",
}


def batch_defaults(gpu_gib: float, gpu: str) -> tuple[int, int]:
    """vLLM V1's ``(max_num_seqs, max_num_batched_tokens)`` for the OpenAI server: 1024 / 8192 on
    GPUs of >= 70 GiB that are not A100, else 256 / 2048 (vllm/engine/arg_utils.py
    ``get_batch_defaults``; autoscaling facts 4.1). Chunked prefill is on; decode goes first."""
    return (1024, 8192) if gpu_gib >= 70 and gpu != "a100" else (256, 2048)
