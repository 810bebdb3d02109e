"""Reward functions in EasyDeL's convention (one completion at a time) and TRL's (the whole
round at once), a run in which every reward fails, and EasyDeL's config names."""

from __future__ import annotations

import re

import pytest

from verifiers_trainer import GRPOConfig, GRPOTrainer

pytestmark = pytest.mark.timeout(600)


def gsm8k_like(n=4):
    """EasyDeL's dataset format: a text ``prompt`` and an ``answer``."""
    return [{"prompt": f"Solve this math problem step-by-step: what is {i} + 3?", "answer": str(i + 3)}
            for i in range(n)]


# EasyDeL's tutorial functions, unchanged
def math_problem_reward_function(completion, reference_answer=None):
    """Example reward function that extracts and verifies an answer."""
    try:
        # Extract answer number from completion
        import re

        answer_match = re.search(r"The answer is (\d+)", completion)
        if answer_match:
            extracted_answer = int(answer_match.group(1))

            # Compare with reference if available
            if reference_answer is not None:
                return 1.0 if extracted_answer == reference_answer else 0.0

            # Some other scoring logic when reference not available
            return min(1.0, max(0.0, 0.5))  # Default score
        return 0.0
    except:  # noqa: E722
        return 0.0


def correctness_reward(completion, reference=None):
    # Check if the answer matches the reference
    return 1.0 if reference in completion else 0.0


def reasoning_reward(completion):
    # Score the quality of reasoning in the completion
    if "step 1" in completion.lower() and "therefore" in completion.lower():
        return 0.8  # Good reasoning pattern
    return 0.3  # Lacking clear reasoning


def test_per_completion_functions_are_called_per_completion_with_the_answer_column(tiny, small_args):
    model, tokenizer = tiny
    calls = []

    def spy(completion, reference_answer=None):
        calls.append((completion, reference_answer))
        return float(len(completion) % 2)

    trainer = GRPOTrainer(model=model, reward_funcs=[math_problem_reward_function, correctness_reward,
                                                     reasoning_reward, spy],
                          args=small_args(max_steps=2), train_dataset=gsm8k_like(), processing_class=tokenizer)
    trainer.train()
    assert len(calls) == 16  # 2 rounds x 2 prompts x 4 completions, one call each
    assert all(isinstance(c, str) for c, _ in calls)
    assert {a for _, a in calls} <= {"3", "4", "5", "6"}
    logged = [e for e in trainer.state.log_history if "reward" in e]
    assert len(logged) == 2 and all(e["rollouts/failed"] == 0 for e in logged)
    assert all(e["rewards/reasoning_reward"] == pytest.approx(0.3) for e in logged)
    assert all(e["rewards/correctness_reward"] == 0.0 for e in logged)


def test_a_parameter_no_column_fills_is_refused(tiny, small_args):
    model, tokenizer = tiny

    def needs_difficulty(completion, difficulty):
        return 1.0

    with pytest.raises(TypeError, match="needs 'difficulty', but the dataset has no such column"):
        GRPOTrainer(model, [needs_difficulty], small_args(), gsm8k_like(), processing_class=tokenizer)


def test_batch_functions_are_called_once_per_round_with_all_its_completions(tiny, small_args):
    model, tokenizer = tiny
    sizes = []

    def rank_in_batch(prompts, completions, answer, **kwargs):
        """A batch-relative reward: each completion's length rank in the batch, in [0, 1]."""
        sizes.append((len(prompts), len(completions), len(answer)))
        lengths = [len(c) for c in completions]
        order = sorted(range(len(lengths)), key=lambda i: (lengths[i], i))
        ranks = [0.0] * len(lengths)
        for position, i in enumerate(order):
            ranks[i] = position / (len(lengths) - 1)
        return ranks

    trainer = GRPOTrainer(model=model, reward_funcs=rank_in_batch, args=small_args(max_steps=3),
                          train_dataset=gsm8k_like(), eval_dataset=gsm8k_like(3), processing_class=tokenizer)
    trainer.train()
    assert sizes == [(8, 8, 8)] * 3  # once per round, the round's 8 completions
    rewards = [e["reward"] for e in trainer.state.log_history if "reward" in e]
    assert rewards == pytest.approx([0.5, 0.5, 0.5])  # the mean rank over the whole batch
    sizes.clear()
    metrics = trainer.evaluate()
    assert sizes == [(3, 3, 3)] and metrics["eval_reward"] == pytest.approx(0.5)  # the eval set at once


def test_a_run_in_which_every_reward_fails_stops_with_the_reason(tiny, small_args):
    model, tokenizer = tiny

    def broken(prompts, completions, **kwargs):
        raise KeyError("reference_answer")

    trainer = GRPOTrainer(model=model, reward_funcs=[broken], args=small_args(max_steps=2),
                          train_dataset=gsm8k_like(), processing_class=tokenizer)
    with pytest.raises(RuntimeError, match=r"Every rollout of this generation round failed .*8 reward_error"):
        trainer.train()
    assert trainer.state.global_step == 0


def test_easydel_config_names_map_to_fields(tmp_path):
    config = GRPOConfig(  # EasyDeL's GRPO tutorial's first config
        model_name="GRPOTrainer", learning_rate=1e-6, max_prompt_length=512, max_completion_length=256,
        beta=0.04, sync_ref_model=False, ref_model_mixup_alpha=0.9, ref_model_sync_steps=64,
        dataset_num_proc=None, skip_apply_chat_template=False, total_batch_size=16, num_train_epochs=3,
    )
    assert config.run_name == "GRPOTrainer"
    assert config.per_device_train_batch_size == 16 * config.num_generations  # 16 prompts a step
    config = GRPOConfig(  # its second
        model_name="grpo_math_solver", save_directory=str(tmp_path / "grpo_checkpoints"), beta=0.04,
        max_prompt_length=512, max_completion_length=256, total_batch_size=16, learning_rate=1e-6,
        num_train_epochs=3, use_wandb=True, num_generations=4,
    )
    assert config.output_dir == str(tmp_path / "grpo_checkpoints" / "grpo_math_solver")
    assert config.report_to == ["wandb"] and config.per_device_train_batch_size == 64
    assert GRPOConfig(use_wandb=False).report_to in ("none", [], ["none"])


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"dataset_num_proc": 4}, "does not preprocess the dataset in worker processes"),
    ({"skip_apply_chat_template": True}, "Give the 'prompt' column as strings"),
    ({"save_directory": "a", "output_dir": "b"}, "got both save_directory"),
    ({"total_batch_size": 3, "num_generations": 2, "gradient_accumulation_steps": 4}, "cannot be split"),
    ({"model_nam": "x"}, "Did you mean 'model_name'"),
])
def test_easydel_names_that_cannot_apply_say_why(kwargs, message):
    with pytest.raises((ValueError, TypeError), match=re.escape(message)):
        GRPOConfig(**kwargs)
