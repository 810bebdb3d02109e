"""Documented forms that need more than the defaults: a length in epochs, a tokenizer found next to
the model, periodic evaluation, rounds spanning optimizer steps, failure reasons logged."""

from __future__ import annotations

import pytest

import verifiers as vf
from verifiers_trainer import GRPOTrainer

pytestmark = pytest.mark.timeout(600)


def env_of(n=6, eval_n=0, fail_every=0):
    calls = {"n": 0}

    def reward(completion) -> float:
        calls["n"] += 1
        if fail_every and calls["n"] % fail_every == 0:
            raise RuntimeError("judge unavailable")
        return float(len(completion[-1]["content"] or "") % 3)

    rows = [{"question": f"def k_{i}(x):", "answer": ""} for i in range(n)]
    return vf.SingleTurnEnv(dataset=rows, eval_dataset=rows[:eval_n] or None,
                            rubric=vf.Rubric(funcs=[reward]))


def test_length_in_epochs(tiny, small_args):
    model, tokenizer = tiny
    args = small_args(max_steps=-1, num_epochs=2)  # verifiers 0.1.x's name; 6 rows, 2 a step
    trainer = GRPOTrainer(model=model, tokenizer=tokenizer, env=env_of(), config=args)
    assert args.max_steps == 6 and trainer.num_steps_per_epoch == 3
    with pytest.raises(ValueError, match="Give the training length"):
        GRPOTrainer(model=model, tokenizer=tokenizer, env=env_of(),
                    config=small_args(max_steps=-1, num_train_epochs=0))


def test_tokenizer_loaded_from_the_model_folder(tiny, tmp_path, small_args):
    model, _ = tiny
    trainer = GRPOTrainer(model=model, env=env_of(), args=small_args())
    assert trainer.processing_class.pad_token_id is not None
    model.config._name_or_path = str(tmp_path / "nowhere")
    with pytest.raises(TypeError, match="needs a tokenizer: none was given and none could be loaded"):
        GRPOTrainer(model=model, env=env_of(), args=small_args())


def test_env_data_given_twice_is_refused(tiny, small_args):
    model, tokenizer = tiny
    with pytest.raises(TypeError, match="the training data comes from the environment"):
        GRPOTrainer(model=model, processing_class=tokenizer, env=env_of(), args=small_args(),
                    train_dataset=[{"question": "q", "answer": "a"}])
    with pytest.raises(TypeError, match="has an eval dataset already"):
        GRPOTrainer(model=model, processing_class=tokenizer, env=env_of(eval_n=2), args=small_args(),
                    eval_dataset=[{"question": "q", "answer": "a"}])


def test_eval_dataset_next_to_an_environment_without_one(tiny, small_args):
    """The training guide's full script: GRPOTrainer(..., env=env, config=config,
    eval_dataset=...) evaluates on that set."""
    model, tokenizer = tiny
    trainer = GRPOTrainer(model=model, tokenizer=tokenizer, env=env_of(), config=small_args(),
                          eval_dataset=[{"question": f"def e_{i}():", "answer": ""} for i in range(3)])
    assert len(trainer.env.eval_dataset) == 3
    assert trainer.env.eval_dataset[0]["prompt"][-1]["content"] == "def e_0():"
    metrics = trainer.evaluate()
    assert metrics["eval_failed"] == 0 and "eval_reward" in metrics


def test_periodic_evaluation_through_the_environment(tiny, small_args):
    model, tokenizer = tiny
    args = small_args(max_steps=4, eval_strategy="steps", eval_steps=2)
    trainer = GRPOTrainer(model=model, processing_class=tokenizer, env=env_of(eval_n=3), args=args)
    trainer.train()
    evals = [e for e in trainer.state.log_history if "eval_reward" in e]
    assert [e["step"] for e in evals] == [2, 4]
    assert all("eval_reward" in e and e["eval_failed"] == 0 for e in evals)
    with pytest.raises(ValueError, match="the environment has no eval dataset"):
        GRPOTrainer(model=model, processing_class=tokenizer, env=env_of(),
                    args=small_args(eval_strategy="steps", eval_steps=2))


def test_generation_rounds_spanning_two_steps(tiny, small_args):
    model, tokenizer = tiny
    args = small_args(max_steps=4, generation_batch_size=16)  # 2 steps a round
    trainer = GRPOTrainer(model=model, processing_class=tokenizer, env=env_of(), args=args)
    assert trainer.prompts_per_round == 4 and trainer.num_steps_per_epoch == 3
    trainer.train()
    history = trainer.state.log_history
    assert len([e for e in history if "timing/generation_s" in e]) == 2  # rounds at steps 1, 3
    assert len([e for e in history if "loss" in e]) == 4


def test_failure_reasons_are_logged(tiny, caplog, small_args):
    model, tokenizer = tiny
    trainer = GRPOTrainer(model=model, processing_class=tokenizer, env=env_of(fail_every=5),
                          args=small_args(max_steps=2))
    with caplog.at_level("WARNING"):
        trainer.train()
    failed = [e for e in trainer.state.log_history if e.get("rollouts/failed")]
    assert failed and all(k.startswith("rollouts/failed/") for e in failed for k in e
                          if k.startswith("rollouts/failed/"))
    assert any(any(k.startswith("rollouts/failed/") for k in e) for e in failed)
    assert "rollouts failed this round" in caplog.text and "judge unavailable" in caplog.text
