"""Reward functions given to ``GRPOTrainer(reward_funcs=[...])``, as an environment.

Two calling conventions, told apart by each function's signature:

- batch (TRL's convention): the function takes ``prompts`` and/or ``completions`` (or only
  ``**kwargs``) and gets the whole generation round at once: ``prompts``, ``completions`` and
  every other dataset column as keyword lists; it returns one float per completion (``None``
  for those it does not score). It is called once per round, so rewards relative to the
  batch (ranks, normalisation) see the whole batch.
- per completion (EasyDeL's convention): any other signature, e.g. ``f(completion,
  reference_answer=None)`` or ``f(completion)``. It is called once per completion with the
  completion's text (the parameter ``completion``, else the first positional one) and, for
  each other parameter, the dataset column of that name; a parameter named like a reference
  answer (``reference_answer``, ``reference``, ``ground_truth``, ``target``, ``solution``)
  gets the ``answer`` column when the dataset has no column of its own name. ``prompt``
  gets the row's prompt. Parameters with defaults and no matching column keep their default.

A reward function may also be a sequence-classification reward model (a model id or a
loaded model), which scores prompt + completion as a batch. A function that raises makes
the rollouts it was scoring failed rollouts (recorded, with the reason), never zeros.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import verifiers as vf
from verifiers.rubrics.rubric import func_name, record_error
from verifiers.utils.async_utils import maybe_await, sync_or_async

#: Parameter names of a per-completion function that read the ``answer`` column when the
#: dataset has no column of that name.
REFERENCE_NAMES = ("reference_answer", "reference", "ground_truth", "target", "solution", "answer")
_BATCH_NAMES = ("prompts", "completions")


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return list(value)
    return [value]


def completion_text(completion: Any) -> str:
    """The text of a completion: a string as is; of chat messages, the assistant turns'."""
    if isinstance(completion, str):
        return completion
    parts = [m.get("content") or "" for m in completion or [] if m.get("role") == "assistant"]
    return "\n".join(parts)


def _signature(func: Any) -> inspect.Signature:
    target = func if inspect.isfunction(func) or inspect.ismethod(func) else func.__call__
    return inspect.signature(target)


@dataclass
class RewardSpec:
    """One reward function and how it is called."""

    func: Any
    name: str
    per_completion: bool
    arguments: dict[str, str | None]  # parameter -> dataset column (None: the completion/prompt)
    completion_param: str | None = None

    async def batch(self, prompts: Sequence[Any], completions: Sequence[Any],
                    columns: dict[str, list[Any]]) -> list[Any]:
        """One value (or exception) per completion."""
        n = len(completions)
        if not self.per_completion:
            values = await maybe_await(self.func(prompts=list(prompts), completions=list(completions),
                                                 **columns))
            values = list(values) if values is not None else [None] * n
            if len(values) != n:
                raise ValueError(f"reward function {self.name} returned {len(values)} values for "
                                 f"{n} completions; return one per completion (None = not scored).")
            return values
        out: list[Any] = []
        for i in range(n):
            try:
                out.append(await maybe_await(self.call_one(prompts[i], completions[i],
                                                           {k: v[i] for k, v in columns.items()})))
            except Exception as exc:  # this rollout only
                out.append(exc)
        return out

    def call_one(self, prompt: Any, completion: Any, row: dict[str, Any]) -> Any:
        kwargs: dict[str, Any] = {}
        for param, column in self.arguments.items():
            if param == self.completion_param:
                kwargs[param] = completion_text(completion)
            elif param == "prompt":
                kwargs[param] = prompt
            elif column is not None and column in row:
                kwargs[param] = row[column]
        return self.func(**kwargs)


