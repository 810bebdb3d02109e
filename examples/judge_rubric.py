"""The training guide, "Reinforcement Learning from AI Feedback (RLAIF)": a ``JudgeRubric`` with two
judge models whose scores are averaged, in a ``SingleTurnEnv``; evaluate a policy with it,
then (``--train``) train on the judges' scores with ``GRPOTrainer``.

The guide's ``JudgeRubric(judge_models=["gpt-4", "claude-2"], aggregation="mean",
client=openai_client, template=...)`` is kept as written. Offline, ``openai_client`` talks
to a local scripted server that answers as both judges: it works out the arithmetic
question itself and replies with ``<reasoning>`` and a ``<score>`` from 0 to 10 ("gpt-4" is
strict, "claude-2" lenient, so the mean differs from each). The policy is a scripted
solver that gets some questions wrong. Point either at real endpoints with the flags.

    python examples/judge_rubric.py                        # scripted policy and judges
    python examples/judge_rubric.py --train --tiny         # + 2 GRPO steps on a tiny model
    python examples/judge_rubric.py --judge-base-url http://127.0.0.1:8001/v1 \\
        --judge-models judge-a,judge-b --model my-model --base-url http://127.0.0.1:8000/v1
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import os
import random
import re

import _stand_ins

from verifiers.envs import SingleTurnEnv
from verifiers.rubrics import JudgeRubric


def scripted_judge(request):
    """Both judges: 0-10 for whether the response's last number is the right value."""
    text = request["messages"][-1]["content"]
    question = re.search(r"Question: (.*?)\n", text)
    response = text.split("Response:", 1)[-1].split("Score from", 1)[0]
    numbers = re.findall(r"-?\d+(?:/\d+)?", response)
    try:
        right = str(_stand_ins.exact_value(re.search(r"What is (.+?)\?", question.group(1)).group(1)))
    except (AttributeError, ValueError):
        right = None
    correct = bool(numbers) and numbers[-1] == right
    strict = request["model"] == "gpt-4"
    score = (10 if strict else 9) if correct else (1 if strict else 4)
    verdict = "The final answer is right." if correct else f"The final answer should be {right}."
    return f"<reasoning>\n{verdict}\n</reasoning>\n<score>\n{score}\n</score>"


def addition_dataset(n, seed):
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        a, b = rng.randint(1, 99), rng.randint(1, 99)
        rows.append({"question": f"What is {a} + {b}?", "answer": str(a + b)})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    _stand_ins.add_endpoint_flags(parser)
    parser.add_argument("--judge-base-url", default=None, help="the judges' endpoint")
    parser.add_argument("--judge-models", default="gpt-4,claude-2")
    parser.add_argument("-n", "--num-examples", type=int, default=10)
    parser.add_argument("--train", action="store_true", help="then train with GRPOTrainer")
    parser.add_argument("--tiny", action="store_true", help="train a tiny offline model")
    options = parser.parse_args()
    dataset = addition_dataset(64, seed=0)

    with contextlib.ExitStack() as stack:
        if options.judge_base_url:
            from openai import OpenAI

            key = os.environ.get(options.api_key_var) or "EMPTY"
            openai_client = OpenAI(base_url=options.judge_base_url, api_key=key)
        else:
            from verifiers.testing import ScriptedServer

            judges = stack.enter_context(ScriptedServer(handler=scripted_judge,
                                                        record_requests=False))
            print(f"[local] scripted judges at {judges.base_url}", flush=True)
            openai_client = judges.sync_client()

        # Create judge-based environment
        judge_rubric = JudgeRubric(
            judge_models=options.judge_models.split(","),  # Multiple judges
            aggregation="mean",  # Average scores
            client=openai_client,
            template="""Evaluate this response for helpfulness and accuracy.

Question: {prompt}
Response: {completion}

Score from 0-10 and explain your reasoning.

<reasoning>
[Your evaluation here]
</reasoning>
<score>
[0-10]
</score>""",
        )

        env = SingleTurnEnv(
            dataset=dataset,
            rubric=judge_rubric,
        )

        solver = functools.partial(_stand_ins.arithmetic_solver, wrong_every=4)
        client, model = stack.enter_context(_stand_ins.policy_client(options, solver))
        results = env.evaluate(client, model, num_examples=options.num_examples)
        shown = sorted(zip(results["rewards"], results["states"], strict=True), key=lambda x: x[0])
        for reward, state in shown[:2] + shown[-2:]:
            verdicts = ", ".join(f"{j['model']} {j.get('score', j.get('error'))}" for j in state["judge"])
            print(f"{state['completion'][-1]['content']!r}: reward {reward:.2f} ({verdicts})")
        summary = results.summary()
        print(f"mean judge score {summary['reward']['mean']:.3f} over {summary['reward']['n']} "
              f"rollouts, {summary['num_failed']} failed")

        if options.train:
            train(env, options)


def train(env, options):
    from verifiers.trainers import GRPOConfig, GRPOTrainer

    model = _stand_ins.model_path(options.tiny)  # a path: the trainer loads it and its tokenizer
    config = GRPOConfig(output_dir="outputs/rlaif", batch_size=8, group_size=4, kl_coef=0.1,
                        max_steps=2 if options.tiny else 10, max_new_tokens=32,
                        learning_rate=1e-5, logging_steps=1, report_to="none")

    # Train with AI feedback
    trainer = GRPOTrainer(
        model=model,
        env=env,
        config=config,
    )
    trainer.train()
    for entry in trainer.state.log_history:
        if "reward" in entry:
            print(f"step {entry['step']}: judge reward {entry['reward']:.3f}, "
                  f"failed rollouts {entry['rollouts/failed']:.0f}")


if __name__ == "__main__":
    main()
