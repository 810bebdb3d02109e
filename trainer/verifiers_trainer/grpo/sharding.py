"""Whole weights of a sharded policy, for the two things in a GRPO round that need them.

Under DeepSpeed ZeRO-3 and FSDP every process holds a shard of each parameter, and a layer's
parameters are gathered, by all processes together, just before its forward. Two parts of a
round cannot work that way:

- generating in process: processes generate different numbers of tokens, so their forwards
  stop pairing up for the collective gathers (they would wait on each other forever), and
  gathering every layer again for every token is slow;
- the weight push to vf-vllm, which sends whole tensors.

:func:`full_weights` gathers every parameter once, turns the per-layer gathering off while it
holds, and puts both back on exit. Every process must enter it at the same time. Without
sharding (one process, DDP, ZeRO-1/2) it only unwraps the model.

Generating in process needs the whole model in each process's memory for the duration.
When the model does not fit, generate with vf-vllm instead: then only the weight push
gathers, and the training processes never hold a whole copy for long.
"""

from __future__ import annotations

import contextlib
import copy
import os
from collections.abc import Iterator
from typing import Any

ZERO3 = "zero3"
FSDP2 = "fsdp2"
FSDP1 = "fsdp1"


def sharding_of(model: Any) -> str | None:
    """How ``model`` (as the Trainer wraps it) splits its parameters across processes:
    ``"zero3"``, ``"fsdp2"``, ``"fsdp1"``, or ``None`` when every process holds all of them."""
    if callable(getattr(model, "zero_optimization_stage", None)):  # a DeepSpeed engine
        return ZERO3 if model.zero_optimization_stage() == 3 else None
    if any(hasattr(p, "ds_id") for p in model.parameters()):  # built under deepspeed.zero.Init
        return ZERO3
    from torch.distributed.fsdp import FSDPModule, FullyShardedDataParallel

    for module in model.modules():
        if isinstance(module, FSDPModule):
            return FSDP2
        if isinstance(module, FullyShardedDataParallel):
            return FSDP1
    return None


@contextlib.contextmanager
def full_weights(model: Any, reshard_after_forward: bool = True) -> Iterator[Any]:
    """The bare module of ``model`` with every parameter whole, for forwards and reads that
    need no collective calls. ``reshard_after_forward`` is what FSDP 2 goes back to on exit
    (accelerate's ``fsdp_reshard_after_forward``). Under sharding, changes made to the
    weights inside are dropped on exit (the shards stay as they were)."""
    kind = sharding_of(model)
    if kind == ZERO3:
        import deepspeed

        if callable(getattr(model, "zero_optimization_stage", None)):
            # DeepSpeed's own helper: gather once, take the per-layer hooks off, put them back.
            from deepspeed.runtime.zero import unwrap_model_for_generation

            with unwrap_model_for_generation(model):
                yield model.module
        else:  # not wrapped in an engine yet: no hooks to take off
            with deepspeed.zero.GatheredParameters(list(model.parameters())):
                yield model
    elif kind == FSDP2:
        from torch.distributed.fsdp import FSDPModule

        modules = [m for m in model.modules() if isinstance(m, FSDPModule)]
        try:
            for module in modules:  # the same order on every process: the gathers pair up
                module.set_reshard_after_forward(False, recurse=False)  # stay whole after forwards
                module.unshard()
            yield model
        finally:
            for module in modules:
                module.set_reshard_after_forward(reshard_after_forward, recurse=False)
                module.reshard()
    elif kind == FSDP1:
        raise RuntimeError(
            "GRPOTrainer shards with FSDP 2 only: FSDP 1 (FullyShardedDataParallel) cannot run "
            "forwards while its whole weights are gathered, which generating in process needs. "
            "Set fsdp_version: 2 in the accelerate config (as configs/fsdp.yaml does), or use "
            "DeepSpeed ZeRO-3 (configs/zero3.yaml)."
        )
    else:
        from accelerate.utils import extract_model_from_parallel

        yield extract_model_from_parallel(model)


@contextlib.contextmanager
def writable_weights(model: Any) -> Iterator[Any]:
    """The bare module of ``model`` with whole weights whose changes are kept (the reference
    model's, for ``sync_ref_model``). Under ZeRO-3 every process must enter together and
    make the same changes: the first process's values are written back into every shard on
    exit. (Under FSDP the reference model is not sharded.)"""
    from accelerate.utils import extract_model_from_parallel

    module = extract_model_from_parallel(model)
    if sharding_of(model) == ZERO3:
        import deepspeed

        with deepspeed.zero.GatheredParameters(list(module.parameters()), modifier_rank=0):
            yield module
    else:
        yield module


