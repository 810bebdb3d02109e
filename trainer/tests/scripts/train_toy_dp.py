"""Multi-process GRPO on a tiny model, run by test_distributed.py under torchrun or
``accelerate launch`` (plain data parallel, DeepSpeed ZeRO-2 / ZeRO-3):

    torchrun --nproc_per_node 2 train_toy_dp.py OUT_DIR MODEL_PATH
    accelerate launch --config_file configs/zero3.yaml --num_processes 2 \\
        train_toy_dp.py OUT_DIR MODEL_PATH --beta 0.04 --num-iterations 2

Each rank writes OUT_DIR/rank<N>.json: how the run was distributed, a checksum of the whole
(gathered) policy, how far its trainable weights (and the reference model's) moved, the shapes of the weights a vf-vllm
push would send, the logged losses, rewards and KL, the seconds per optimizer step and the
process's peak resident memory.
"""

import argparse
import itertools
import json
import os
import resource
import time

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback

import verifiers as vf
from verifiers_trainer import GRPOConfig, GRPOTrainer, grpo_defaults, lora_defaults
from verifiers_trainer.grpo.sharding import full_weights, sharding_of, writable_weights
from verifiers_trainer.grpo.trainer import merged_named_weights


class StepTimes(TrainerCallback):
    def __init__(self) -> None:
        self.ends: list[float] = []

    def on_step_end(self, args, state, control, **kwargs):
        self.ends.append(time.perf_counter())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("model")
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--beta", type=float, default=0.0)
    parser.add_argument("--num-iterations", type=int, default=1)
    parser.add_argument("--lora", action="store_true")
    parser.add_argument("--gradient-checkpointing", action="store_true")
    parser.add_argument("--sync-ref", action="store_true",
                        help="sync_ref_model every step (alpha 0.5)")
    parser.add_argument("--config-first", action="store_true",
                        help="build GRPOConfig before loading the model (under ZeRO-3 with "
                             "zero3_init_flag the model then loads already sharded)")
    parser.add_argument("--fail-on-rank", type=int, default=None,
                        help="every reward on this rank raises: its micro-batches are empty")
    parser.add_argument("--no-use-cpu", action="store_true",
                        help="GRPOConfig without use_cpu=True (the trainer must still run the "
                             "processes as one data-parallel job)")
    parser.add_argument("--grpo-defaults", action="store_true",
                        help="start from grpo_defaults() (its own precision) instead of matching "
                             "the launcher's mixed precision")
    options = parser.parse_args()

    torch.manual_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(options.model)
    targets = set(range(3, len(tokenizer), 10))

    seen: set[str] = set()

    def share(prompt, state):
        seen.add(prompt[-1]["content"])
        if int(os.environ.get("RANK", 0)) == options.fail_on_rank:
            raise RuntimeError("this rank's rollouts fail")
        ids = [t for turn in state["turns"] for t in turn["completion_token_ids"]]
        return sum(t in targets for t in ids) / max(1, len(ids))

    env = vf.SingleTurnEnv(dataset=[{"question": f"def t{i}():"} for i in range(32)],
                           rubric=vf.Rubric(funcs=[share]))
    if not options.config_first:
        model = AutoModelForCausalLM.from_pretrained(options.model, dtype=torch.float32)
    settings = dict(
        output_dir=options.out, per_device_train_batch_size=8, num_generations=4,
        gradient_accumulation_steps=1, max_completion_length=8, learning_rate=3e-3,
        max_steps=options.steps, warmup_steps=0, lr_scheduler_type="constant",
        beta=options.beta, num_iterations=options.num_iterations, logging_steps=1,
        save_strategy="no", report_to="none", seed=0,
        gradient_checkpointing=options.gradient_checkpointing,
        sync_ref_model=options.sync_ref, ref_model_sync_steps=1, ref_model_mixup_alpha=0.5,
        max_grad_norm=1.0, log_completions=False,
    )
    if not options.no_use_cpu:
        settings["use_cpu"] = True
    if options.grpo_defaults:
        args = grpo_defaults(**settings)
    else:  # the accelerate config's mixed precision
        args = GRPOConfig(**settings, bf16=os.environ.get("ACCELERATE_MIXED_PRECISION") == "bf16")
    if options.config_first:
        model = AutoModelForCausalLM.from_pretrained(options.model, dtype=torch.float32)
    trainer = GRPOTrainer(model=model, processing_class=tokenizer, env=env, args=args,
                          peft_config=lora_defaults() if options.lora else None)
    with full_weights(trainer.model_wrapped) as policy:
        before = {name: p.detach().clone() for name, p in policy.named_parameters()
                  if p.requires_grad}
        loaded_sharded = sharding_of(trainer.model_wrapped)
    times = StepTimes()
    trainer.add_callback(times)
    start = time.perf_counter()
    trainer.train()

    rank = trainer.accelerator.process_index
    local = sum(_local_numel(p) for p in trainer.model.parameters())
    with full_weights(trainer.model_wrapped) as policy:
        params = dict(policy.named_parameters())
        checksum = sum(p.double().sum().item() for p in params.values())
        moved = max(_mean_change(params[name], p) for name, p in before.items())
        whole = sum(p.numel() for p in params.values())
        pushed = {name: list(t.shape) for name, t in merged_named_weights(policy)}
    ref_moved = None
    if trainer.ref_model is not None:
        with writable_weights(trainer.ref_model) as reference:  # read only
            ref_moved = max(_mean_change(p, before[name]) for name, p in reference.named_parameters())
    ends = [start, *times.ends]
    result = {
        "rank": rank,
        "world": trainer.accelerator.num_processes,
        "distributed_type": trainer.accelerator.distributed_type.value,
        "sharding": sharding_of(trainer.model_wrapped),
        "loaded_sharded": loaded_sharded,
        "local_numel": local,
        "whole_numel": whole,
        "checksum": checksum,
        "pushed_shapes": pushed,
        "moved": moved,
        "ref_moved": ref_moved,
        "losses": [e["loss"] for e in trainer.state.log_history if "loss" in e],
        "rewards": [e["reward"] for e in trainer.state.log_history if "reward" in e],
        "prompts": sorted(seen),
        "bf16": bool(trainer.args.bf16),
        "kl": [e["kl"] for e in trainer.state.log_history if "kl" in e],
        "step_seconds": [b - a for a, b in itertools.pairwise(ends)],
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
    with open(os.path.join(options.out, f"rank{rank}.json"), "w") as handle:
        json.dump(result, handle)


def _mean_change(now: torch.Tensor, before: torch.Tensor) -> float:
    """Mean |now - before|, ``before`` rounded to ``now``'s precision first (bf16 runs)."""
    return (now.float() - before.to(now.dtype).float()).abs().mean().item()


def _local_numel(p: torch.Tensor) -> int:
    """Elements this process stores for ``p`` (its ZeRO-3 shard or FSDP 2 shard if split)."""
    if hasattr(p, "ds_tensor"):
        return p.ds_tensor.numel()
    if hasattr(p, "to_local"):
        return p.to_local().numel()
    return p.numel()


if __name__ == "__main__":
    main()
