"""The training guide's environment and rubric patterns, with the core package alone (no torch):
online generation of scored groups, curriculum data by difficulty, several rubrics with
phase weights (``RubricGroup``), scoring a validation batch, and multi-metric tracking.

The guide wrote these as methods of trainer subclasses (``get_batch``, ``compute_rewards``,
``evaluate``); here they are plain functions over the same calls (``env.rollout``,
``env.rubric.score_rollout_sync``, ``score_rollouts``, ``get_group_weights`` /
``set_group_weights``), which is what such hooks would run. ``GRPOTrainer`` does the online
generation itself every round (see train_custom_env.py for phase weights during training).
The model is a local scripted server that solves the arithmetic questions, wrong on some
on purpose so that rewards differ; ``--model``/``--base-url`` use a real endpoint.

    python examples/rubric_patterns.py
    python examples/rubric_patterns.py --model gpt-4.1-mini            # $OPENAI_API_KEY
    python examples/rubric_patterns.py --model m --base-url http://127.0.0.1:8000/v1
"""

from __future__ import annotations

import argparse
import functools
import time

import _stand_ins
import numpy as np

import verifiers as vf
from verifiers.rubrics import Rubric, RubricGroup


# -- "Online Generation": GRPOTrainer.get_batch in the guide ------------------------------------
def get_batch(env, client, model, batch_size, group_size, temperature):
    """Generate fresh batch of data."""
    # Sample prompts from dataset
    prompts = env.get_dataset(batch_size, seed=0)

    # Generate multiple completions per prompt
    all_completions = []
    all_rewards = []

    for prompt in prompts:
        # Generate group_size completions
        completions = []
        for _ in range(group_size):
            completion, _ = env.rollout(
                client=client,
                model=model,
                prompt=prompt["prompt"],
                answer=prompt["answer"],
                sampling_args={"temperature": temperature},
            )
            completions.append(completion)

        # Score completions
        rewards = []
        for completion in completions:
            score = env.rubric.score_rollout_sync(
                prompt=prompt["prompt"],
                completion=completion,
                answer=prompt["answer"],
                state={},
            )
            rewards.append(score["reward"])

        all_completions.extend(completions)
        all_rewards.extend(rewards)

    return prompts, all_completions, all_rewards


# -- "Curriculum Learning": the schedule and the filtered data ----------------------------------
def get_current_difficulty(difficulty_schedule, progress):
    """Determine current difficulty level."""
    for threshold, difficulty in difficulty_schedule:
        if progress < threshold:
            return difficulty
    return difficulty_schedule[-1][1]


# -- "Multi-Reward Training": reward functions of three objectives ------------------------------
def exact_match_reward(parser, completion, answer):
    return 1.0 if parser.parse_answer(completion) == answer else 0.0


def length_penalty(completion):
    return -min(1.0, len(completion[-1]["content"]) / 1000)


def time_penalty(state):
    return -min(1.0, state.get("timing", {}).get("generation_s", 0.0) / 60)


def clarity_reward(completion):
    return 1.0 if "answer is" in completion[-1]["content"] else 0.0


def formality_reward(completion):
    return 1.0 if completion[-1]["content"][:1].isupper() else 0.0


# -- "Multi-Metric Tracking" --------------------------------------------------------------------
def comprehensive_evaluation(client, model, env, eval_dataset):
    """Evaluate model on multiple metrics."""
    metrics = {
        "reward": [],
        "format_compliance": [],
        "answer_accuracy": [],
        "response_length": [],
        "inference_time": [],
    }

    for sample in eval_dataset:
        start_time = time.time()

        # Generate response
        completion, _ = env.rollout(
            client=client,
            model=model,
            prompt=sample["prompt"],
            answer=sample["answer"],
        )

        # Compute metrics
        scores = env.rubric.score_rollout_sync(
            prompt=sample["prompt"],
            completion=completion,
            answer=sample["answer"],
            state={},
        )

        metrics["reward"].append(scores["reward"])
        metrics["format_compliance"].append(1 - scores.get("format_penalty", 0))
        metrics["answer_accuracy"].append(scores.get("correct_answer", 0))
        metrics["response_length"].append(len(completion[-1]["content"]))
        metrics["inference_time"].append(time.time() - start_time)

    # Aggregate metrics
    return {
        metric: np.mean(values)
        for metric, values in metrics.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    _stand_ins.add_endpoint_flags(parser)
    options = parser.parse_args()
    solver = functools.partial(_stand_ins.arithmetic_solver, wrong_every=3)

    with _stand_ins.policy_client(options, solver) as (client, model):
        env = vf.load_environment("math-python", use_tools=False, num_eval_examples=20)

        print("== online generation: 4 prompts x 4 completions, scored ==")
        prompts, completions, rewards = get_batch(env, client, model, batch_size=4,
                                                  group_size=4, temperature=0.7)
        groups = np.array(rewards).reshape(len(prompts), 4)
        for row, group in zip(prompts, groups, strict=True):
            print(f"  {row['prompt'][-1]['content'][:48]!r:52} rewards {group.tolist()}")

        print("== curriculum: the difficulty at each point of a 3-epoch run ==")
        schedule = [(1.0, "easy"), (2.0, "medium"), (3.0, "hard")]
        for progress in (0.0, 0.5, 1.2, 2.9, 3.5):
            difficulty = get_current_difficulty(schedule, progress)
            filtered_data = [d for d in env.dataset if d.get("difficulty", "easy") == difficulty]
            print(f"  progress {progress:.1f}: {difficulty:6} ({len(filtered_data)} rows)")

        print("== several rubrics, weights per training phase ==")
        correctness_rubric = Rubric(funcs=[exact_match_reward], weights=[1.0],
                                    parser=vf.Parser(extract_fn=vf.extract_boxed_answer))
        efficiency_rubric = Rubric(funcs=[length_penalty, time_penalty], weights=[0.5, 0.5])
        style_rubric = Rubric(funcs=[clarity_reward, formality_reward], weights=[0.7, 0.3])
        combined_rubric = RubricGroup([correctness_rubric, efficiency_rubric, style_rubric])
        rubric_weights_schedule = {0: [1.0, 0.0, 0.0], 1: [1.0, 0.5, 0.2],
                                   "default": [1.0, 0.2, 0.1]}
        row, completion = prompts[0], completions[0]
        for epoch in (0, 1, 2):
            weights = rubric_weights_schedule.get(epoch, rubric_weights_schedule["default"])
            original_weights = combined_rubric.get_group_weights()
            combined_rubric.set_group_weights(weights)
            score = combined_rubric.score_rollout_sync(row["prompt"], completion, row["answer"], {})
            combined_rubric.set_group_weights(original_weights)
            print(f"  epoch {epoch}: weights {weights} -> reward {score['reward']:.3f}")

        print("== validation batch scored with score_rollouts ==")
        eval_rows = env.get_eval_dataset(8)
        states = [{} for _ in range(len(eval_rows))]
        eval_completions = [env.rollout(client=client, model=model, prompt=r["prompt"],
                                        answer=r["answer"])[0] for r in eval_rows]
        scores = env.rubric.score_rollouts(prompts=eval_rows["prompt"],
                                           completions=eval_completions,
                                           answers=eval_rows["answer"], states=states)
        print(f"  Validation reward: {sum(scores['reward']) / len(eval_rows):.4f}")

        print("== multi-metric tracking ==")
        for metric, value in comprehensive_evaluation(client, model, env,
                                                      env.get_eval_dataset(8)).items():
            print(f"  {metric}: {value:.4f}")


if __name__ == "__main__":
    main()
