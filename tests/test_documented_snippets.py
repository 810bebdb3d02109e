"""The documented snippets (verifiers 0.1.x's training guide, its evaluation and its
environment docs), run as written against a local server.

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


def test_evaluation_docs_evaluation_and_generation(client, capsys):
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


def test_environment_docs_environments_as_reward_functions(client, tiny_tokenizer):
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


def test_environment_docs_any_openai_compatible_client(make_scripted_server):
    from openai import OpenAI

    server = make_scripted_server(handler=solver)
    client = OpenAI(base_url=server.base_url, api_key="your-key")
    vf_env = vf.load_environment("math-python", num_eval_examples=10)
    results = vf_env.evaluate(client=client, model="your-model", num_examples=10)
    print(f"Average reward: {sum(results['rewards']) / len(results['rewards'])}")
    assert results["rewards"] == [1.0] * 10


def test_training_guide_rubric_patterns(client):
    """The training guide: RubricGroup phase weights, sync rollout + score_rollout_sync, score_rollouts."""
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


# ---------------------------------------------------------------------------------------
# The training guide: generation, rubrics, judges and evaluation
# ---------------------------------------------------------------------------------------
# The documents' `env` is a SingleTurnEnv with XMLParser(["reasoning", "answer"]); here its
# "model" is a scripted server that answers the arithmetic questions in that format. Calls
# without a client reach it through OPENAI_BASE_URL / OPENAI_API_KEY (the endpoint
# substituted), as they would reach api.openai.com.


def xml_solver(request):
    boxed = solver(request)
    match = re.search(r"\\boxed\{(.+?)\}", boxed)
    if match is None:
        return "<reasoning>\nI cannot tell.\n</reasoning>\n<answer>\n?\n</answer>"
    return f"<reasoning>\nI worked it out.\n</reasoning>\n<answer>\n{match.group(1)}\n</answer>"


def arithmetic_rows(n):
    return [{"question": f"What is {i} + {i + 1}?", "answer": str(2 * i + 1)} for i in range(n)]


@pytest.fixture
def xml_server(make_scripted_server, monkeypatch):
    server = make_scripted_server(handler=xml_solver)
    monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
    monkeypatch.setenv("OPENAI_API_KEY", "local")
    return server


def xml_math_env(n=40, **kwargs):
    from verifiers.envs import SingleTurnEnv
    from verifiers.parsers import XMLParser
    from verifiers.rubrics import Rubric

    parser = XMLParser(["reasoning", "answer"])

    def correct_answer(completion, answer, parser):
        return 1.0 if parser.parse_answer(completion) == answer else 0.0

    def format(completion, parser):  # the documents read scores.get("format")
        return parser.get_format_reward_func()(completion)

    custom_rubric = Rubric(funcs=[correct_answer, format], weights=[1.0, 0.2], parser=parser)
    return SingleTurnEnv(dataset=arithmetic_rows(n), parser=parser, rubric=custom_rubric, **kwargs)


def test_training_guide_online_generation(xml_server):
    from types import SimpleNamespace

    pytest.importorskip("verifiers_trainer")
    from verifiers.trainers import GRPOTrainer

    class OnlineGRPOTrainer(GRPOTrainer):
        def get_batch(self):
            """Generate fresh batch of data."""
            # Sample prompts from dataset
            prompts = self.env.sample_prompts(self.config.batch_size)

            # Generate multiple completions per prompt
            all_completions = []
            all_rewards = []

            for prompt in prompts:
                # Generate group_size completions
                completions = []
                for _ in range(self.config.group_size):
                    completion, _ = self.env.rollout(
                        client=self.client,
                        model=self.model,
                        prompt=prompt["prompt"],
                        answer=prompt["answer"],
                        temperature=self.config.temperature
                    )
                    completions.append(completion)

                # Score completions
                rewards = []
                for completion in completions:
                    score = self.env.rubric.score_rollout_sync(
                        prompt=prompt["prompt"],
                        completion=completion,
                        answer=prompt["answer"],
                        state={}
                    )
                    rewards.append(score["reward"])

                all_completions.extend(completions)
                all_rewards.extend(rewards)

            return prompts, all_completions, all_rewards

    trainer_like = SimpleNamespace(  # the attributes get_batch reads from the trainer
        env=xml_math_env(), client=xml_server.sync_client(), model="gpt-3.5-turbo",
        config=SimpleNamespace(batch_size=4, group_size=2, temperature=0.7))
    prompts, completions, rewards = OnlineGRPOTrainer.get_batch(trainer_like)
    assert len(prompts) == 4 and len(completions) == 8
    assert rewards == [1.2] * 8
    assert {r["temperature"] for r in xml_server.requests} == {0.7}


def test_training_guide_offline_generation(xml_server, tmp_path, monkeypatch):
    torch = pytest.importorskip("torch")
    monkeypatch.chdir(tmp_path)
    env = xml_math_env(n=300)

    # Generate dataset
    print("Generating training data...")
    prompts, completions, rewards = env.generate(
        model="gpt-3.5-turbo",
        n_samples=10000,
        temperature=0.8,
        batch_size=100,
        max_concurrent=10
    )

    # Save for training
    dataset = {
        "prompts": prompts,
        "completions": completions,
        "rewards": rewards
    }
    torch.save(dataset, "training_data.pt")

    assert len(rewards) == 300 and rewards == [1.2] * 300  # the dataset has 300 rows
    assert torch.load("training_data.pt")["completions"][0][0]["role"] == "assistant"
    assert xml_server.stats["max_in_flight"] <= 10
    assert {r["temperature"] for r in xml_server.requests} == {0.8}


def test_training_guide_multi_reward_rubric_group(xml_server):
    from verifiers.rubrics import Rubric, RubricGroup

    parser = vf.XMLParser(["reasoning", "answer"])

    def exact_match_reward(completion, answer):
        return 1.0 if parser.parse_answer(completion) == answer else 0.0

    def length_penalty(completion):
        return -len(completion[-1]["content"]) / 1000

    def time_penalty(state):
        return -state.get("timing", {}).get("generation_s", 0.0)

    def clarity_reward(completion):
        return 1.0 if "worked it out" in completion[-1]["content"] else 0.0

    def formality_reward(completion):
        return 0.5

    # Create multiple rubrics for different objectives
    correctness_rubric = Rubric(
        funcs=[exact_match_reward],
        weights=[1.0]
    )

    efficiency_rubric = Rubric(
        funcs=[length_penalty, time_penalty],
        weights=[0.5, 0.5]
    )

    style_rubric = Rubric(
        funcs=[clarity_reward, formality_reward],
        weights=[0.7, 0.3]
    )

    # Combine with weights
    combined_rubric = RubricGroup([
        correctness_rubric,  # Most important
        efficiency_rubric,   # Secondary
        style_rubric        # Least important
    ])

    env = vf.SingleTurnEnv(dataset=arithmetic_rows(4), parser=parser, rubric=combined_rubric)
    weights = [1.0, 0.0, 0.0]
    # Temporarily update rubric weights
    original_weights = env.rubric.get_group_weights()
    env.rubric.set_group_weights(weights)
    focused = env.evaluate(xml_server.client(), "gpt-4.1-mini")
    # Restore weights
    env.rubric.set_group_weights(original_weights)
    mixed = env.evaluate(xml_server.client(), "gpt-4.1-mini")
    assert focused["rewards"] == [1.0] * 4
    assert all(1.0 < r < 1.0 + 0.7 + 0.15 for r in mixed["rewards"])


def test_training_guide_judge_rubric(xml_server, make_scripted_server):
    from openai import OpenAI

    from verifiers.envs import SingleTurnEnv
    from verifiers.rubrics import JudgeRubric

    judge = make_scripted_server(handler=lambda r: "<reasoning>\nClear and right.\n</reasoning>\n<score>\n8\n</score>")
    openai_client = OpenAI(base_url=judge.base_url, api_key="judge-key")
    dataset = arithmetic_rows(3)

    # Create judge-based environment
    judge_rubric = JudgeRubric(
        judge_models=["gpt-4", "claude-2"],  # Multiple judges
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
</score>"""
    )

    env = SingleTurnEnv(
        dataset=dataset,
        rubric=judge_rubric
    )

    results = env.evaluate(xml_server.client(), "gpt-4.1-mini")
    assert results["errors"] == [None] * 3
    assert results["rewards"] == pytest.approx([0.8] * 3)
    assert sorted({r["model"] for r in judge.requests}) == ["claude-2", "gpt-4"]
    assert "Question: What is 0 + 1?" in judge.requests[0]["messages"][-1]["content"]