def reward_spec(func: Any, columns: Sequence[str]) -> RewardSpec:
    """How ``func`` is called (see the module docstring), checked against the dataset's
    ``columns``: a required parameter that no column fills is an error naming them."""
    name = func_name(func)
    try:
        params = list(_signature(func).parameters.values())
    except (TypeError, ValueError):  # no signature (a builtin): TRL's convention
        return RewardSpec(func, name, False, {})
    names = [p.name for p in params]
    only_kwargs = all(p.kind in (p.VAR_KEYWORD, p.VAR_POSITIONAL) for p in params)
    if only_kwargs or any(n in _BATCH_NAMES for n in names):
        return RewardSpec(func, name, False, {})
    usable = [p for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY, p.POSITIONAL_ONLY)]
    if any(p.kind is p.POSITIONAL_ONLY for p in usable):
        raise TypeError(f"reward function {name} has positional-only parameters; give them names "
                        "(f(completion, reference_answer=None)) or use TRL's f(prompts, completions, **kwargs).")
    if not usable:
        raise TypeError(f"reward function {name} takes no completion: write it as f(completion, ...) "
                        "or TRL's f(prompts, completions, **kwargs).")
    completion_param = "completion" if "completion" in names else usable[0].name
    arguments: dict[str, str | None] = {}
    for p in usable:
        if p.name in (completion_param, "prompt"):
            arguments[p.name] = None
        elif p.name in columns:
            arguments[p.name] = p.name
        elif p.name in REFERENCE_NAMES and "answer" in columns:
            arguments[p.name] = "answer"
        elif p.default is p.empty:
            raise TypeError(f"reward function {name} needs {p.name!r}, but the dataset has no such "
                            f"column (columns: {', '.join(columns) or 'none'}). Add the column, give "
                            f"{p.name} a default, or rename it to a column's name.")
    return RewardSpec(func, name, True, arguments, completion_param)


class RewardFuncRubric(vf.Rubric):
    """A rubric over reward functions that scores a whole round with one call per batch
    function (``score_rollouts``); scoring one rollout (``score_rollout``, evaluation)
    calls batch functions with one-element lists. Trainers see ``scores_in_batches``."""

    scores_in_batches = True

    def __init__(self, specs: Sequence[RewardSpec], weights: Sequence[float] | None = None) -> None:
        self.specs = list(specs)
        super().__init__(funcs=[_one_rollout(s) for s in self.specs], weights=weights)

    @sync_or_async
    async def score_rollouts(self, prompts: Sequence[Any], completions: Sequence[Any],
                             answers: Sequence[Any], states: Sequence[Any],
                             tasks: Sequence[str] | None = None, infos: Sequence[Any] | None = None,
                             max_concurrent: int = -1, **kwargs: Any) -> dict[str, list[float]]:
        n = len(prompts)
        if not (len(completions) == len(answers) == len(states) == n):
            raise ValueError("score_rollouts needs prompts, completions, answers and states of the "
                             f"same length; got {n}, {len(completions)}, {len(answers)}, {len(states)}.")
        infos = list(infos) if infos is not None else [{} for _ in range(n)]
        keys = sorted({k for info in infos for k in (info or {})})
        columns = {k: [(info or {}).get(k) for info in infos] for k in keys}
        names = self.get_reward_func_names()
        values: dict[str, list[Any]] = {}
        for spec, name in zip(self.specs, names, strict=True):
            try:
                values[name] = await spec.batch(prompts, completions, columns)
            except Exception as exc:  # every rollout it was scoring fails
                values[name] = [exc] * n
        out: dict[str, list[float]] = {"reward": [], **{name: [] for name in names}}
        for i in range(n):
            reward = _combine(names, self.reward_weights, [values[name][i] for name in names],
                              states[i] if states[i] is not None else {})
            out["reward"].append(reward)
            for name in names:
                value = values[name][i]
                out[name].append(float(value) if isinstance(value, int | float) else math.nan)
        return out


def _combine(names: Sequence[str], weights: Sequence[float], values: Sequence[Any],
             state: dict[str, Any]) -> float:
    """The weighted reward of one rollout; failures recorded on its state (as Rubric does)."""
    failed, total, scored = False, 0.0, 0
    for name, weight, value in zip(names, weights, values, strict=True):
        if isinstance(value, BaseException):
            failed = True
            message = f"{type(value).__name__}: {value}"
            state.setdefault("reward_errors", {})[name] = message
            record_error(state, "reward_error", message, func=name)
            continue
        if value is None or (isinstance(value, float) and math.isnan(value)):
            continue
        if not isinstance(value, int | float):  # bool is an int
            failed = True
            record_error(state, "reward_error", f"reward function {name} returned "
                         f"{type(value).__name__} ({value!r}); it must return a number", func=name)
            continue
        total += weight * float(value)
        scored += 1
    if not failed and names and not scored:
        failed = True
        record_error(state, "reward_error", "no reward function scored this rollout (all None/NaN)")
    return 0.0 if failed else total


def _one_rollout(spec: RewardSpec) -> Any:
    """A per-rollout rubric function around ``spec`` (scoring a single rollout)."""

    async def reward(prompt: Any, completion: Any, info: dict[str, Any], **kwargs: Any) -> float:
        row = dict(info or {})
        values = await spec.batch([prompt], [completion], {k: [v] for k, v in row.items()})
        value = values[0]
        if isinstance(value, BaseException):
            raise value
        return math.nan if value is None else float(value)

    reward.__name__ = spec.name
    return reward


