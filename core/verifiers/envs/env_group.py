"""EnvGroup: several environments behind one, routed by each row's ``task``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from verifiers.envs.environment import Environment
from verifiers.rubrics.rubric import Rubric
from verifiers.rubrics.scores import RolloutScore, RolloutScores
from verifiers.types import Info, Messages, SamplingArgs, State
from verifiers.utils.async_utils import maybe_await, sync_or_async


class EnvGroupRubric(Rubric):
    """Scores each rollout with the rubric of the environment its ``task`` names.

    Metrics of all member rubrics are reported; a rollout gets NaN for the metrics of the
    other environments' functions."""

    def __init__(self, env_map: dict[str, Environment]) -> None:
        super().__init__()
        self.env_map = env_map
        names: list[str] = []
        for env in env_map.values():
            for name in env.rubric.get_reward_func_names():
                if name not in names:
                    names.append(name)
        self._all_names = names

    def get_reward_func_names(self) -> list[str]:
        return list(self._all_names)

    async def _score(
        self,
        prompt: Messages,
        completion: Messages,
        answer: Any = "",
        state: State | None = None,
        task: str = "default",
        info: Info | None = None,
        **kwargs: Any,
    ) -> RolloutScore:
        env = self.env_map.get(task)
        if env is None:
            raise KeyError(f"No environment for task {task!r}; known: {sorted(self.env_map)}.")
        scores = await maybe_await(
            env.rubric.score_rollout(prompt, completion, answer, state, task, info, **kwargs)
        )
        return RolloutScore(scores["reward"], {n: scores.get(n, float("nan")) for n in self._all_names})

    @sync_or_async
    async def score_rollouts(
        self,
        prompts: Sequence[Messages],
        completions: Sequence[Messages],
        answers: Sequence[Any],
        states: Sequence[State],
        tasks: Sequence[str] | None = None,
        infos: Sequence[Info] | None = None,
        max_concurrent: int = -1,
        **kwargs: Any,
    ) -> RolloutScores:
        """Each task's rollouts scored by its environment's own ``score_rollouts``."""
        n = len(prompts)
        tasks = list(tasks) if tasks is not None else ["default"] * n
        infos = list(infos) if infos is not None else [{} for _ in range(n)]
        by_task: dict[str, list[int]] = {}
        for i, task in enumerate(tasks):
            if task not in self.env_map:
                raise KeyError(f"No environment for task {task!r}; known: {sorted(self.env_map)}.")
            by_task.setdefault(task, []).append(i)
        out = RolloutScores([0.0] * n, {name: [float("nan")] * n for name in self._all_names})
        for task, idx in by_task.items():
            part = RolloutScores.from_mapping(await maybe_await(self.env_map[task].rubric.score_rollouts(
                [prompts[i] for i in idx], [completions[i] for i in idx], [answers[i] for i in idx],
                [states[i] for i in idx], [tasks[i] for i in idx], [infos[i] for i in idx],
                max_concurrent, **kwargs,
            )))
            part.check_length(len(idx), f"{type(self.env_map[task].rubric).__name__}.score_rollouts")
            for j, i in enumerate(idx):
                out.reward[i] = part.reward[j]
                for name, values in part.metrics.items():
                    out.metrics.setdefault(name, [float("nan")] * n)[i] = values[j]
        return out


class EnvGroup(Environment):
    """Mixes environments: their datasets are concatenated with ``task`` set to each
    environment's name, and every rollout runs in (and is scored by) the environment its
    row's ``task`` names.

    >>> env = EnvGroup([math_env, wordle_env], env_names=["math", "wordle"])
    """

    def __init__(
        self,
        envs: Sequence[Environment],
        env_names: Sequence[str] | None = None,
        **kwargs: Any,
    ) -> None:
        if not envs:
            raise ValueError("EnvGroup needs at least one environment.")
        names = list(env_names) if env_names is not None else [
            e.env_id or f"{type(e).__name__}_{i}" for i, e in enumerate(envs)
        ]
        if len(names) != len(envs) or len(set(names)) != len(names):
            raise ValueError(f"env_names must be unique, one per environment; got {names}.")
        self.envs = list(envs)
        self.env_names = names
        self.env_map = dict(zip(names, envs, strict=True))
        dataset = _concat([e.dataset for e in envs], names)
        eval_dataset = _concat([e.eval_dataset for e in envs], names)
        kinds = {e.message_type for e in envs}
        if len(kinds) > 1:
            raise ValueError("EnvGroup members must share a message_type (all chat or all completion).")
        super().__init__(
            dataset=dataset,
            eval_dataset=eval_dataset,
            rubric=EnvGroupRubric(self.env_map),
            message_type=kinds.pop(),
            **kwargs,
        )

    def get_env_for_task(self, task: str) -> Environment:
        try:
            return self.env_map[task]
        except KeyError:
            raise KeyError(f"No environment for task {task!r}; known: {self.env_names}.") from None

    async def rollout(
        self,
        client: Any,
        model: str,
        prompt: Messages,
        answer: Any = "",
        task: str = "default",
        info: Info | None = None,
        sampling_args: SamplingArgs | None = None,
        **kwargs: Any,
    ) -> tuple[Messages, State]:
        env = self.get_env_for_task(task)
        result = env.rollout(client, model, prompt, answer, task=task, info=info,
                             sampling_args=sampling_args, **kwargs)
        return await result


def _concat(datasets: Sequence[Any], names: Sequence[str]) -> Any:
    from datasets import Dataset

    rows: list[dict[str, Any]] = []
    for dataset, name in zip(datasets, names, strict=True):
        if dataset is None:
            continue
        for row in dataset.to_list():
            row["task"] = name
            rows.append(row)
    if not rows:
        return None
    for index, row in enumerate(rows):
        row["example_id"] = index
    return Dataset.from_list(rows)
