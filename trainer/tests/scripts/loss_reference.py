"""One optimizer step of our GRPOTrainer next to TRL 1.16's ``GRPOTrainer._compute_loss`` on
the same micro-batches, for test_loss_vs_trl.py and the two-process run in
loss_vs_trl_dp.py.

Ours runs for real (``Trainer.train``, one optimizer step: generation round with the
in-process engine, gradient accumulation, data parallel under torchrun); its gradient is
read just before the optimizer step. TRL's trainer is built on a second copy of the same
weights and its ``_compute_loss`` is called on our round's micro-batches (prompt and
completion tokens, advantages, reference log-probs) with ``num_items_in_batch`` computed as
TRL computes it (the generation batch's trained tokens summed over processes). Prompts all
have the same token length, so no row is left-padded and both trainers score the same
positions.
"""

from __future__ import annotations

from typing import Any

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback

import verifiers as vf
from verifiers_trainer import GRPOConfig, GRPOTrainer

DTYPE = torch.float64  # TRL's fused log-prob kernel accumulates in float32 (~5e-7 apart)


def equal_length_questions(tokenizer: Any, count: int) -> list[str]:
    """``count`` questions whose chat prompts have the same number of tokens."""
    by_length: dict[int, list[str]] = {}
    for i in range(2000):
        question = f"def task_{i}(x):"
        text = tokenizer.apply_chat_template([{"role": "user", "content": question}],
                                             add_generation_prompt=True, tokenize=False)
        by_length.setdefault(len(tokenizer(text).input_ids), []).append(question)
    best = max(by_length.values(), key=len)
    assert len(best) >= count, "not enough prompts of one length"
    return best[:count]


def length_reward(completion: Any, **_: Any) -> float:
    """A reward that varies within a group: the completion's length modulo 3."""
    text = completion[-1]["content"] if isinstance(completion, list) else str(completion)
    return float(len(text) % 3)


def perturb(model: Any, tokenizer: Any, seed: int = 1, scale: float = 0.02, boost: float = 12.0) -> None:
    """Move every weight by seeded noise (the same on every copy), so that the policy differs
    from the reference and the KL term has a gradient; and make the end-of-turn token likely
    (its output row gains the mean final hidden state's direction), so that completions end at
    different lengths and micro-batches hold different numbers of tokens."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(scale * torch.randn(p.shape, generator=generator, dtype=p.dtype))
        ids = torch.arange(3, 67).unsqueeze(0)
        hidden = model.model(input_ids=ids).last_hidden_state[0]
        direction = hidden.mean(0)
        eos = tokenizer.convert_tokens_to_ids("<|im_end|>")
        model.get_output_embeddings().weight[eos] += boost * direction / direction.norm() ** 2


class _Gradients(TrainerCallback):
    """The gradient of the first optimizer step, after accumulation and data parallel
    averaging (clipping off)."""

    def __init__(self) -> None:
        self.grads: dict[str, torch.Tensor] = {}

    def on_pre_optimizer_step(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if not self.grads:
            self.grads = {n: p.grad.detach().clone() for n, p in kwargs["model"].named_parameters()
                          if p.grad is not None}


def our_step(model_path: str, out: str, settings: dict[str, Any], questions: list[str]
             ) -> tuple[GRPOTrainer, dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """Train our GRPOTrainer one optimizer step; return the trainer (its round's micro-batches
    are in ``trainer._buffer``), the starting weights and the step's gradient."""
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    model = AutoModelForCausalLM.from_pretrained(model_path, dtype=DTYPE)
    env = vf.SingleTurnEnv(dataset=[{"question": q} for q in questions],
                           rubric=vf.Rubric(funcs=[length_reward]))
    args = GRPOConfig(output_dir=out, max_steps=1, max_completion_length=8, max_prompt_length=64,
                      temperature=1.0, learning_rate=1e-3, warmup_steps=0, max_grad_norm=0.0,
                      logging_steps=1, save_strategy="no", report_to="none", seed=0,
                      use_cpu=True, sampler_correction_cap=None, **settings)
    # (TRL reweights by the sampler's log-probs only when vLLM samples: off here as well)
    gradients = _Gradients()
    trainer = GRPOTrainer(model=model, processing_class=tokenizer, env=env, args=args,
                          callbacks=[gradients])
    perturb(trainer.model, tokenizer)  # after the reference copy: policy != reference
    start = {n: p.detach().clone() for n, p in trainer.model.named_parameters()}
    trainer.train()
    assert all(not b or bool(b["prompt_mask"].all()) for b in trainer._buffer), "left padding"
    return trainer, start, gradients.grads


