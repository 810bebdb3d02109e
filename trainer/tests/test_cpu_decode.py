"""The engine's CPU decoding shortcuts: blocked linear layers, identical prompts computed once,
and the inverse-CDF token draw. Each must give what the plain computation gives."""

from __future__ import annotations

import asyncio

import pytest
import torch
import torch.nn.functional as F

from verifiers_trainer import InProcessEngine
from verifiers_trainer.inference.cpu_decode import blocked_linear, chunks_for, fast_decode_linears
from verifiers_trainer.inference.sampler import SamplingParams, draw


@pytest.mark.parametrize("shape", [(4, 576), (2, 3, 576), (1, 1, 576), (64, 576)])
@pytest.mark.parametrize("bias", [False, True])
def test_blocked_linear_equals_f_linear(shape, bias):
    torch.manual_seed(0)
    weight = torch.randn(1536, 576)
    b = torch.randn(1536) if bias else None
    x = torch.randn(*shape)
    for chunks in (2, 4, 8):
        got = blocked_linear(x, weight, b, chunks)
        assert got.shape == (*shape[:-1], 1536) and got.is_contiguous()
        torch.testing.assert_close(got, F.linear(x, weight, b), rtol=1e-5, atol=1e-4)


def test_chunks_keep_blocks_of_at_least_64_rows():
    assert chunks_for(1536, threads=2) == 4
    assert chunks_for(576, threads=4) == 8
    assert chunks_for(192, threads=2) == 3  # 4 does not divide 192 into >= 64-row blocks
    assert chunks_for(100, threads=2) == 0  # no split worth making: F.linear
    assert chunks_for(8, threads=16) == 0  # LoRA's A matrices stay on F.linear


def test_switch_applies_only_inside_and_only_without_gradients():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(64, 256), torch.nn.ReLU(), torch.nn.Linear(256, 8))
    x = torch.randn(3, 64)
    with torch.no_grad():
        plain = model(x)
    with fast_decode_linears(model, min_model_bytes=0) as switched:
        assert switched == 1  # the 256-row layer; the 8-row one is not worth splitting
        assert "forward" in vars(model[0])
        with fast_decode_linears(model, min_model_bytes=0) as inner:  # reentrant
            assert inner == 0
        assert "forward" in vars(model[0])
        with torch.no_grad():
            torch.testing.assert_close(model(x), plain, rtol=1e-5, atol=1e-5)
        trained = model(x)  # gradients on: F.linear, bit for bit
        trained.sum().backward()
        assert model[0].weight.grad is not None
        with torch.no_grad():
            assert torch.equal(trained.detach(), plain)
    assert "forward" not in vars(model[0]) and "forward" not in vars(model[2])


def test_switch_skips_other_dtypes_and_subclasses():
    class Custom(torch.nn.Linear):
        pass

    model = torch.nn.Sequential(torch.nn.Linear(64, 256).to(torch.bfloat16), Custom(64, 256))
    with fast_decode_linears(model, min_model_bytes=0) as switched:
        assert switched == 0


def test_engine_results_match_with_and_without_blocked_linears(tiny):
    model, tokenizer = tiny
    fast = InProcessEngine(model, tokenizer)
    plain = InProcessEngine(model, tokenizer, cpu_decode_linears=False)
    prompts = [tokenizer.encode("The sea is"), tokenizer.encode("def f(x):"), [5, 6, 7]]
    params = [SamplingParams(max_tokens=24, temperature=0) for _ in prompts]
    with fast_decode_linears(model) as switched:  # the tiny model fits in any cache
        assert switched == 0
    with fast_decode_linears(model, min_model_bytes=0) as switched:  # as if it did not
        assert switched > 0  # the output layer (1000 rows) at least
        a = fast.generate_batch(prompts, params)
    b = plain.generate_batch(prompts, params)
    assert [g.token_ids for g in a] == [g.token_ids for g in b]
    for x, y in zip(a, b, strict=True):
        assert x.logprobs == pytest.approx(y.logprobs, abs=1e-4)
    assert not any("forward" in vars(m) for m in model.modules())  # switched back


def test_identical_prompts_are_computed_once_with_the_same_results(tiny):
    model, tokenizer = tiny
    engine = InProcessEngine(model, tokenizer)
    group, other = tokenizer.encode("Tell me a story about"), tokenizer.encode("Hi")
    prompts = [group, other, group, group]
    params = [SamplingParams(max_tokens=16, temperature=0) for _ in prompts]
    together = engine.generate_batch(prompts, params)
    assert engine.stats.prompt_tokens == 3 * len(group) + len(other)
    assert engine.stats.prefill_tokens == len(group) + len(other)
    alone = [engine.generate_batch([p], [q])[0] for p, q in zip(prompts, params, strict=True)]
    assert [g.token_ids for g in together] == [g.token_ids for g in alone]
    for x, y in zip(together, alone, strict=True):
        assert x.logprobs == pytest.approx(y.logprobs, abs=1e-4)


