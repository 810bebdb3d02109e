"""Whether bfloat16 is fast on this CPU.

CPUs without bf16 instructions (AVX512-BF16 or AMX on x86, the BF16 extension on ARM)
emulate bf16 matmuls: on a 2-core AVX2 machine a forward + backward of a SmolLM2-sized
linear layer (1024 x 576 -> 1536) took 5.6x as long in bf16 as in float32
(``benchmarks/bench_trainer.py --precision bf16`` compares whole steps). On such CPUs
float32 is the faster choice, at twice the weight memory.
"""

from __future__ import annotations

import functools
import logging
import platform
from typing import Any

logger = logging.getLogger(__name__)

_BF16_FLAGS = {"avx512_bf16", "amx_bf16", "bf16"}  # x86 flags; "bf16" in ARM's Features


@functools.cache
def cpu_has_native_bf16(cpuinfo: str = "/proc/cpuinfo") -> bool:
    """Whether this CPU has bf16 instructions (read from ``cpuinfo``; ``False`` where that
    cannot be read)."""
    try:
        with open(cpuinfo, encoding="utf-8") as handle:
            for line in handle:
                key, _, value = line.partition(":")
                if key.strip().lower() in ("flags", "features"):
                    return bool(_BF16_FLAGS.intersection(value.split()))
    except OSError:
        pass
    return False


def warn_if_emulated_bf16(model: Any) -> bool:
    """Log a warning when ``model`` computes in bf16 on a CPU without bf16 instructions;
    returns whether it warned."""
    import torch

    parameter = next(iter(model.parameters()), None)
    if parameter is None or parameter.dtype != torch.bfloat16 or parameter.device.type != "cpu":
        return False
    if cpu_has_native_bf16():
        return False
    logger.warning(
        "The model is in bfloat16 on a CPU without bf16 instructions (%s): torch emulates "
        "bf16 matmuls here, several times slower than float32 (5.6x for a forward + backward "
        "of a SmolLM2-sized layer on such a machine). Load it in float32 (vf-train: "
        "[model] dtype = \"float32\"; get_model_and_tokenizer(..., torch_dtype=\"float32\")) "
        "unless memory forces bf16.", platform.processor() or platform.machine())
    return True
