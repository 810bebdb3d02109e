"""Sampling: per-request settings (:class:`SamplingParams`) and the :class:`Sampler` that
picks each row's next token from raw logits, so requests with different settings share a
batch."""

from __future__ import annotations

from collections.abc import Callable, Container, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass
class SamplingParams:
    """Per-request sampling settings (OpenAI names, plus vLLM's extras)."""

    max_tokens: int
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0  # 0: off
    min_p: float = 0.0
    repetition_penalty: float = 1.0
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    logit_bias: dict[int, float] = field(default_factory=dict)
    seed: int | None = None
    stop: list[str] = field(default_factory=list)
    stop_token_ids: list[int] = field(default_factory=list)
    include_stop_str_in_output: bool = False
    ignore_eos: bool = False
    min_tokens: int = 0
    skip_special_tokens: bool = True
    top_logprobs: int = 0  # top alternatives to return per token


class Sampler:
    """Turns raw next-token logits into chosen tokens, row by row: penalties, logit bias,
    min_tokens, then greedy (temperature 0) or temperature / top-k / top-p / min-p
    sampling, with a private generator per seeded request and ``unseeded_rng()`` (called
    when a row without a seed samples) for the others."""

    def __init__(self, prompts: Sequence[Sequence[int]], params: Sequence[SamplingParams],
                 device: Any, eos_token_ids: Iterable[int],
                 unseeded_rng: Callable[[], Any]) -> None:
        import torch

        self.eos_token_ids = sorted(eos_token_ids)
        self.unseeded_rng = unseeded_rng
        self.prompts = prompts
        self.params = list(params)
        self.device = device
        self.want_seen = any(p.repetition_penalty != 1.0 for p in params)
        self.want_counts = any(p.presence_penalty or p.frequency_penalty for p in params)
        self.seen: Any = None  # [rows, vocab] bool: prompt + output tokens (repetition)
        self.counts: Any = None  # [rows, vocab] float: output token counts (presence, freq.)
        self.generators: dict[int, Any] = {}
        for row, p in enumerate(params):
            if p.seed is not None and p.temperature > 0:
                self.generators[row] = torch.Generator(device=device).manual_seed(p.seed)

    def _allocate(self, vocab: int) -> None:
        import torch

        rows = len(self.params)
        if self.want_seen:
            self.seen = torch.zeros((rows, vocab), dtype=torch.bool, device=self.device)
            for row, prompt in enumerate(self.prompts):
                self.seen[row, list(prompt)] = True
        if self.want_counts:
            self.counts = torch.zeros((rows, vocab), dtype=torch.float32, device=self.device)
        self.want_seen = self.want_counts = False

    def select(self, keep: list[int]) -> None:
        """Keep only these current rows (the others finished)."""
        if self.seen is not None:
            self.seen = self.seen[keep]
        if self.counts is not None:
            self.counts = self.counts[keep]

    def observe(self, chosen: Any) -> None:
        """Record the tokens just chosen by the current rows."""
        if self.seen is not None:
            self.seen[range(len(chosen)), chosen] = True
        if self.counts is not None:
            self.counts[range(len(chosen)), chosen] += 1.0

    def _column(self, values: list[float]) -> Any:
        import torch

        return torch.tensor(values, dtype=torch.float32, device=self.device)[:, None]

    def sample(self, logits: Any, active: list[int], lengths: list[int]) -> Any:
        """One token per current row; ``active`` maps current rows to original rows and
        ``lengths`` counts the tokens each has generated so far."""
        import torch

        if self.want_seen or self.want_counts:
            self._allocate(logits.shape[-1])
        params = [self.params[i] for i in active]
        if self.seen is not None:
            penalty = self._column([p.repetition_penalty for p in params])
            penalised = torch.where(logits > 0, logits / penalty, logits * penalty)
            logits = torch.where(self.seen, penalised, logits)
        if self.counts is not None:
            frequency = self._column([p.frequency_penalty for p in params])
            presence = self._column([p.presence_penalty for p in params])
            logits = logits - frequency * self.counts - presence * (self.counts > 0)
        blocked = [j for j, p in enumerate(params) if lengths[j] < p.min_tokens and not p.ignore_eos]
        if any(p.logit_bias for p in params) or blocked:
            logits = logits.clone()
            for j, p in enumerate(params):
                for token, bias in p.logit_bias.items():
                    logits[j, token] += bias
            for j in blocked:
                logits[j, self.eos_token_ids] = float("-inf")
        chosen = torch.empty(len(params), dtype=torch.long, device=logits.device)
        greedy = [j for j, p in enumerate(params) if p.temperature == 0]
        sampled = [j for j, p in enumerate(params) if p.temperature > 0]
        if greedy:
            chosen[greedy] = logits[greedy].argmax(dim=-1)
        if sampled:
            probs = self._probabilities(logits[sampled], [params[j] for j in sampled])
            unseeded = []
            for k, j in enumerate(sampled):
                generator = self.generators.get(active[j])
                if generator is None:
                    unseeded.append(k)
                else:
                    chosen[j] = draw(probs[k:k + 1], generator)[0]
            if unseeded:
                rng = self.unseeded_rng()
                chosen[[sampled[k] for k in unseeded]] = draw(probs[unseeded], rng)
        return chosen

    def _probabilities(self, logits: Any, params: list[SamplingParams]) -> Any:
        import torch

        logits = logits / self._column([p.temperature for p in params])
        vocab = logits.shape[-1]
        if any(p.top_k or p.top_p < 1.0 for p in params):
            ordered, order = logits.sort(dim=-1, descending=True)
            ks = torch.tensor([p.top_k if 0 < p.top_k < vocab else vocab for p in params],
                              device=logits.device)
            ranks = torch.arange(vocab, device=logits.device)[None, :]
            ordered = ordered.masked_fill(ranks >= ks[:, None], float("-inf"))
            probs = ordered.softmax(dim=-1)
            before = probs.cumsum(dim=-1) - probs  # mass of the better tokens
            ordered = ordered.masked_fill(before > self._column([p.top_p for p in params]),
                                          float("-inf"))
            logits = torch.full_like(logits, float("-inf")).scatter(1, order, ordered)
        probs = logits.softmax(dim=-1)
        if any(p.min_p > 0 for p in params):
            floor = self._column([p.min_p for p in params]) * probs.max(dim=-1, keepdim=True).values
            probs = torch.where(probs < floor, torch.zeros_like(probs), probs)
        return probs