def reference_copy(model: Any) -> Any:
    """A frozen copy of the policy, the KL reference. A model built under
    ``deepspeed.zero.Init`` (ZeRO-3 with ``zero3_init_flag: true``, when the model is loaded
    after ``GRPOConfig`` is created) holds only its shards and cannot be copied in memory: the
    reference is loaded again, sharded the same way, from the folder the policy came from."""
    if sharding_of(model) != ZERO3:
        reference = copy.deepcopy(model)
    else:
        source = getattr(model.config, "_name_or_path", "")
        if not source:
            raise ValueError(
                "The policy was built sharded (deepspeed.zero.Init: ZeRO-3 with "
                "zero3_init_flag) and not loaded from a folder, so the KL reference model "
                "cannot be copied from it. Save the model and load it with from_pretrained, "
                "build it before creating GRPOConfig, or set beta=0."
            )
        reference = type(model).from_pretrained(source, dtype=model.dtype)
    for parameter in reference.parameters():
        parameter.requires_grad_(False)
    return reference.eval()


def prepare_reference(accelerator: Any, model: Any) -> Any:
    """Place the frozen reference model like the policy. Under DeepSpeed it gets an engine
    of its own, without optimizer, in the policy's precision: ZeRO-3 shards it as it shards
    the policy, other stages keep it whole. Otherwise accelerate prepares it for evaluation
    (whole on every process)."""
    from accelerate.utils import DistributedType

    if accelerator.distributed_type != DistributedType.DEEPSPEED:
        return accelerator.prepare_model(model, evaluation_mode=True)
    import deepspeed

    plugin = accelerator.state.deepspeed_plugin
    zero: dict[str, Any] = {"stage": 3 if plugin.zero_stage == 3 else 0}
    offload = plugin.deepspeed_config.get("zero_optimization", {}).get("offload_param")
    if zero["stage"] == 3 and offload:
        zero["offload_param"] = offload
    config = {
        "train_micro_batch_size_per_gpu": 1,  # required by DeepSpeed; the reference never trains
        "zero_optimization": zero,
        "bf16": {"enabled": accelerator.mixed_precision == "bf16"},
        "fp16": {"enabled": accelerator.mixed_precision == "fp16"},
    }
    engine, *_ = deepspeed.initialize(model=model, config=config)
    engine.eval()  # DeepSpeed's eval() returns None
    return engine


def check_launch(accelerator: Any, in_process_generation: bool, gather_for_generation: bool) -> None:
    """Raise :func:`launch_problem`'s message, if any, for this accelerator."""
    plugin = accelerator.state.deepspeed_plugin
    problem = launch_problem(
        accelerator.distributed_type.value, plugin.zero_stage if plugin is not None else None,
        os.environ.get("ACCELERATE_USE_FSDP", "false").lower() == "true",
        in_process_generation, gather_for_generation)
    if problem:
        raise ValueError(problem)


def launch_problem(distributed_type: str, zero_stage: int | None, fsdp_requested: bool,
                   in_process_generation: bool, gather_for_generation: bool) -> str | None:
    """What is wrong with a launch that would hang or silently not shard, and the fix
    (``None`` when nothing is). ``distributed_type`` is accelerate's (``"DEEPSPEED"``,
    ``"FSDP"``, ``"MULTI_CPU"``, ...); ``fsdp_requested``: launched with an FSDP config.

    - ZeRO-3 with ``ds3_gather_for_generation=False`` and the in-process engine: without the
      gather, each process would gather layers token by token, in step with the others,
      which processes generating different lengths never are.
    - An FSDP config on a machine without GPUs: accelerate enables FSDP only on accelerator
      devices (its ``AcceleratorState`` keeps ``MULTI_CPU`` on CPU) and would run plain data
      parallel, each process holding the whole model.
    """
    if (distributed_type == "DEEPSPEED" and zero_stage == 3 and in_process_generation
            and not gather_for_generation):
        return (
            "ds3_gather_for_generation=False cannot generate in process: under ZeRO-3 every "
            "process would gather each layer for every token, in step with the others, and "
            "processes generating different lengths would wait on each other forever. Keep "
            "ds3_gather_for_generation=True (the whole model is gathered once per round), or "
            "generate with vf-vllm (generation_backend='vllm'), which needs no gathering."
        )
    if fsdp_requested and distributed_type != "FSDP":
        return (
            f"accelerate was launched with an FSDP config, but runs {distributed_type} here: "
            "accelerate enables FSDP only on GPUs (or other accelerators), and on CPU would "
            "train plain data parallel, each process holding the whole model. To shard on CPU "
            "use DeepSpeed ZeRO-3 (accelerate launch --config_file configs/zero3.yaml); for "
            "plain data parallel use configs/cpu_ddp.yaml."
        )
    return None
