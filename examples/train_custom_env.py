"""The training guide, "Basic Training Setup", "Complete Training Script" and "Memory Optimization":
a training script for your own ``SingleTurnEnv`` (an ``XMLParser`` and your rubric), with
the guide's imports and names (``from verifiers.trainers import GRPOTrainer, GRPOConfig``,
``tokenizer=``, ``config=``, ``batch_size``, ``group_size``, ``num_epochs``).

Also the guide's "Multi-Reward Training": the rubric is a ``RubricGroup`` of a correctness
and a format rubric, and a ``TrainerCallback`` changes their group weights by training
phase (the guide's ``AdaptiveGRPOTrainer.compute_rewards`` did this in a subclass).

Differences from the guide, and why:
- the model is SmolLM2-135M-Instruct (or ``--tiny``), not Llama-2-7B (no Hub downloads);
  the guide's ``torch_dtype=torch.float16`` with ``fp16=True`` fails in PyTorch's gradient
  scaler (fp16 training needs float32 master weights), so weights load in float32 and
  ``fp16`` is on only with a CUDA GPU;
- ``load_dataset("your_dataset")``, ``create_task_rubric`` and ``SYSTEM_PROMPT`` are
  defined here (a generated addition task);
- ``max_steps`` is set: the trainer needs a step count today (``num_epochs`` alone is not
  turned into steps);
- the eval set goes to the environment (``SingleTurnEnv(eval_dataset=...)``): with
  ``env=...``, ``GRPOTrainer`` evaluates on the environment's eval set;
- ``warmup_ratio=0.1`` is written ``warmup_steps=0.1`` (transformers 5 dropped
  ``warmup_ratio``; a ``warmup_steps`` below 1 is the same fraction of the run);
- wandb only with ``--wandb``; LoRA (the guide's ``LoraConfig``) with ``--lora``.

    python examples/train_custom_env.py --tiny           # tiny offline model, 2 steps
    python examples/train_custom_env.py --lora           # SmolLM2 + LoRA, 20 steps
"""

from __future__ import annotations

import argparse
import random

import _stand_ins
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback

from verifiers.envs import SingleTurnEnv
from verifiers.parsers import XMLParser
from verifiers.rubrics import Rubric, RubricGroup
from verifiers.trainers import GRPOConfig, GRPOTrainer

SYSTEM_PROMPT = """Add the two numbers. Answer in this format:
<reasoning>
...
</reasoning>
<answer>
the sum, digits only
</answer>"""


def load_dataset(split, size=200):
    """An addition task: ``question``/``answer`` rows (the guide loads "your_dataset")."""
    rng = random.Random(0 if split == "train" else 1)
    rows = []
    for _ in range(size):
        a, b = rng.randint(0, 50), rng.randint(0, 50)
        rows.append({"question": f"{a} + {b}", "answer": str(a + b)})
    return rows


def create_task_rubric(parser):
    """Correctness and format, as two rubrics whose weights can change between phases."""

    def correct_answer(completion, answer):
        return 1.0 if parser.parse_answer(completion) == answer else 0.0

    correctness = Rubric(funcs=[correct_answer], parser=parser)
    format_rubric = Rubric(funcs=[parser.get_format_reward_func()], parser=parser)
    return RubricGroup([correctness, format_rubric])


class RubricWeightsSchedule(TrainerCallback):
    """Sets the rubric's group weights at each step from ``schedule``: ``[(progress,
    weights), ...]``, progress = share of ``max_steps`` done (first matching threshold)."""

    def __init__(self, rubric, schedule):
        self.rubric = rubric
        self.schedule = schedule

    def on_step_begin(self, args, state, control, **kwargs):
        progress = state.global_step / max(1, state.max_steps)
        weights = next((w for threshold, w in self.schedule if progress < threshold),
                       self.schedule[-1][1])
        if weights != self.rubric.get_group_weights():
            self.rubric.set_group_weights(weights)
            print(f"step {state.global_step}: rubric group weights -> {weights}")


def main():
    options = parse_args()
    if options.wandb:
        import wandb

        # Initialize wandb
        wandb.init(project="verifiers-training")

    # Load model and tokenizer
    model_name = options.model or _stand_ins.model_path(options.tiny)
    model = AutoModelForCausalLM.from_pretrained(
        model_name,
        torch_dtype=torch.float32,
        device_map="auto",
    )
    tokenizer = AutoTokenizer.from_pretrained(model_name)
    tokenizer.pad_token = tokenizer.eos_token

    # Create environment
    parser = XMLParser(["reasoning", "answer"])
    rubric = create_task_rubric(parser)  # Your custom rubric

    env = SingleTurnEnv(
        dataset=load_dataset("train"),
        eval_dataset=load_dataset("test", size=8),
        parser=parser,
        rubric=rubric,
        system_prompt=SYSTEM_PROMPT,
    )

    # Training configuration
    config = GRPOConfig(
        output_dir="./checkpoints",
        learning_rate=1e-5,
        batch_size=8 if options.tiny else 32,
        group_size=4,
        num_epochs=3,
        max_steps=options.max_steps or (2 if options.tiny else 20),
        max_new_tokens=32 if options.tiny else 128,
        eval_steps=100,
        save_steps=500,
        logging_steps=1 if options.tiny else 10,
        warmup_steps=0.1,  # the guide's warmup_ratio=0.1: below 1 it is a fraction of the run
        fp16=torch.cuda.is_available(),
        gradient_checkpointing=True,
        report_to="wandb" if options.wandb else "none",
    )

    # Use LoRA for parameter-efficient training
    lora_config = None
    if options.lora:
        from peft import LoraConfig

        lora_config = LoraConfig(
            r=8,
            lora_alpha=32,
            lora_dropout=0.1,
            target_modules=["q_proj", "v_proj"],
            task_type="CAUSAL_LM",
        )

    # Create trainer
    trainer = GRPOTrainer(
        model=model,
        tokenizer=tokenizer,
        env=env,
        config=config,
        peft_config=lora_config,
        callbacks=[RubricWeightsSchedule(rubric, [(0.5, [1.0, 1.0]), (1.01, [1.0, 0.2])])],
    )

    # Train
    trainer.train()

    # Save final model
    trainer.save_model("./final_model")

    # Run final evaluation
    eval_results = trainer.evaluate()
    print(f"Final evaluation results: {eval_results}")


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tiny", action="store_true", help="a tiny offline model, 2 steps")
    parser.add_argument("--model", default=None, help="a local folder or Hub id (default SmolLM2)")
    parser.add_argument("--max-steps", type=int, default=None)
    parser.add_argument("--lora", action="store_true", help="train LoRA adapters on q_proj, v_proj")
    parser.add_argument("--wandb", action="store_true", help="log to Weights & Biases")
    return parser.parse_args()


if __name__ == "__main__":
    main()