def test_a_sampled_group_draws_different_completions(tiny):
    model, tokenizer = tiny
    engine = InProcessEngine(model, tokenizer)
    prompt = tokenizer.encode("Once upon a time")

    async def group() -> list[list[int]]:
        params = SamplingParams(max_tokens=12, temperature=1.0)
        done = await asyncio.gather(*[engine.generate(prompt, params) for _ in range(6)])
        return [g.token_ids for g in done]

    torch.manual_seed(0)
    outputs = asyncio.run(group())
    assert engine.stats.batches == 1 and engine.stats.prefill_tokens == len(prompt)
    assert len({tuple(o) for o in outputs}) == 6  # copied rows, independent draws


def test_draw_follows_the_distribution_and_never_picks_zero_mass():
    probs = torch.tensor([[0.0, 0.5, 0.0, 0.3, 0.2, 0.0]] * 2 + [[0.0, 0.0, 0.0, 0.0, 0.0, 7.0]])
    generator = torch.Generator().manual_seed(0)
    counts = torch.zeros(3, 6)
    for _ in range(4000):
        picked = draw(probs, generator)
        counts[torch.arange(3), picked] += 1
    assert counts[:, [0, 2]].sum() == 0 and counts[:2, 5].sum() == 0
    assert counts[2, 5] == 4000  # unnormalised row with a single token
    share = counts[:2] / 4000
    for row in share:  # 4000 draws: a standard error of about 0.008 per share
        assert row[1] == pytest.approx(0.5, abs=0.04)
        assert row[3] == pytest.approx(0.3, abs=0.04)
        assert row[4] == pytest.approx(0.2, abs=0.04)


def test_draw_is_reproducible_with_a_seeded_generator():
    probs = torch.softmax(torch.randn(4, 1000), dim=-1)
    first = draw(probs, torch.Generator().manual_seed(3))
    again = draw(probs, torch.Generator().manual_seed(3))
    assert torch.equal(first, again)


class _Block(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.up = torch.nn.Linear(64, 256)
        self.down = torch.nn.Linear(256, 128, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down(torch.relu(self.up(x)))


def _lora_block() -> torch.nn.Module:
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(0)
    config = LoraConfig(r=4, lora_alpha=8, target_modules=["up", "down"], lora_dropout=0.1,
                        init_lora_weights=False)  # random B: the adapter changes the output
    return get_peft_model(_Block(), config).eval()


def test_lora_layers_compute_what_peft_computes():
    model = _lora_block()
    x = torch.randn(2, 3, 64)
    with torch.no_grad():
        plain = model(x)
        with model.disable_adapter():
            base = model(x)
    assert not torch.allclose(plain, base, atol=1e-3)  # the adapter matters here
    with fast_decode_linears(model, min_model_bytes=0) as switched, torch.no_grad():
        assert switched >= 2  # both LoRA layers (their base layers too)
        torch.testing.assert_close(model(x), plain, rtol=1e-5, atol=1e-5)
        with model.disable_adapter():  # PEFT's switch is read at call time
            torch.testing.assert_close(model(x), base, rtol=1e-5, atol=1e-5)
        model.merge_adapter()  # merged: PEFT's forward (the base layer holds the sum)
        torch.testing.assert_close(model(x), plain, rtol=1e-4, atol=1e-4)
        model.unmerge_adapter()
        torch.testing.assert_close(model(x), plain, rtol=1e-4, atol=1e-4)
    assert not any("forward" in vars(m) for m in model.modules())


def test_lora_layers_in_train_mode_keep_peft_forward_and_its_dropout():
    model = _lora_block().train()
    x = torch.randn(4, 64)
    with fast_decode_linears(model, min_model_bytes=0), torch.no_grad():
        torch.manual_seed(1)
        ours = model(x)
    with torch.no_grad():
        torch.manual_seed(1)
        theirs = model(x)
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-5)  # same dropout draws
    with torch.no_grad():
        assert not torch.allclose(model.eval()(x), theirs, atol=1e-3)  # dropout did act


def test_a_model_that_fits_in_cache_switches_only_its_large_weights():
    model = torch.nn.Sequential(torch.nn.Linear(256, 256), torch.nn.Linear(256, 8192))
    with fast_decode_linears(model) as switched:  # 0.25 MiB + 8 MiB: under 64 MiB in all
        assert switched == 1 and "forward" in vars(model[1]) and "forward" not in vars(model[0])
    with fast_decode_linears(model, min_model_bytes=8 * 2**20) as switched:
        assert switched == 2
