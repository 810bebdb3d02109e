"""ATLAS's API reference's example: train a teacher model with adaptive teaching, on local models.

A teacher (the model trained) writes guidance for a student; its reward is how much the
guidance improves the student's answers (``AdaptiveTeachingReward``). The reference trains
ATLAS-8B-Instruct with ATLAS-8B-Thinking as the student, from the Hugging Face Hub; here
both are SmolLM2-135M-Instruct (found or converted locally), and the questions are
vf-math-python's generated arithmetic (``question`` -> ``prompt``, ``answer`` ->
``ground_truth``), so it runs offline:

    python examples/adaptive_teaching.py                       # SmolLM2 teaches SmolLM2
    python examples/adaptive_teaching.py --tiny                # tiny random models, seconds
    python examples/adaptive_teaching.py --teacher PATH --student PATH --max-steps 100

The reference's settings are kept where they run here. Two differ: ``max_steps`` is set (the
GRPO trainers count optimizer steps), and ``per_device_train_batch_size`` counts
completions, so it holds whole groups of ``num_generations`` (the reference's 4 with 8
generations does not). On a CPU, SmolLM2 writes about 15 tokens a second: keep
``--max-completion-length`` small.
"""

from __future__ import annotations

import argparse
from typing import Any


def arithmetic_dataset(difficulty: str, size: int) -> Any:
    """vf-math-python's arithmetic as a teaching dataset: chat prompts and ground truths."""
    from datasets import Dataset

    import verifiers as vf

    env = vf.load_environment("vf-math-python", difficulty=difficulty, use_tools=False,
                              num_train_examples=size, num_eval_examples=0)
    rows = [{"prompt": [{"role": "user", "content": row["question"]}], "ground_truth": row["answer"]}
            for row in env.get_dataset()]
    return Dataset.from_list(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--teacher", default=None, help="teacher model path (default: SmolLM2)")
    parser.add_argument("--student", default=None, help="student model path (default: SmolLM2)")
    parser.add_argument("--tiny", action="store_true",
                        help="tiny random models and short lengths: a smoke run in seconds")
    parser.add_argument("--max-steps", type=int, default=None, help="optimizer steps (3; --tiny: 2)")
    parser.add_argument("--num-generations", type=int, default=None, help="teachings per question (8)")
    parser.add_argument("--max-completion-length", type=int, default=None,
                        help="tokens per teaching and per student solution (256; --tiny: 12)")
    parser.add_argument("--difficulty", default="easy", help="arithmetic difficulty")
    parser.add_argument("--output-dir", default="results/adaptive_teacher")
    args = parser.parse_args(argv)

    from verifiers.trainers import AdaptiveTeachingReward, GRPOConfig, TeacherGRPOTrainer

    if args.tiny:
        from verifiers_trainer import build_tiny_model

        tiny = str(build_tiny_model())  # built once into the local model cache
        teacher, student = args.teacher or tiny, args.student or tiny
    else:
        from verifiers_trainer import default_model_path

        smollm2 = str(default_model_path())
        teacher, student = args.teacher or smollm2, args.student or smollm2
    generations = args.num_generations or (4 if args.tiny else 8)
    length = args.max_completion_length or (12 if args.tiny else 256)
    dataset = arithmetic_dataset(args.difficulty, size=64)

    # Configure training
    config = GRPOConfig(
        output_dir=args.output_dir,
        num_train_epochs=3,
        max_steps=args.max_steps or (2 if args.tiny else 3),
        per_device_train_batch_size=generations,
        num_generations=generations,
        max_prompt_length=512,
        max_completion_length=length,
        max_probe_tokens=8 if args.tiny else 50,
        temperature=0.7,
        beta=0.04,
        logging_steps=1,
        save_strategy="no",
    )

    # Initialize reward
    reward_func = AdaptiveTeachingReward(
        degradation_penalty_multiplier=2.0,
        efficiency_weight=1.0,
    )

    # Create trainer
    trainer = TeacherGRPOTrainer(
        model=teacher,
        student_model=student,
        reward_funcs=[reward_func],
        args=config,
        train_dataset=dataset,
    )

    # Train
    trainer.train()

    for entry in trainer.state.log_history:
        if "teaching/student_accuracy" in entry:
            print(f"step {entry['step']}: reward {entry['reward']:.3f}, student accuracy "
                  f"{entry['teaching/student_accuracy']:.3f} (baseline "
                  f"{entry['teaching/baseline_accuracy']:.3f}), teaching length "
                  f"{entry['teaching/teaching_length']:.1f} tokens")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
