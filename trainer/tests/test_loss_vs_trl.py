"""Our GRPO loss and gradient equal TRL 1.16's ``GRPOTrainer._compute_loss`` with gradient
accumulation, for every loss_type, and with the KL term (bias correction on and off); dapo's
normaliser is the optimizer step's trained tokens (one process here; two processes in
test_loss_vs_trl_dp.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent / "scripts"))
import loss_reference as ref

pytestmark = pytest.mark.timeout(600)
pytest.importorskip("trl")

TOLERANCE = 1e-6


@pytest.fixture(scope="module")
def questions(tiny_model_path):
    from transformers import AutoTokenizer

    return ref.equal_length_questions(AutoTokenizer.from_pretrained(tiny_model_path), 16)


def compare(tiny_model_path, tmp_path, questions, **settings):
    settings = dict(per_device_train_batch_size=4, num_generations=4, gradient_accumulation_steps=2,
                    **settings)
    ours, start, our_grads = ref.our_step(str(tiny_model_path), str(tmp_path / "ours"), settings,
                                          questions)
    trl = ref.trl_trainer(str(tiny_model_path), str(tmp_path / "trl"), settings, questions)
    batches = ours._buffer
    assert len(batches) == 2 and all(batches)
    # TRL's num_items_in_batch: the generation batch's trained tokens (one process)
    num_items = sum(b["completion_mask"].sum() for b in batches)
    trl_losses, trl_grads = ref.trl_step(trl, batches, num_items)
    whole, per_tensor = ref.relative_differences(our_grads, trl_grads)
    assert whole < TOLERANCE and per_tensor < TOLERANCE, (whole, per_tensor)
    our_losses = ref.our_losses(ours, start)
    # on-policy with beta=0 the loss is ~0 (advantages centred), so also an absolute bound
    assert our_losses == pytest.approx(trl_losses, rel=TOLERANCE, abs=1e-7)
    return ours, batches


@pytest.mark.parametrize("loss_type", ["grpo", "bnpo", "dr_grpo", "dapo"])
def test_loss_and_gradient_equal_trl_with_accumulation(tiny_model_path, tmp_path, questions, loss_type):
    ours, batches = compare(tiny_model_path, tmp_path, questions, loss_type=loss_type, beta=0.0)
    if loss_type == "dapo":  # the normaliser: both micro-batches' tokens, not each one's own
        counts = [float(b["completion_mask"].sum()) for b in batches]
        assert ours._step_tokens == [sum(counts)] * 2
        assert counts[0] != counts[1]  # so a per-micro-batch mean would weigh tokens unequally


@pytest.mark.parametrize("loss_type", ["dapo", "bnpo"])
@pytest.mark.parametrize("correction", [True, False])
def test_kl_term_equals_trl_with_and_without_bias_correction(tiny_model_path, tmp_path, questions,
                                                             loss_type, correction):
    compare(tiny_model_path, tmp_path, questions, loss_type=loss_type, beta=0.04,
            use_bias_correction_kl=correction)


def test_bias_correction_is_on_by_default_as_in_trl():
    import dataclasses

    import trl

    from verifiers_trainer import GRPOConfig

    def default(cls):
        return {f.name: f.default for f in dataclasses.fields(cls)}["use_bias_correction_kl"]

    assert default(GRPOConfig) is default(trl.GRPOConfig) is True
    assert GRPOConfig(output_dir="unused").use_bias_correction_kl is True
    with pytest.raises(ValueError, match="use_bias_correction_kl must be True or False"):
        GRPOConfig(output_dir="unused", use_bias_correction_kl="yes")


def test_dapo_step_tokens_per_layout():
    from verifiers_trainer.grpo.math import dapo_step_tokens

    # a round of one optimizer step (2 micro-batches): each micro-step gets the step's total
    assert dapo_step_tokens([3, 5], 0, 1, 2) == [8, 8]
    # two passes over the round (num_iterations=2): the same counts again, one step each
    assert dapo_step_tokens([3, 5], 0, 2, 2) == [8, 8, 8, 8]
    # a round spanning two optimizer steps: each step its own tokens
    assert dapo_step_tokens([3, 5, 6, 1], 0, 1, 2) == [8, 8, 7, 7]
    # a round of half an optimizer step: its tokens scaled to a whole step (TRL's estimate)
    assert dapo_step_tokens([3, 5], 2, 1, 4) == [16, 16]
    # a round misaligned with the steps: micro-steps 2..4, steps {2, 3} and {4}
    assert dapo_step_tokens([3, 5, 6], 2, 1, 2) == [8, 8, 12]
    with pytest.raises(ValueError, match="accumulation_steps"):
        dapo_step_tokens([1], 0, 1, 0)


def test_dapo_loss_needs_the_step_token_count(tiny, small_args):
    import verifiers as vf
    from verifiers_trainer import GRPOTrainer

    model, tokenizer = tiny
    env = vf.SingleTurnEnv(dataset=[{"question": "def f():"}] * 4,
                           rubric=vf.Rubric(funcs=[ref.length_reward]))
    trainer = GRPOTrainer(model=model, processing_class=tokenizer, env=env,
                          args=small_args(loss_type="dapo"))
    trainer._fill_buffer()
    batch = trainer._buffer[0]
    with pytest.raises(ValueError, match="num_items_in_batch"):
        trainer.compute_loss(trainer.model, batch)
    assert torch.isfinite(trainer.compute_loss(trainer.model, trainer._prepare_inputs(None)))