def test_training_guide_periodic_evaluation(xml_server):
    from types import SimpleNamespace

    torch = pytest.importorskip("torch")
    env = xml_math_env(n=6)

    class EvaluatingGRPOTrainer:  # the documents subclass GRPOTrainer; only evaluate runs here
        def evaluate(self):
            """Run evaluation on validation set."""
            self.model.eval()
            total_reward = 0
            num_samples = 0

            with torch.no_grad():
                for batch in self.eval_dataloader:
                    prompts = batch["prompts"]
                    answers = batch["answers"]

                    # Generate completions
                    completions = self.generate(prompts)

                    # Score with rubric
                    rewards = self.env.rubric.score_rollouts(
                        prompts=prompts,
                        completions=completions,
                        answers=answers,
                        states=[{} for _ in prompts]
                    )

                    total_reward += sum(rewards["reward"])
                    num_samples += len(prompts)

            avg_reward = total_reward / num_samples
            print(f"Validation reward: {avg_reward:.4f}")

            self.model.train()
            return avg_reward

    rows = env.get_dataset().to_list()
    client = xml_server.sync_client()
    trainer = SimpleNamespace(
        model=torch.nn.Linear(2, 2), env=env,
        eval_dataloader=[{"prompts": [r["prompt"] for r in rows[i:i + 3]],
                          "answers": [r["answer"] for r in rows[i:i + 3]]} for i in (0, 3)],
        generate=lambda prompts: [env.rollout(client=client, model="gpt-4.1-mini", prompt=p)[0]
                                  for p in prompts])
    assert EvaluatingGRPOTrainer.evaluate(trainer) == pytest.approx(1.2)
    assert trainer.model.training


