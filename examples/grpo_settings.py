"""The training and evaluation guide and the GRPOTrainer guide: every ``GRPOConfig`` setting
they show, set as written; then a short run, evaluated through the environment before and
after, optionally with the GRPOTrainer guide's LoRA
(``--lora``: ``vf.lora_defaults(r=8, alpha=16)``).

The settings block is the guides' text (batch, generation, length limits, schedule, GRPO
objective, asynchronous generation, evaluation, advanced sampling, memory, monitoring).
The guides' values are for a GPU run of 500 steps; after them, the script sizes the run for
a CPU (``--tiny``: a tiny offline model, 2 steps) and prints the settings that train.
``report_to = "wandb"`` is kept only with ``--wandb`` (wandb installed and logged in).

``eval_strategy = "steps"`` is refused by transformers'
Trainer today (GRPOTrainer evaluates through the environment and gives the Trainer no
eval set), so the script evaluates before and after training instead.

    python examples/grpo_settings.py --tiny
    python examples/grpo_settings.py --tiny --lora
    python examples/grpo_settings.py                   # SmolLM2-135M-Instruct, 4 steps
"""

from __future__ import annotations

import argparse

import _stand_ins

import verifiers as vf


def documented_settings(args):
    """The guides' settings, as written."""
    # -- the training and evaluation guide, "Using Defaults" / "Key Parameters" --
    # Batch configuration
    args.per_device_train_batch_size = 8    # Samples per GPU
    args.num_generations = 16               # Completions per prompt
    args.gradient_accumulation_steps = 4    # Steps before update

    # Length limits
    args.max_prompt_length = 1024           # Truncate long prompts
    args.max_completion_length = 2048       # Truncate long responses

    # Training schedule
    args.max_steps = 500                    # Total training steps
    args.num_iterations = 1                 # Updates per batch
    args.learning_rate = 1e-6               # Learning rate

    # Generation settings
    args.temperature = 1.0                  # Sampling temperature
    args.top_p = 1.0                        # Nucleus sampling

    # -- the GRPOTrainer guide, "Key Hyperparameters" --
    # Sampling configuration
    args.max_tokens = 1024           # Max tokens per (turn-level) response
    args.top_k = None              # Top-k filtering (None = disabled)
    args.max_seq_len = 4096           # Model's context window

    # Optimization settings
    args.lr_scheduler_type = "constant_with_warmup"
    args.warmup_steps = 10                 # Gradual warmup
    args.max_grad_norm = 0.01              # Aggressive clipping for stability

    # KL regularization
    args.beta = 0.001                      # KL penalty coefficient
    args.sync_ref_model = True             # Update reference model
    args.ref_model_sync_steps = 100        # How often to sync
    args.ref_model_mixup_alpha = 0.5       # Mix ratio for updates

    # Loss configuration
    args.loss_type = "dr_grpo"             # Recommended: no length bias
    args.epsilon = 0.2                     # Clipping bound (lower)
    args.delta = None                      # Optional upper clipping bound

    # Overlapped training and inference
    args.num_batches_ahead = 1      # Batches to generate ahead
    args.async_generation_timeout = 300.0  # Timeout in seconds
    args.max_concurrent = 1024      # Max concurrent env requests

    # Add evaluation dataset
    args.eval_strategy = "steps"
    args.eval_steps = 100
    args.per_device_eval_batch_size = 16

    # Fine-grained generation control
    args.repetition_penalty = 1.1   # Reduce repetition
    args.top_k = 50                # Limit vocabulary
    args.min_p = 0.05              # Min probability threshold

    # Memory-constrained settings
    args.gradient_checkpointing = True
    args.ds3_gather_for_generation = False  # For very large models
    args.generation_batch_size = 16  # Control generation batch size

    # Logging configuration
    args.logging_steps = 1
    args.log_completions = True
    args.report_to = "wandb"  # or "none" to disable
    args.num_completions_to_print = 5  # Sample size to log
    return args


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tiny", action="store_true", help="a tiny offline model, 2 steps")
    parser.add_argument("--model", default=None, help="a local folder or Hub id (default SmolLM2)")
    parser.add_argument("--wandb", action="store_true", help="keep report_to='wandb'")
    parser.add_argument("--lora", action="store_true", help="train LoRA adapters (r=8, alpha=16)")
    options = parser.parse_args()
    model_name = options.model or _stand_ins.model_path(options.tiny)

    # The environment can provide an eval dataset
    env = vf.load_environment("math-python", eval_split="test", use_tools=False,
                              difficulty="easy", num_eval_examples=8)
    model, tokenizer = vf.get_model_and_tokenizer(model_name)
    args = documented_settings(vf.grpo_defaults(run_name="experiment"))

    # Sized for a CPU. The batch rule: per_device_train_batch_size x processes x
    # gradient_accumulation_steps must be whole groups of num_generations.
    args.max_steps = 2 if options.tiny else 4
    args.per_device_train_batch_size = 4
    args.num_generations = 4
    args.gradient_accumulation_steps = 2
    args.generation_batch_size = 8
    args.per_device_eval_batch_size = 4
    args.eval_num_examples = 4
    # Today GRPOTrainer gives transformers' Trainer no eval_dataset (it evaluates through the
    # environment), and the Trainer refuses eval_strategy="steps" without one: evaluate by
    # calling trainer.evaluate() instead (below, before and after training).
    args.eval_strategy = "no"
    args.max_tokens = args.max_completion_length = 32 if options.tiny else 128
    args.max_prompt_length, args.max_seq_len = 512, 1024
    args.learning_rate = 1e-5
    if not options.wandb:
        args.report_to = []
    if options.lora:
        # sync_ref_model moves a separate reference model toward the policy; under LoRA the
        # reference is the base model with the adapters off, so there is nothing to move
        args.sync_ref_model = False

    print("settings that train:")
    for name in ("per_device_train_batch_size", "num_generations", "gradient_accumulation_steps",
                 "max_tokens", "max_completion_length", "temperature", "top_k", "min_p",
                 "repetition_penalty", "beta", "loss_type", "epsilon", "num_batches_ahead",
                 "max_grad_norm", "sync_ref_model", "gradient_checkpointing"):
        print(f"  {name} = {getattr(args, name)!r}")

    # Parameter-efficient training (the GRPOTrainer guide)
    trainer = vf.GRPOTrainer(
        model=model,
        processing_class=tokenizer,
        env=env,
        args=args,
        peft_config=vf.lora_defaults(r=8, alpha=16) if options.lora else None,
    )
    before = trainer.evaluate()
    trainer.train()
    after = trainer.evaluate()

    for entry in trainer.state.log_history:
        if "reward" in entry:
            print(f"step {entry['step']}: reward {entry['reward']:.3f}, kl {entry.get('kl', 0):.5f}, "
                  f"grad_norm {entry.get('grad_norm', float('nan')):.4f}")
    print(f"eval_reward before {before['eval_reward']:.3f}, after {after['eval_reward']:.3f}")


if __name__ == "__main__":
    main()