def trl_trainer(model_path: str, out: str, settings: dict[str, Any], questions: list[str]) -> Any:
    """TRL 1.16's GRPOTrainer on a perturbed copy of the weights, in train mode, float64."""
    import trl
    from datasets import Dataset

    tokenizer = AutoTokenizer.from_pretrained(model_path)
    model = AutoModelForCausalLM.from_pretrained(model_path, dtype=DTYPE)
    perturb(model, tokenizer)
    args = trl.GRPOConfig(output_dir=out, max_steps=1, max_completion_length=8, temperature=1.0,
                          bf16=False, report_to="none", save_strategy="no", seed=0,
                          use_cpu=True, **settings)
    trainer = trl.GRPOTrainer(model=model, reward_funcs=length_reward, args=args,
                              train_dataset=Dataset.from_dict({"prompt": questions}),
                              processing_class=tokenizer)
    trainer.model.train()
    trainer.current_gradient_accumulation_steps = args.gradient_accumulation_steps
    return trainer


def trl_inputs(batch: dict[str, torch.Tensor], num_items_in_batch: torch.Tensor) -> dict[str, Any]:
    """One of our micro-batches in TRL's names: its ``completion_mask`` is the attention over
    the completion, its ``tool_mask`` the tokens trained on."""
    inputs = {
        "prompt_ids": batch["prompt_ids"], "prompt_mask": batch["prompt_mask"],
        "completion_ids": batch["completion_ids"], "completion_mask": batch["completion_attention"],
        "tool_mask": batch["completion_mask"].long(), "advantages": batch["advantages"].to(DTYPE),
        "num_items_in_batch": num_items_in_batch,
    }
    if "ref_logps" in batch:
        inputs["ref_per_token_logps"] = batch["ref_logps"]
    return inputs


def trl_step(trainer: Any, batches: list[dict[str, torch.Tensor]], num_items_in_batch: torch.Tensor
             ) -> tuple[list[float], dict[str, torch.Tensor]]:
    """TRL's losses on ``batches`` (one accumulation window of this process) and the summed
    gradient of their backward passes (TRL scales its loss for accumulation itself)."""
    trainer.model.zero_grad()
    losses = []
    for batch in batches:
        loss = trainer._compute_loss(trainer.model, trl_inputs(batch, num_items_in_batch))
        loss.backward()
        losses.append(loss.item())
    grads = {n: p.grad.detach().clone() for n, p in trainer.model.named_parameters()
             if p.grad is not None}
    return losses, grads


def relative_differences(ours: dict[str, torch.Tensor], reference: dict[str, torch.Tensor]
                         ) -> tuple[float, float]:
    """``(whole, per_tensor)``: ``||g - g_ref|| / ||g_ref||`` over the whole gradient, and its
    largest value over the weight tensors."""
    assert set(ours) == set(reference), set(ours) ^ set(reference)
    worst, squared, total = 0.0, 0.0, 0.0
    for name, want in reference.items():
        gap, norm = (ours[name] - want).norm().item(), want.norm().item()
        squared, total = squared + gap ** 2, total + norm ** 2
        if norm > 0:
            worst = max(worst, gap / norm)
    return (squared / total) ** 0.5, worst


def our_losses(trainer: GRPOTrainer, start: dict[str, torch.Tensor]) -> list[float]:
    """Our loss on each micro-batch of the round at the starting weights, as the Trainer
    back-propagates it (``compute_loss`` divided by the accumulation steps)."""
    with torch.no_grad():
        for name, p in trainer.model.named_parameters():
            p.copy_(start[name])
    accumulation = trainer.args.gradient_accumulation_steps
    losses = []
    with torch.no_grad():
        for j, batch in enumerate(trainer._buffer):
            if trainer._step_tokens:
                batch = {**batch, "num_items_in_batch": trainer._step_tokens[j]}
            losses.append(trainer.compute_loss(trainer.model, batch).item() / accumulation)
    return losses