def test_training_guide_multi_metric_tracking(xml_server):
    import time

    import numpy as np

    def comprehensive_evaluation(model, env, eval_dataset):
        """Evaluate model on multiple metrics."""
        metrics = {
            "reward": [],
            "format_compliance": [],
            "answer_accuracy": [],
            "response_length": [],
            "inference_time": []
        }

        for sample in eval_dataset:
            start_time = time.time()

            # Generate response
            completion, _ = env.rollout(
                model=model,
                prompt=sample["prompt"],
                answer=sample["answer"]
            )

            # Compute metrics
            scores = env.rubric.score_rollout_sync(
                prompt=sample["prompt"],
                completion=completion,
                answer=sample["answer"],
                state={}
            )

            metrics["reward"].append(scores["reward"])
            metrics["format_compliance"].append(scores.get("format", 0))
            metrics["answer_accuracy"].append(scores.get("correct_answer", 0))
            metrics["response_length"].append(len(completion))
            metrics["inference_time"].append(time.time() - start_time)

        # Aggregate metrics
        return {
            metric: np.mean(values)
            for metric, values in metrics.items()
        }

    env = xml_math_env(n=5)
    summary = comprehensive_evaluation("gpt-4.1-mini", env, env.get_dataset())
    assert summary["reward"] == pytest.approx(1.2)
    assert summary["format_compliance"] == 1.0 and summary["answer_accuracy"] == 1.0
    assert summary["response_length"] == 1.0 and len(xml_server.requests) == 5


def test_environment_docs_eval_split(client):
    env = vf.load_environment("math-python", eval_split="test")
    results = env.evaluate(client=client, model="gpt-4.1-mini", num_examples=5)
    assert results["rewards"] == [1.0] * 5
