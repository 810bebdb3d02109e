"""EasyDeL's GRPO tutorial and ATLAS's API reference: ``GRPOTrainer`` built from reward
functions and a dataset with a ``prompt`` column, instead of an environment (TRL's convention).

The tutorial shows this with EasyDeL (``ed.GRPOTrainer(arguments=config, vinference=...,
model=..., reward_funcs=..., train_dataset=..., processing_class=...)``); the reference lists the
same constructor for this trainer. Here it is with ``vf.GRPOTrainer``:

- the dataset is GSM8K's training split in the tutorial's format (``{"prompt": "Solve this math
  problem step-by-step: ...", "answer": "8"}``), read offline from ``$VF_DATA_DIR/gsm8k``
  when set, else from the Hub;
- the reward functions keep the documents' logic, written in the trainer's calling convention:
  each gets the batch as keyword lists (``prompts``, ``completions`` and every other dataset
  column, here ``answer``) and returns one float per completion (``None`` = not scored);
- ``vInference``'s sampling settings (``num_return_sequences``, ``temperature``, ``top_p``)
  are ``GRPOConfig`` fields (``num_generations``, ``temperature``, ``top_p``); generation
  runs in process on the training model;
- ``model`` may be a path or Hub id, as in the reference: the trainer loads it and its tokenizer.

    python examples/reward_funcs_trainer.py --tiny       # tiny offline model, 2 steps
    python examples/reward_funcs_trainer.py              # SmolLM2-135M-Instruct, 5 steps
"""

from __future__ import annotations

import argparse
import re

import _stand_ins

import verifiers as vf
from verifiers.utils.data_utils import load_gsm8k


def _text(completion):
    return completion if isinstance(completion, str) else completion[-1]["content"]


# EasyDeL's tutorial: "must return values between 0 and 1"
def math_problem_reward_function(prompts, completions, answer, **kwargs):
    """Example reward function that extracts and verifies an answer."""
    rewards = []
    for completion, reference_answer in zip(completions, answer, strict=True):
        # Extract answer number from completion
        answer_match = re.search(r"The answer is (\d+)", _text(completion))
        if answer_match:
            extracted_answer = int(answer_match.group(1))
            # Compare with reference if available
            if reference_answer:
                rewards.append(1.0 if str(extracted_answer) == reference_answer else 0.0)
            else:
                rewards.append(0.5)  # Default score
        else:
            rewards.append(0.0)
    return rewards


# EasyDeL's tutorial, "Multiple Reward Functions"
def correctness_reward(prompts, completions, answer, **kwargs):
    # Check if the answer matches the reference
    return [1.0 if reference in _text(c) else 0.0 for c, reference in zip(completions, answer, strict=True)]


def reasoning_reward(prompts, completions, **kwargs):
    # Score the quality of reasoning in the completion
    rewards = []
    for completion in completions:
        text = _text(completion).lower()
        rewards.append(0.8 if "step 1" in text and "therefore" in text else 0.3)
    return rewards


# ATLAS's API reference, "Custom Reward Function"
def compute_custom_reward(prompt, completion):
    return min(1.0, len(_text(completion).split()) / 50)  # longer explanations, up to 50 words


def custom_teaching_reward(prompts, completions, **kwargs):
    """
    Custom reward function following the expected interface.
    """
    rewards = []
    for prompt, completion in zip(prompts, completions, strict=True):
        # Custom logic here
        reward = compute_custom_reward(prompt, completion)
        rewards.append(reward)
    return rewards


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tiny", action="store_true", help="a tiny offline model, 2 steps")
    parser.add_argument("--model", default=None, help="a local folder or Hub id (default SmolLM2)")
    parser.add_argument("--max-steps", type=int, default=None)
    parser.add_argument("--wandb", action="store_true", help="report to Weights & Biases")
    options = parser.parse_args()
    model = options.model or _stand_ins.model_path(options.tiny)

    # Load dataset (must have a "prompt" field)
    gsm8k = load_gsm8k("train")
    gsm8k = gsm8k.select(range(min(200, len(gsm8k))))
    dataset = gsm8k.map(lambda row: {
        "prompt": "Solve this math problem step-by-step, then end with 'The answer is N.': "
                  + row["question"] + "\n",
        "answer": row["answer"],
    }, remove_columns=["question", "info"])

    # Create GRPO config
    config = vf.GRPOConfig(
        output_dir="grpo_checkpoints",
        run_name="grpo_math_solver",
        beta=0.04,
        max_prompt_length=512,
        max_completion_length=32 if options.tiny else 256,
        per_device_train_batch_size=8,   # total_batch_size on one process
        num_generations=4,               # num_return_sequences
        temperature=0.7,
        top_p=0.95,
        learning_rate=1e-6,
        num_train_epochs=3,
        max_steps=options.max_steps or (2 if options.tiny else 5),  # the trainer needs it today
        logging_steps=1,
        report_to="wandb" if options.wandb else "none",
    )

    # Initialize trainer
    trainer = vf.GRPOTrainer(
        model=model,
        reward_funcs=[math_problem_reward_function, correctness_reward, reasoning_reward,
                      custom_teaching_reward],
        args=config,
        train_dataset=dataset,
    )

    # Start training
    trainer.train()

    names = ["math_problem_reward_function", "correctness_reward", "reasoning_reward",
             "custom_teaching_reward"]
    for entry in trainer.state.log_history:
        if "reward" in entry:
            parts = ", ".join(f"{n} {entry.get(f'rewards/{n}', float('nan')):.2f}" for n in names)
            print(f"step {entry['step']}: reward {entry['reward']:.3f} ({parts})")


if __name__ == "__main__":
    main()