def draw(probs: Any, generator: Any) -> Any:
    """One index per row of ``probs`` (non-negative, not necessarily normalised), drawn with
    ``generator`` by inverting the row's cumulative sum at a uniform number: one ``rand`` and
    a binary search per row: 0.16 ms for 4 rows of 49,152 on two cores, where
    ``torch.multinomial`` takes 5.7 ms. A token of probability 0 is never drawn."""
    import torch

    cdf = probs.cumsum(dim=-1)
    total = cdf[:, -1:]
    u = torch.rand(total.shape, generator=generator, device=probs.device, dtype=cdf.dtype)
    # strictly below the total, so the first entry above it exists and has mass
    value = torch.minimum(u * total, torch.nextafter(total, torch.zeros_like(total)))
    return torch.searchsorted(cdf, value, right=True).squeeze(1)


def finished(
    ids: list[int], p: SamplingParams, eos_token_ids: Container[int], decode: Callable[..., str]
) -> tuple[str, str | int | None, int | None] | None:
    """``(finish_reason, stop_reason, text cut)`` when a sequence of generated ``ids`` is
    done under ``p``, else None; ``decode`` is the tokenizer's."""
    token = ids[-1]
    if len(ids) >= p.min_tokens:
        if token in p.stop_token_ids or (not p.ignore_eos and token in eos_token_ids):
            return "stop", token, None
        if p.stop:
            text = decode(ids, skip_special_tokens=p.skip_special_tokens)
            hits = [(text.find(s), s) for s in p.stop]
            hits = [(i, s) for i, s in hits if i >= 0]
            if hits:
                at, stop = min(hits)
                return "stop", stop, at + len(stop) if p.include_stop_str_in_output else at
    if len(ids) >= p.max_tokens:
        return "length", None, None
    return None


__all__ = ["Sampler", "SamplingParams", "draw", "finished"]