def _reward_model_func(model: Any, tokenizer: Any, name: str) -> Any:
    import torch

    def score(prompts: list[Any], completions: list[Any], **kwargs: Any) -> list[float]:
        texts = []
        for prompt, completion in zip(prompts, completions, strict=True):
            if isinstance(prompt, list):
                messages = [*prompt, *completion]
                texts.append(tokenizer.apply_chat_template(messages, tokenize=False))
            else:
                texts.append(prompt + completion)
        batch = tokenizer(texts, return_tensors="pt", padding=True, truncation=True)
        with torch.no_grad():
            logits = model(**{k: v.to(model.device) for k, v in batch.items()}).logits
        return logits[:, 0].float().tolist()

    score.__name__ = name
    return score


def _load_reward_models(funcs: list[Any], processing_classes: list[Any]) -> list[Any]:
    out = []
    for index, func in enumerate(funcs):
        if callable(func) and not hasattr(func, "config"):
            out.append(func)
            continue
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        if isinstance(func, str):
            model = AutoModelForSequenceClassification.from_pretrained(func, num_labels=1)
            name = func.rsplit("/", 1)[-1]
        else:
            model, name = func, type(func).__name__
        tokenizer = processing_classes[index] if index < len(processing_classes) else None
        if tokenizer is None:
            tokenizer = AutoTokenizer.from_pretrained(model.config._name_or_path)
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        model.eval()
        out.append(_reward_model_func(model, tokenizer, name.replace("-", "_")))
    return out


def dataset_from_reward_funcs(funcs: Sequence[Any]) -> Any:
    """The training data a reward function carries (a ``train_dataset`` or ``dataset``
    attribute, or an environment's ``get_dataset()``), else ``None``."""
    for func in funcs:
        for attribute in ("train_dataset", "dataset"):
            data = getattr(func, attribute, None)
            if data is not None and not callable(data):
                return data
        getter = getattr(func, "get_dataset", None)
        if callable(getter):
            return getter()
    return None


def env_from_reward_funcs(
    reward_funcs: Any,
    train_dataset: Any,
    eval_dataset: Any = None,
    processing_class: Any = None,
    reward_processing_classes: Any = None,
    reward_weights: Sequence[float] | None = None,
) -> vf.Environment:
    """A single-turn environment over ``train_dataset`` (a ``prompt`` column: chat messages
    or text) scored by ``reward_funcs``. Other columns reach the functions by name. Without
    ``train_dataset``, the data a reward function carries is used (see
    :func:`dataset_from_reward_funcs`)."""
    given = _as_list(reward_funcs)
    if not given:
        raise TypeError("reward_funcs=[...] is empty: give at least one reward function.")
    if train_dataset is None:
        train_dataset = dataset_from_reward_funcs(given)
    if train_dataset is None:
        raise TypeError("GRPOTrainer(reward_funcs=...) needs train_dataset=... (rows with a 'prompt' "
                        "column), or an environment instead: GRPOTrainer(model, env=vf.load_environment(...)).")
    funcs = _load_reward_models(given, _as_list(reward_processing_classes))
    dataset = _to_dataset(train_dataset)
    if "prompt" not in dataset.column_names:
        raise ValueError(
            f"train_dataset needs a 'prompt' column (chat messages or text); it has {dataset.column_names}."
        )
    message_type = "completion" if isinstance(dataset[0]["prompt"], str) else "chat"
    columns = [c for c in dataset.column_names if c not in ("prompt", "info")]

    def with_info(ds: Any) -> Any:
        if ds is None:
            return None
        ds = _to_dataset(ds)
        extra = [c for c in ds.column_names if c not in ("prompt", "info")]
        rows = []
        for row in ds.to_list():
            rows.append({"prompt": row["prompt"], "answer": row.get("answer", ""),
                         "info": {c: row[c] for c in extra}})
        from datasets import Dataset

        return Dataset.from_list(rows)

    rubric = RewardFuncRubric([reward_spec(f, columns) for f in funcs], weights=reward_weights)
    return vf.SingleTurnEnv(dataset=with_info(dataset), eval_dataset=with_info(eval_dataset),
                            rubric=rubric, message_type=message_type)


def _to_dataset(data: Any) -> Any:
    from verifiers.utils.data_utils import to_dataset

    return to_dataset(data)
