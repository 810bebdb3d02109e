"""Faster linear layers for decoding on CPU.

A decoding step multiplies a few rows (one per sequence) by every weight of the model, so it
is bound by how fast the weights stream from memory. For such skinny products
``F.linear`` (one BLAS GEMM call) reads fp32 weights at about 4 GB/s on two cores, while the
same product written as a batched ``bmm`` over ``chunks`` row blocks of the weight
(``W.view(chunks, N / chunks, K) @ x.T``) runs the blocks in parallel and reads at 10 to 14
GB/s, close to what summing the weights takes. Same weights, same precision; results agree
to float rounding. ``python benchmarks/bench_inference.py --skip-vllm`` measures the engine
with and without it (``engine_vs_plain``).

:func:`fast_decode_linears` switches every plain ``nn.Linear`` of a model to that product for
inputs of at most ``max_rows`` rows computed without gradients, and back on exit. PEFT LoRA
layers (plain LoRA, not merged, adapters enabled, eval mode) get a lean forward too: the base
product plus ``addmm(y, x @ A.T, B.T, alpha=scaling)`` per active adapter, the same sum
PEFT's own forward computes, without its per-call bookkeeping (which costs more than the two
small products on a 135M model). Anything else (training, prefill of long prompts, GPU
tensors, other dtypes, sharded or quantized weights, DoRA and other LoRA variants, mixed
adapter batches) goes through the layer's own forward unchanged.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator
from typing import Any

MAX_ROWS = 64  # rows (tokens) up to which the blocked product wins on CPU, measured at 1-128
_MIN_BLOCK_ROWS = 64  # smallest row block worth a bmm batch entry
CACHED_MODEL_BYTES = 64 * 2**20  # linear weights below this total mostly stay in cache
LARGE_WEIGHT_BYTES = 4 * 2**20  # a weight this large streams from memory in any model


def chunks_for(out_features: int, threads: int) -> int:
    """Row blocks for a weight with ``out_features`` rows: twice the threads, or the largest
    divisor of ``out_features`` below that which keeps blocks of >= 64 rows; 0 when no split
    is worth it (small weights such as LoRA's go through ``F.linear``)."""
    for chunks in range(max(2, 2 * threads), 1, -1):
        if out_features % chunks == 0 and out_features // chunks >= _MIN_BLOCK_ROWS:
            return chunks
    return 0


def blocked_linear(x: Any, weight: Any, bias: Any, chunks: int) -> Any:
    """``F.linear(x, weight, bias)`` as a bmm over ``chunks`` row blocks of ``weight``."""
    import torch

    out_features, in_features = weight.shape
    rows = x.reshape(-1, in_features)
    columns = rows.T.unsqueeze(0).expand(chunks, in_features, rows.shape[0])
    y = torch.bmm(weight.view(chunks, out_features // chunks, in_features), columns)
    y = y.reshape(out_features, rows.shape[0]).T.contiguous()  # row-major, as F.linear's
    if bias is not None:
        y += bias
    return y.reshape(*x.shape[:-1], out_features)


def _blockable(x: Any, weight: Any, chunks: int, max_rows: int) -> bool:
    import torch

    return (x.numel() <= max_rows * x.shape[-1]
            and x.dtype == weight.dtype == torch.float32 and x.device.type == "cpu"
            and not torch.is_grad_enabled() and type(weight) in (torch.Tensor, torch.nn.Parameter)
            and weight.is_contiguous() and weight.shape[0] % chunks == 0)


def _forward(module: Any, chunks: int, max_rows: int, x: Any) -> Any:
    import torch.nn.functional as F

    if _blockable(x, module.weight, chunks, max_rows):
        return blocked_linear(x, module.weight, module.bias, chunks)
    return F.linear(x, module.weight, module.bias)


def _lora_forward(module: Any, plan: tuple[Any, ...], max_rows: int, x: Any, *args: Any,
                  **kwargs: Any) -> Any:
    """PEFT's LoRA ``Linear.forward`` for the plain case, computed with fewer calls.

    ``plan`` (made when the layer was switched) holds the base weight and bias, the blocks,
    the active-adapter setting it was made for, and each active adapter's (A, B, scaling).
    Anything PEFT can change between calls (adapters disabled or merged, another adapter
    set, train mode) is checked here and sends the call to PEFT's own forward."""
    import torch

    weight, bias, chunks, active, adapters = plan
    if (args or kwargs or module.training or module._disable_adapters or module.merged_adapters
            or module._active_adapter is not active or not _blockable(x, weight, chunks, max_rows)):
        return type(module).forward(module, x, *args, **kwargs)
    rows = x.reshape(-1, x.shape[-1])
    y = blocked_linear(rows, weight, bias, chunks)
    for a, b, scaling in adapters:
        y = torch.addmm(y, rows @ a.T, b.T, alpha=scaling)
    return y.reshape(*x.shape[:-1], y.shape[-1])


def _lora_plan(module: Any, chunks: int) -> tuple[Any, ...] | None:
    """What :func:`_lora_forward` needs, or None when the layer is not plain fp32 LoRA."""
    import torch

    adapters = []
    for name in module.active_adapters:
        if name not in module.lora_A:
            continue
        a, b = module.lora_A[name].weight, module.lora_B[name].weight
        if name in module.lora_variant or a.dtype != torch.float32 or b.dtype != torch.float32:
            return None
        adapters.append((a, b, module.scaling[name]))
    base = module.base_layer
    return base.weight, base.bias, chunks, module._active_adapter, tuple(adapters)


def _lora_linear_type() -> Any:
    try:
        from peft.tuners.lora.layer import Linear
    except ImportError:  # PEFT is optional
        return None
    return Linear


@contextlib.contextmanager
def fast_decode_linears(model: Any, max_rows: int = MAX_ROWS,
                        min_model_bytes: int = CACHED_MODEL_BYTES) -> Iterator[int]:
    """Route the plain ``nn.Linear`` layers of ``model`` (on CPU, fp32) through
    :func:`blocked_linear` for small gradient-free inputs while inside; yields how many
    layers were switched (0 when none applies). Reentrant: an inner use changes nothing.

    The blocked product wins when weights come from memory; when they sit in cache one GEMM
    call is faster (a 256 x 256 weight: 38 us against 71 us). So a model whose linear
    weights total under ``min_model_bytes`` (default 64 MiB) has only its weights of at
    least 4 MiB (an output layer) switched."""
    import torch

    candidates = []
    threads = torch.get_num_threads()
    lora_linear = _lora_linear_type()
    for module in model.modules():
        kind = type(module)
        if kind is lora_linear and not getattr(module, "fan_in_fan_out", False):
            forward, layer = _lora_forward, module.base_layer
        elif kind is torch.nn.Linear:
            forward, layer = _forward, module
        else:
            continue
        weight = getattr(layer, "weight", None)
        if ("forward" in vars(module) or not isinstance(weight, torch.Tensor)
                or weight.device.type != "cpu" or weight.dtype != torch.float32
                or weight.dim() != 2):
            continue
        chunks = chunks_for(weight.shape[0], threads)
        if not chunks:
            continue
        plan = chunks if forward is _forward else _lora_plan(module, chunks)
        if plan is not None:
            candidates.append((module, forward, plan, weight))
    sizes = {w.data_ptr(): w.numel() * w.element_size() for *_, w in candidates}
    in_memory = sum(sizes.values()) >= min_model_bytes
    switched = []
    for module, forward, plan, weight in candidates:
        if in_memory or weight.numel() * weight.element_size() >= LARGE_WEIGHT_BYTES:
            module.forward = functools.partial(forward, module, plan, max_rows)
            switched.append(module)
    try:
        yield len(switched)
    finally:
        for module in switched:
            vars(module).pop("forward", None)


__all__ = ["CACHED_MODEL_BYTES", "LARGE_WEIGHT_BYTES", "MAX_ROWS", "blocked_linear", "chunks_for",
           "fast_decode_linears"]
