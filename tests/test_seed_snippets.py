"""The user's documented snippets (seeds 000-002), run as written against a local server.

Differences from the documents, all forced by the machine (no network, no paid API):
``OpenAI()`` is a client of a real local OpenAI-compatible server whose "model" answers the
arithmetic questions; ``dataset_name="math"`` (a hub dataset) becomes the offline arithmetic
set; ``push_to_hub=True`` is not exercised.
"""

import ast
import operator
import re
from fractions import Fraction

import pytest

import verifiers as vf

pytestmark = pytest.mark.integration

_OPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
        ast.Div: operator.truediv, ast.USub: operator.neg, ast.FloorDiv: operator.floordiv,
        ast.Mod: operator.mod, ast.Pow: operator.pow}


def _eval(node):
    if isinstance(node, ast.Expression):
        return _eval(node.body)
    if isinstance(node, ast.Constant):
        return Fraction(node.value)
    if isinstance(node, ast.BinOp):
        return _OPS[type(node.op)](_eval(node.left), _eval(node.right))
    if isinstance(node, ast.UnaryOp):
        return _OPS[type(node.op)](_eval(node.operand))
    raise ValueError(node)


def solver(request):
    """The 'model': reads 'What is <expr>?' and answers in \\boxed{}."""
    question = request["messages"][-1]["content"]
    match = re.search(r"What is (.+?)\?", question)
    if not match:
        return "I do not know."
    expression = match.group(1).replace("×", "*").replace("÷", "/")
    value = _eval(ast.parse(expression, mode="eval"))  # exact: Fractions throughout
    return f"The answer is \\boxed{{{value}}}."


@pytest.fixture
def client(make_scripted_server):
    return make_scripted_server(handler=solver).sync_client()


def test_seed_001_evaluation_and_generation(client, capsys):
    # Create or load environment
    vf_env = vf.load_environment("math-python", dataset_name="arithmetic", num_train_examples=1000)

    # Evaluate model performance
    results = vf_env.evaluate(
        client=client,
        model="gpt-4.1-mini",
        num_examples=100,
        rollouts_per_example=3,
    )

    print(f"Average reward: {sum(results['rewards']) / len(results['rewards'])}")
    print(f"Correct answers: {sum(1 for r in results['rewards'] if r > 0.8)}")

    # Generate training data
    results = vf_env.generate(client=client, model="gpt-4.1-mini", n_samples=1000)

    # Save results for future use
    dataset = vf_env.make_dataset(results, push_to_hub=False, hub_name="my-training-data")

    out = capsys.readouterr().out
    assert "Average reward: 1.0" in out and "Correct answers: 300" in out
    assert len(results["rewards"]) == 1000 and len(dataset) == 1000
    assert set(dataset.column_names) >= {"prompt", "completion", "answer", "reward", "correct_answer"}


def test_seed_002_environments_as_reward_functions(client, tiny_tokenizer):
    vf_env = vf.load_environment("math-python")
    # Generate training data with rewards
    results = vf_env.generate(client=client, model="gpt-4.1-mini", n_samples=50)

    # Process for training
    processed = vf_env.process_env_results(
        prompts=results["prompts"],
        completions=results["completions"],
        states=results["states"],
        rewards=results["rewards"],
        processing_class=tiny_tokenizer,
    )

    # Use in your own training loop
    batches = list(processed)
    assert len(batches) == 50
    for batch in batches:
        assert batch["completion_ids"] and sum(batch["completion_mask"]) > 0
        assert batch["rewards"] == 1.0


def test_seed_002_any_openai_compatible_client(make_scripted_server):
    from openai import OpenAI

    server = make_scripted_server(handler=solver)
    client = OpenAI(base_url=server.base_url, api_key="your-key")
    vf_env = vf.load_environment("math-python", num_eval_examples=10)
    results = vf_env.evaluate(client=client, model="your-model", num_examples=10)
    print(f"Average reward: {sum(results['rewards']) / len(results['rewards'])}")
    assert results["rewards"] == [1.0] * 10


def test_seed_000_rubric_patterns(client):
    """Seed 000: RubricGroup phase weights, sync rollout + score_rollout_sync, score_rollouts."""
    vf_env = vf.load_environment("math-python", use_tools=False)
    row = vf_env.get_dataset()[0]
    completion, _ = vf_env.rollout(client=client, model="gpt-4.1-mini", prompt=row["prompt"],
                                   answer=row["answer"], sampling_args={"temperature": 0.7})
    score = vf_env.rubric.score_rollout_sync(prompt=row["prompt"], completion=completion,
                                             answer=row["answer"], state={})
    assert score["reward"] == 1.0

    rewards = vf_env.rubric.score_rollouts(prompts=[row["prompt"]], completions=[completion],
                                           answers=[row["answer"]], states=[{}])
    assert sum(rewards["reward"]) == 1.0

    def length_penalty(completion):
        return -0.001 * len(completion[-1]["content"])

    combined = vf.RubricGroup([vf_env.rubric, vf.Rubric(funcs=[length_penalty])])
    original = combined.get_group_weights()
    combined.set_group_weights([1.0, 0.0])
    assert combined.score_rollout_sync(row["prompt"], completion, row["answer"], {})["reward"] == 1.0
    combined.set_group_weights(original)
    assert combined.score_rollout_sync(row["prompt"], completion, row["answer"], {})["reward"] < 1.0
