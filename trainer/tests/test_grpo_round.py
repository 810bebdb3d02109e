"""One GRPO round on the tiny model: groups come from the environment's group ids (in any
order, with failed rollouts left out), the token samples keep the prompt that was sampled,
prompts over max_prompt_length are left out before sampling, and zeroed truncated rollouts
train with reward 0."""

from __future__ import annotations

import logging
import random
import statistics

import pytest

import verifiers as vf
from verifiers_trainer import GRPOTrainer

pytestmark = pytest.mark.timeout(600)

BASE = {"alpha": 0.0, "beta": 100.0}  # far apart: a mixed-up group shows at once


class ShuffledFlakyEnv(vf.SingleTurnEnv):
    """Runs the rows it is given in a shuffled order (so its results come back in that
    order), fails the first rollout of the "alpha" prompt, and keeps the last results."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.failed_once = False
        self.last_results = None

    async def a_generate(self, inputs=None, *args, **kwargs):
        rows = list(inputs)
        random.Random(3).shuffle(rows)
        self.last_results = await super().a_generate(rows, *args, **kwargs)
        return self.last_results

    async def rollout(self, client, model, prompt, answer="", *args, **kwargs):
        if answer == "alpha" and not self.failed_once:
            self.failed_once = True
            raise RuntimeError("tool broke")
        return await super().rollout(client, model, prompt, answer, *args, **kwargs)


def spread(completion, answer) -> float:
    """The prompt's base reward plus something that differs between completions."""
    return BASE[answer] + len(completion[-1]["content"] or "") % 5


def two_prompt_env(cls=vf.SingleTurnEnv, question_words=(2, 2)):
    rows = [{"question": " ".join([name] * words), "answer": name}
            for name, words in zip(BASE, question_words, strict=True)]
    return cls(dataset=rows, rubric=vf.Rubric(funcs=[spread]))


def test_advantages_are_computed_within_the_environments_groups(tiny, small_args):
    model, tokenizer = tiny
    env = two_prompt_env(ShuffledFlakyEnv)
    trainer = GRPOTrainer(model=model, processing_class=tokenizer, env=env,
                          args=small_args(scale_rewards="none", max_completion_length=6))
    round_ = trainer._generate_round()
    results = env.last_results

    # the rows' group ids and rollout indices survive generation (not reset to 0)
    ids = results["example_ids"]
    assert len(set(ids)) == 2 and all(i.endswith((":1:0", ":1:1")) for i in ids)
    if "group_ids" in results:  # typed records: the group id is the example id the rows set
        assert results["group_ids"] == ids
    for group in set(ids):
        assert sorted(r for i, r in zip(ids, results["rollout_indices"]) if i == group) == [0, 1, 2, 3]
    positional = [ids[i * 4:(i + 1) * 4] for i in range(2)]
    assert any(len(set(part)) > 1 for part in positional), "results should come back out of group order"

    # one failed rollout: left out of its group, the other seven trained
    failed = [e is not None for e in results["errors"]]
    assert sum(failed) == 1
    assert round_.metrics["rollouts/failed"] == 1.0
    assert len(round_.samples) == 7

    usable = {}
    for answer, reward, bad in zip(results["answers"], results["rewards"], failed, strict=True):
        if not bad:
            usable.setdefault(answer, []).append(reward)
    assert len(usable["alpha"]) == 3 and len(usable["beta"]) == 4
    for sample in round_.samples:
        answer = "alpha" if "alpha" in tokenizer.decode(sample.prompt_ids) else "beta"
        expected = sample.reward - statistics.fmean(usable[answer])
        assert sample.advantage == pytest.approx(expected, abs=1e-6)
        assert abs(sample.advantage) < 5  # within its own group, never across the two


def test_samples_keep_the_sampled_prompt_and_long_prompts_are_left_out_before(tiny, small_args, caplog):
    model, tokenizer = tiny
    env = two_prompt_env(question_words=(2, 60))  # "beta" repeated: a long prompt
    lengths = {}
    for row in env.get_dataset():
        ids = tokenizer.apply_chat_template(row["prompt"], tokenize=True, add_generation_prompt=True)
        lengths[row["answer"]] = len(ids["input_ids"] if hasattr(ids, "keys") else ids)
    limit = lengths["alpha"] + 1
    assert lengths["beta"] > limit
    trainer = GRPOTrainer(model=model, processing_class=tokenizer, env=env,
                          args=small_args(max_prompt_length=limit))
    with caplog.at_level(logging.WARNING):
        round_ = trainer._generate_round()
    assert "1 of 2 prompts have more than max_prompt_length" in caplog.text
    assert round_.metrics["rollouts/prompt_too_long"] == 4.0  # its four rollouts, never sampled
    assert len(round_.samples) == 4
    for sample in round_.samples:  # the prompt the server rendered, whole
        assert len(sample.prompt_ids) == lengths["alpha"]
        assert "alpha" in tokenizer.decode(sample.prompt_ids)

    too_short = GRPOTrainer(model=model, processing_class=tokenizer, env=env,
                            args=small_args(max_prompt_length=lengths["alpha"] - 1))
    with pytest.raises(ValueError, match="Every prompt of this round is longer than max_prompt_length"):
        too_short._generate_round()


def test_zeroed_truncated_rollouts_train_with_reward_zero(tiny, small_args):
    model, tokenizer = tiny
    # 2 tokens per completion: every rollout stops at the token limit (truncated)
    args = dict(scale_rewards="none", max_completion_length=2)
    plain = GRPOTrainer(model=model, processing_class=tokenizer, env=two_prompt_env(),
                        args=small_args(**args))._generate_round()
    assert any(s.advantage != 0 for s in plain.samples)
    zeroed = GRPOTrainer(model=model, processing_class=tokenizer, env=two_prompt_env(),
                         args=small_args(zero_truncated_completions=True, **args))._generate_round()
    assert len(zeroed.samples) == 8
    assert all(s.reward == 0.0 and s.advantage == 0.0 for s in zeroed.samples)
