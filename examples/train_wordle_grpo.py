"""The training and evaluation guide, "Game Environment Training": GRPO on the multi-turn Wordle environment, with
an evaluation through the environment before and after (the guide's "Start with
Evaluation" and "Monitor Training").

The guide's lines are kept; the model is SmolLM2-135M-Instruct (``Qwen/Qwen2.5-1.5B-Instruct``
in the guide; ``--model`` takes any local folder or Hub id) and the run is sized for a CPU.
Each rollout is a whole game: up to six model turns, each answered by the environment's
feedback; the environment's tokens are masked out of the loss.

    python examples/train_wordle_grpo.py --tiny           # tiny offline model, 1 step
    python examples/train_wordle_grpo.py                   # SmolLM2, 10 steps
    python examples/train_wordle_grpo.py --model ./my-model --max-steps 200
"""

from __future__ import annotations

import argparse

import _stand_ins

import verifiers as vf


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tiny", action="store_true", help="a tiny offline model, 1 step")
    parser.add_argument("--model", default=None, help="a local folder or Hub id (default SmolLM2)")
    parser.add_argument("--max-steps", type=int, default=None)
    options = parser.parse_args()
    model_name = options.model or _stand_ins.model_path(options.tiny)

    # Load game environment
    vf_env = vf.load_environment("wordle", use_think=True, num_train_examples=2000,
                                 num_eval_examples=4 if options.tiny else 20)

    # Train on games
    model, tokenizer = vf.get_model_and_tokenizer(model_name)
    args = vf.grpo_defaults(run_name="wordle-training")
    # sized for a CPU; on GPUs keep the defaults
    args.max_steps = options.max_steps or (1 if options.tiny else 10)
    args.per_device_train_batch_size = 8
    args.num_generations = 4
    args.gradient_accumulation_steps = 1
    args.max_tokens = 24 if options.tiny else 128             # per guess
    args.max_completion_length = 256 if options.tiny else 1024  # the whole game
    trainer = vf.GRPOTrainer(model=model, processing_class=tokenizer, env=vf_env, args=args)

    before = trainer.evaluate()
    trainer.train()
    after = trainer.evaluate()

    for name, metrics in (("before", before), ("after", after)):
        print(f"{name} training: eval reward {metrics['eval_reward']:.3f}, "
              f"games won {metrics.get('eval_correct_answer', float('nan')):.2f}, "
              f"failed rollouts {metrics['eval_failed']:.0f}")
    turns = [e["completions/mean_length"] for e in trainer.state.log_history
             if "completions/mean_length" in e]
    print(f"trained {trainer.state.global_step} steps; mean completion tokens per game {turns}")


if __name__ == "__main__":
    main()
