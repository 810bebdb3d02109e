"""The attributes and methods that documented GRPO trainers expose, on ``GRPOTrainer``.

- TRL's and ATLAS's attributes: ``reward_funcs`` (a list), ``reward_weights`` (a tensor),
  ``num_generations``, ``temperature``, ``beta``; ``generate(model, inputs,
  generation_config=None)`` returning token ids.
- verifiers 0.1.x's training guide: ``config`` (the ``GRPOConfig``), ``client`` (the
  generation client), ``generate(prompts)`` returning completions, ``eval_dataloader``
  (batches with ``prompts`` and ``answers``), and an ``evaluate(self)`` override that may
  return a number (logged as ``eval_reward``).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

logger = logging.getLogger(__name__)


class EvalBatches:
    """The eval set (the environment's, else its training set) in batches of
    ``per_device_eval_batch_size`` rows: ``{"prompts", "answers", "tasks", "infos",
    "example_ids"}`` lists per batch. Iterable again and again."""

    def __init__(self, rows: Any, batch_size: int) -> None:
        self.rows = rows
        self.batch_size = max(1, batch_size)

    def __len__(self) -> int:
        return -(-len(self.rows) // self.batch_size)

    def __iter__(self) -> Iterator[dict[str, list[Any]]]:
        for start in range(0, len(self.rows), self.batch_size):
            chunk = [self.rows[i] for i in range(start, min(start + self.batch_size, len(self.rows)))]
            yield {
                "prompts": [r["prompt"] for r in chunk],
                "answers": [r.get("answer", "") for r in chunk],
                "tasks": [r.get("task") or "default" for r in chunk],
                "infos": [r.get("info") or {} for r in chunk],
                "example_ids": [r.get("example_id") for r in chunk],
            }


class DocumentedAPI:
    """Mixed into ``GRPOTrainer`` (which provides ``env``, ``args``, ``_client``, ...)."""

    env: Any
    args: Any

    # -- attributes ---------------------------------------------------------------------
    @property
    def reward_funcs(self) -> list[Any]:
        """The reward functions (as given; an environment's rubric's otherwise)."""
        rubric = self.env.rubric
        specs = getattr(rubric, "specs", None)
        if specs is not None:
            return [s.func for s in specs]
        return list(rubric.get_reward_funcs())

    @property
    def reward_weights(self) -> Any:
        """The weight of each reward function, a float32 tensor (current values)."""
        import torch

        return torch.tensor(self.env.rubric.get_reward_weights(), dtype=torch.float32)

    @property
    def num_generations(self) -> int:
        return self.args.num_generations

    @property
    def temperature(self) -> float:
        return self.args.temperature

    @property
    def beta(self) -> float:
        return self.args.beta

    @property
    def config(self) -> Any:
        """The ``GRPOConfig`` (the same object as ``args``)."""
        return self.args

    @property
    def client(self) -> Any:
        """The OpenAI-compatible client the trainer generates with."""
        return self._client  # type: ignore[attr-defined]

    @property
    def generation_config(self) -> Any:
        """``transformers.GenerationConfig`` of the training sampling settings."""
        from transformers import GenerationConfig

        args = self.args
        tokenizer = self.processing_class  # type: ignore[attr-defined]
        return GenerationConfig(
            do_sample=True, temperature=args.temperature, top_p=args.top_p, top_k=args.top_k,
            min_p=args.min_p, repetition_penalty=args.repetition_penalty,
            max_new_tokens=args.max_tokens or args.max_completion_length,
            pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id)

    @property
    def eval_dataloader(self) -> EvalBatches:
        """Batches of the eval set (see :class:`EvalBatches`)."""
        return EvalBatches(self.env.get_eval_dataset(), self.args.per_device_eval_batch_size)

    # -- generation ---------------------------------------------------------------------
    def generate(self, model_or_prompts: Any, inputs: Mapping[str, Any] | None = None,
                 generation_config: Any = None, sampling_args: dict[str, Any] | None = None) -> Any:
        """Two forms:

        - ``generate(prompts)``: one completion per prompt (messages or text, or rows with a
          ``prompt``), through the environment's interaction loop with the current policy
          and the training sampling settings (``sampling_args`` override them); returns the
          completions. Failed rollouts are logged and return their partial completion.
        - ``generate(model, inputs, generation_config=None)``: ``inputs`` holds
          ``input_ids`` (left-padded) and ``attention_mask``; returns prompt + completion
          token ids (completions right-padded), as ``model.generate`` does. In process the
          given model generates (``generation_config`` or :attr:`generation_config`); with
          vf-vllm the server does, and ``model`` is not used.
        """
        if inputs is None:
            if generation_config is not None:
                raise TypeError("generate(prompts) takes no generation_config; use "
                                "sampling_args={...}, or generate(model, inputs, generation_config).")
            return self._generate_completions(model_or_prompts, sampling_args)
        if sampling_args is not None:
            raise TypeError("generate(model, inputs) takes generation_config=..., not sampling_args.")
        return self._generate_ids(model_or_prompts, inputs, generation_config or self.generation_config)

    def _generate_completions(self, prompts: Sequence[Any], sampling_args: dict[str, Any] | None) -> list[Any]:
        if isinstance(prompts, str | Mapping):
            raise TypeError("generate(prompts) takes a list of prompts; wrap a single one: generate([prompt]).")
        rows = [dict(p) if isinstance(p, Mapping) else {"prompt": p} for p in prompts]
        for index, row in enumerate(rows):
            if "prompt" not in row:
                raise ValueError(f"generate(prompts): row {index} has no 'prompt'.")
            row.setdefault("example_id", index)
        sampling = {**self.sampling_args(), **(sampling_args or {})}  # type: ignore[attr-defined]
        results = self._run_generation(rows, sampling, score=False)
        failed = [e for e in results["errors"] if e]
        if failed:
            logger.warning("generate: %d of %d rollouts failed; e.g. %s", len(failed), len(rows), failed[0][:300])
        return list(results["completions"])

    def _run_generation(self, rows: list[dict[str, Any]], sampling: dict[str, Any], score: bool) -> Any:
        """Rollouts of ``rows`` with the current policy (weights synced, model in eval mode)."""
        self.push_weights()  # type: ignore[attr-defined]
        with self.generation_context():  # type: ignore[attr-defined]
            return asyncio.run(self.env.a_generate(
                rows, self._client, self._model_name, sampling,  # type: ignore[attr-defined]
                max_concurrent=self.args.max_concurrent, score_rollouts=score, progress=False))

    def _generate_ids(self, model: Any, inputs: Mapping[str, Any], generation_config: Any) -> Any:
        import torch

        input_ids = inputs["input_ids"]
        mask = inputs.get("attention_mask")
        if mask is None:
            mask = torch.ones_like(input_ids)
        if self._vllm is None:  # type: ignore[attr-defined]
            from accelerate.utils import extract_model_from_parallel

            with torch.no_grad(), self._generation_weights() as whole:  # type: ignore[attr-defined]
                target = model
                if whole is not None and (model is self.model or model is self.model_wrapped):  # type: ignore[attr-defined]
                    target = whole
                target = extract_model_from_parallel(target)
                device = next(target.parameters()).device
                return target.generate(input_ids=input_ids.to(device), attention_mask=mask.to(device),
                                       generation_config=generation_config)
        return self._generate_ids_on_server(input_ids, mask, generation_config)

    def _generate_ids_on_server(self, input_ids: Any, mask: Any, generation_config: Any) -> Any:
        import torch

        from verifiers.clients import client_for_loop, create_completion, normalize_sampling_args

        self.push_weights()  # type: ignore[attr-defined]
        sampling: dict[str, Any] = {
            "max_tokens": generation_config.max_new_tokens,
            "temperature": generation_config.temperature if generation_config.do_sample else 0.0,
            "top_p": generation_config.top_p, "return_token_ids": True,
        }
        if generation_config.top_k:
            sampling["top_k"] = generation_config.top_k
        sampling = normalize_sampling_args(sampling)  # vLLM's own keys travel in extra_body
        prompts = [row[m.bool()].tolist() for row, m in zip(input_ids, mask, strict=True)]

        async def run() -> list[list[int]]:
            client = await client_for_loop(self._client)  # type: ignore[attr-defined]  # this loop's connections
            responses = await asyncio.gather(*(create_completion(
                client, self._model_name, p, sampling) for p in prompts))  # type: ignore[attr-defined]
            return [list((getattr(r.choices[0], "model_extra", None) or {}).get("token_ids") or [])
                    for r in responses]

        completions = asyncio.run(run())
        pad = self.processing_class.pad_token_id  # type: ignore[attr-defined]
        width = max((len(c) for c in completions), default=0)
        tail = torch.full((len(completions), width), pad, dtype=input_ids.dtype)
        for i, ids in enumerate(completions):
            tail[i, : len(ids)] = torch.tensor(ids, dtype=input_ids.dtype)
        return torch.cat([input_ids.cpu(), tail], dim=1)

    # -- evaluation overrides of the training guide's form ---------------------------------
    def _evaluate(self, trial: Any, ignore_keys_for_eval: Any, skip_scheduler: bool = False) -> Any:
        """``Trainer._evaluate``, calling an ``evaluate(self)`` override without the
        Trainer's arguments and turning a number it returns into ``{"eval_reward": x}``."""
        evaluate = self.evaluate  # type: ignore[attr-defined]
        accepts = inspect.signature(evaluate).parameters
        takes_keys = "ignore_keys" in accepts or any(p.kind is p.VAR_KEYWORD for p in accepts.values())

        def adapted(ignore_keys: Any = None, **kwargs: Any) -> dict[str, float]:
            value = evaluate(ignore_keys=ignore_keys, **kwargs) if takes_keys else evaluate()
            if isinstance(value, Mapping):
                metrics = dict(value)
            elif isinstance(value, int | float):
                metrics = {"eval_reward": float(value)}
                self.log(metrics)  # type: ignore[attr-defined]
            else:
                raise TypeError(f"evaluate() returned {type(value).__name__}; return a dict of "
                                "metrics or a number (the eval reward).")
            if self.control.should_evaluate:  # type: ignore[attr-defined]  # an override that did not tell the callbacks
                self.control = self.callback_handler.on_evaluate(  # type: ignore[attr-defined]
                    self.args, self.state, self.control, metrics)  # type: ignore[attr-defined]
            return metrics

        self.evaluate = adapted  # type: ignore[method-assign]  # for Trainer._evaluate's call
        try:
            return super()._evaluate(trial, ignore_keys_for_eval, skip_scheduler)  # type: ignore[misc]
        finally:
            del self.evaluate
