"""Each distinct prompt computed once in the training forward: the log-probs and the gradients
must equal those of the plain forward over every row."""

from __future__ import annotations

import pytest
import torch

from verifiers_trainer.grpo.batching import Sample, collate
from verifiers_trainer.grpo.math import selective_log_softmax
from verifiers_trainer.grpo.shared_prompts import prompt_groups, shared_prompt_logps


def plain_logps(model, batch, temperature):
    completion_len = batch["completion_ids"].shape[1]
    ids = torch.cat([batch["prompt_ids"], batch["completion_ids"]], dim=1)
    mask = torch.cat([batch["prompt_mask"], batch["completion_attention"]], dim=1)
    positions = (mask.cumsum(dim=1) - 1).clamp(min=0)
    logits = model(input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=False,
                   logits_to_keep=completion_len + 1).logits
    return selective_log_softmax(logits[:, :-1, :], batch["completion_ids"], temperature)


def grouped_batch(pad: int):
    """Two prompts of different lengths x 3 completions of different lengths, a multi-turn
    style mask (a run of untrained tokens) in one, and a lone prompt."""
    a, b, c = [11, 12, 13, 14, 15], [21, 22], [31, 32, 33]
    samples = [
        Sample(a, [40, 41, 42, 43], [1, 1, 1, 1], None, 0.5, 1.0),
        Sample(b, [50, 51], [1, 1], None, -0.5, 0.0),
        Sample(a, [44, 45], [1, 1], None, -0.2, 0.0),
        Sample(b, [52, 53, 54, 55, 56], [1, 0, 0, 1, 1], None, 0.3, 1.0),
        Sample(a, [46], [1], None, 0.1, 0.0),
        Sample(c, [60, 61, 62], [1, 1, 1], None, 0.0, 0.0),
        Sample(b, [57, 58, 59], [1, 1, 1], None, 0.2, 1.0),
    ]
    return collate(samples, pad)


def test_groups_find_repeated_prompts_only():
    ids = torch.tensor([[0, 1, 2], [3, 4, 5], [0, 1, 2], [0, 1, 2]])
    first, index = prompt_groups(ids)
    assert first.tolist() == [0, 1] and index.tolist() == [0, 1, 0, 0]
    assert prompt_groups(torch.tensor([[0, 1], [1, 0]])) is None


@pytest.mark.parametrize("lora", [False, True])
@pytest.mark.parametrize("temperature", [1.0, 0.7])
def test_logps_and_gradients_equal_the_plain_forward(tiny, lora, temperature):
    model, tokenizer = tiny
    if lora:
        from peft import LoraConfig, get_peft_model

        torch.manual_seed(0)
        model = get_peft_model(model, LoraConfig(r=4, target_modules="all-linear",
                                                 init_lora_weights=False))
    model.train()
    batch = grouped_batch(tokenizer.pad_token_id)
    groups = prompt_groups(batch["prompt_ids"])
    assert groups is not None and len(groups[0]) == 3
    mask = batch["completion_mask"]
    weights = torch.linspace(-1.0, 1.0, mask.numel()).reshape(mask.shape)

    def run(compute):
        model.zero_grad()
        logps = compute()
        (logps * mask * weights).sum().backward()
        grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
        return logps.detach(), grads

    plain, plain_grads = run(lambda: plain_logps(model, batch, temperature))
    shared, shared_grads = run(lambda: shared_prompt_logps(model, batch, groups, temperature, "cpu"))
    assert shared.shape == plain.shape
    torch.testing.assert_close(shared * mask, plain * mask, rtol=1e-5, atol=1e-5)
    assert plain_grads.keys() == shared_grads.keys() and plain_grads
    for name, grad in plain_grads.items():
        torch.testing.assert_close(shared_grads[name], grad, rtol=1e-4, atol=1e-5, msg=name)


def test_one_token_completions_need_only_the_prompt_forward(tiny):
    model, tokenizer = tiny
    samples = [Sample([5, 6, 7], [8], [1], None, 1.0, 1.0), Sample([5, 6, 7], [9], [1], None, -1.0, 0.0)]
    batch = collate(samples, tokenizer.pad_token_id)
    with torch.no_grad():
        shared = shared_prompt_logps(model, batch, prompt_groups(batch["prompt_ids"]), 1.0, "cpu")
        torch.testing.assert_close(shared, plain_logps(model, batch, 1.0), rtol=1e-5, atol=1e-5)
