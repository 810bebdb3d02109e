"""How a run was launched, checked once, and what is fixed or refused.

- Several processes on a machine without GPUs (``accelerate launch --multi_gpu`` or
  ``configs/cpu_ddp.yaml``, ``torchrun``): accelerate sets them up as one data-parallel job
  (gloo) only when told to use the CPU. ``GRPOConfig`` sets ``use_cpu=True`` itself there,
  with a message; a launch that still ends up as N separate single-process runs (which would
  each train on their own and write to the same folder) is refused with the fix.
- A DeepSpeed launch config's ``mixed_precision`` and the ``GRPOConfig``'s ``bf16`` /
  ``fp16`` must agree (DeepSpeed trains in one precision): on a mismatch (e.g.
  ``grpo_defaults()``, which turns bf16 on only on GPUs that support it, under the shipped
  ``configs/zero2.yaml`` / ``zero3.yaml`` with ``mixed_precision: bf16``), the launch
  config's precision is used, with a message.
- ``eval_steps`` given without ``eval_strategy`` turns periodic evaluation on
  (``eval_strategy="steps"``) when the environment has an eval set, and says that nothing
  will be evaluated when it has none.
- ``num_batches_ahead > 0`` with in-process generation cannot overlap generation and
  training (the training model generates): said once; rounds are generated in turn.
"""

from __future__ import annotations

import logging
import os
from typing import Any

logger = logging.getLogger(__name__)


def _world_size() -> int:
    for name in ("WORLD_SIZE", "PMI_SIZE", "OMPI_COMM_WORLD_SIZE"):
        value = os.environ.get(name)
        if value and value.isdigit():
            return int(value)
    return 1


def _has_parallel_devices() -> bool:
    """Whether accelerate can run one process per device here (GPUs, XPUs, NPUs, ...)."""
    import torch

    if torch.cuda.is_available():
        return True
    xpu = getattr(torch, "xpu", None)
    if xpu is not None and xpu.is_available():
        return True
    import accelerate.utils as utils

    for name in ("is_npu_available", "is_mlu_available", "is_musa_available", "is_sdaa_available"):
        check = getattr(utils, name, None)
        if check is not None and check():
            return True
    return False


def configure(config: Any, explicit: frozenset[str]) -> None:
    """Fix what the launch makes wrong in ``config`` (a ``GRPOConfig``, before
    ``TrainingArguments.__post_init__``); ``explicit``: the fields the caller gave."""
    world = _world_size()
    if world > 1 and not config.use_cpu and not _has_parallel_devices():
        config.use_cpu = True
        logger.warning(
            "%d processes were launched on a machine without GPUs: setting use_cpu=True so that "
            "they train as one data-parallel job (gloo) instead of %d separate runs. Pass "
            "use_cpu=True yourself to silence this.", world, world)
    launcher = os.environ.get("ACCELERATE_MIXED_PRECISION", "").lower()
    deepspeed = os.environ.get("ACCELERATE_USE_DEEPSPEED", "false").lower() == "true"
    if deepspeed and launcher in ("no", "fp16", "bf16"):
        ours = "bf16" if config.bf16 else "fp16" if config.fp16 else "no"
        if ours != launcher:
            given = {"bf16", "fp16"} & explicit
            source = f"{', '.join(sorted(given))} as given" if given else "the default"
            logger.warning(
                "The DeepSpeed launch config asks for mixed_precision=%s, this GRPOConfig for %r (%s; "
                "grpo_defaults() picks bf16 only on GPUs that support it): training in %s, the launch "
                "config's, as DeepSpeed needs one precision. Set bf16/fp16 to match the launch "
                "config to silence this.", launcher, ours, source, launcher)
            config.bf16, config.fp16 = launcher == "bf16", launcher == "fp16"


def check_processes(accelerator: Any) -> None:
    """Refuse a launch of several processes that each run alone."""
    world = _world_size()
    if world > 1 and accelerator.num_processes == 1:
        raise RuntimeError(
            f"{world} processes were launched, but accelerate set each up as a single-process run: "
            f"they would train {world} separate models into the same output_dir. On a machine without "
            "GPUs pass use_cpu=True to GRPOConfig (or launch with configs/cpu_ddp.yaml); elsewhere "
            "check that every process sees its device.")


def resolve_periodic_evaluation(config: Any, has_eval_set: bool) -> None:
    """``eval_steps`` on its own turns periodic evaluation on (module docstring)."""
    from transformers.trainer_utils import IntervalStrategy

    explicit = getattr(config, "_explicit_fields", frozenset())
    if "eval_steps" not in explicit or "eval_strategy" in explicit or config.eval_steps is None:
        return
    if config.eval_strategy != IntervalStrategy.NO:
        return
    if has_eval_set:
        config.eval_strategy = IntervalStrategy.STEPS
        logger.info("eval_steps=%s: evaluating on the eval set every %s steps.", config.eval_steps,
                    config.eval_steps)
    else:
        logger.warning("eval_steps=%s is set, but the environment has no eval dataset, so nothing is "
                       "evaluated during training: give the environment eval_dataset=... (or the "
                       "trainer eval_dataset=...).", config.eval_steps)


def note_batches_ahead(config: Any, in_process: bool) -> None:
    """Say once that ``num_batches_ahead`` cannot overlap with in-process generation."""
    if not in_process or config.num_batches_ahead <= 0:
        return
    explicit = "num_batches_ahead" in getattr(config, "_explicit_fields", frozenset())
    log = logger.warning if explicit else logger.info
    log("num_batches_ahead=%d has no effect with in-process generation: the training model "
        "generates, so it cannot generate the next round while it trains; each round is generated "
        "when it is needed. Generate with vf-vllm (generation_backend='vllm') to overlap, or set "
        "num_batches_ahead=0.", config.num_batches_ahead)
