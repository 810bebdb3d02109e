"""GRPOTrainer: group-relative policy optimisation on transformers' Trainer.

Reading order, top to bottom:

1. Setup: model (+ LoRA), reference model when ``beta > 0``, the environment (given, or
   built from reward functions), the generation backend (the in-process engine over the
   training model, or a vf-vllm server whose weights follow every optimizer step).
2. Generation round (``_generate_round``), once per ``gradient_accumulation_steps x
   num_iterations`` micro-steps: draw prompts (leaving out those over ``max_prompt_length``),
   run ``num_generations`` rollouts each through the environment, group them by the group
   ids the environment returns, drop failed rollouts from their groups, turn rollouts into
   token samples from the server's own token ids (one length policy,
   :func:`verifiers.processing.rollout_to_samples`), compute group-relative advantages,
   split into micro-batches, and precompute old / reference log-probs where the loss needs
   them.
3. Loss (``compute_loss``): log-probs of the completion tokens under the current policy and
   :func:`verifiers_trainer.grpo.math.grpo_loss` on them.

Accelerate, DeepSpeed, FSDP, checkpoints, callbacks, ``report_to`` and the optimizer come
from ``transformers.Trainer``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import os
import random
import statistics
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, NamedTuple

import torch
from torch.utils.data import Dataset
from transformers import PreTrainedModel, Trainer

import verifiers as vf
from verifiers.processing import LengthPolicy, TokenSample, rollout_to_samples
from verifiers_trainer.grpo import launch, round_rewards
from verifiers_trainer.grpo.batching import (
    GenerationBatch,
    Sample,
    advantages_for,
    collate,
    groups_by_id,
    prompt_length,
    split,
    trained_rewards,
    training_samples,
)
from verifiers_trainer.grpo.completions_log import log_completions
from verifiers_trainer.grpo.config import GRPOConfig
from verifiers_trainer.grpo.constructor import resolve
from verifiers_trainer.grpo.documented_api import DocumentedAPI
from verifiers_trainer.grpo.host_memory import return_freed_memory
from verifiers_trainer.grpo.math import (
    dapo_step_tokens,
    grpo_loss,
    sampler_correction,
    selective_log_softmax,
)
from verifiers_trainer.grpo.pregenerated import GivenRollouts, from_triple
from verifiers_trainer.grpo.schedules import set_reward_weights, value_at
from verifiers_trainer.grpo.sharding import (
    check_launch,
    full_weights,
    prepare_reference,
    reference_copy,
    writable_weights,
)
from verifiers_trainer.grpo.shared_prompts import prompt_groups, shared_prompt_logps

logger = logging.getLogger(__name__)


class _Draw(NamedTuple):
    """The rows of a round, where the prompt stream stood before drawing them (what a
    checkpoint records), and how many rollouts were left out for an over-long prompt."""

    rows: list[dict[str, Any]] | GivenRollouts
    before: dict[str, Any]
    prompt_too_long: int = 0


class _Generated(NamedTuple):
    results: Any
    seconds: float
    prompt_too_long: int


class _Steps(Dataset):
    """The Trainer's dataloader only paces micro-steps; prompts come from the environment."""

    def __init__(self, length: int) -> None:
        self.length = length

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> dict[str, int]:
        return {"step": index}


class GRPOTrainer(DocumentedAPI, Trainer):
    """Train a causal LM with GRPO on an environment, reward functions, or pre-generated
    completions (:mod:`verifiers_trainer.grpo.constructor` lists the forms):

    - reward functions, TRL's / ATLAS's positional order: ``GRPOTrainer(model, reward_funcs,
      args, train_dataset, eval_dataset, processing_class, reward_processing_classes,
      callbacks, optimizers, peft_config)``; batch functions get ``prompts``, ``completions``
      and the dataset's other columns as keyword lists once per round, per-completion
      functions ``f(completion, ...)`` one completion at a time (see ``grpo/reward_funcs.py``);
    - an environment: ``GRPOTrainer(model=model, processing_class=tokenizer, env=env,
      args=args, peft_config=None)``, or with ``tokenizer=`` / ``config=``;
    - pre-generated completions: ``GRPOTrainer(model=..., tokenizer=..., dataset={"prompts":
      ..., "completions": ..., "rewards": ...}, config=...)`` (see ``grpo/pregenerated.py``).
    """

    def __init__(
        self,
        model: str | PreTrainedModel,
        reward_funcs: Any = None,
        args: GRPOConfig | None = None,
        train_dataset: Any = None,
        eval_dataset: Any = None,
        processing_class: Any = None,
        reward_processing_classes: Any = None,
        callbacks: Sequence[Any] | None = None,
        optimizers: tuple[Any, Any] = (None, None),
        peft_config: Any = None,
        *,
        env: vf.Environment | None = None,
        tokenizer: Any = None,
        config: GRPOConfig | None = None,
        dataset: Any = None,
        client: Any = None,
    ) -> None:
        # -- setup: arguments, data -----------------------------------------------------------
        inputs = resolve(model, reward_funcs, args, train_dataset, eval_dataset, processing_class,
                         reward_processing_classes, callbacks, optimizers, peft_config, env,
                         tokenizer, config, dataset)
        model, processing_class, env, args = inputs.model, inputs.processing_class, inputs.env, inputs.args
        peft_config, callbacks, optimizers = inputs.peft_config, inputs.callbacks, inputs.optimizers
        self.env = env
        self._pregenerated = inputs.pregenerated

        # -- setup: model, LoRA, reference ---------------------------------------------------
        if peft_config is not None:
            from peft import get_peft_model

            model = get_peft_model(model, peft_config)
        if args.gradient_checkpointing:
            model.config.use_cache = False
        self.ref_model = None
        if args.sync_ref_model and (args.beta == 0 or peft_config is not None):
            raise ValueError(
                "sync_ref_model moves a separate reference model toward the policy, so it needs "
                "beta > 0 and full fine-tuning (under LoRA the reference is the adapter-disabled "
                "base model). Turn sync_ref_model off, or set beta > 0 and drop peft_config.")
        if args.beta > 0 and peft_config is None:
            self.ref_model = reference_copy(model)

        if args.max_steps <= 0:  # the length in epochs (passes over the environment's dataset)
            args.max_steps = _steps_for_epochs(args, len(env.get_dataset()))
            logger.info("num_train_epochs=%s over %d rows: max_steps=%d", args.num_train_epochs,
                        len(env.get_dataset()), args.max_steps)
        # micro-steps of every process (the Trainer's dataloader gives each process its share):
        # each process sees max_steps x gradient_accumulation_steps of them, one epoch, so no
        # accumulation window is cut short at an epoch's end
        rounds = (args.max_steps * args.gradient_accumulation_steps * args.per_device_train_batch_size
                  * args.world_size)
        evaluation = None
        launch.resolve_periodic_evaluation(args, env.eval_dataset is not None)
        if args.eval_strategy != "no":  # paces the Trainer's evaluations; evaluate() uses the env
            if env.eval_dataset is None:
                raise ValueError(f"eval_strategy={args.eval_strategy!r} but the environment has no "
                                 "eval dataset: give it one (eval_dataset=...), or set eval_strategy='no'.")
            evaluation = _Steps(1)
        super().__init__(
            model=model, args=args, train_dataset=_Steps(rounds), eval_dataset=evaluation,
            processing_class=processing_class,
            callbacks=list(callbacks or []), optimizers=optimizers,
            data_collator=lambda features: {"steps": torch.tensor([f["step"] for f in features])},
        )
        self.model_accepts_loss_kwargs = False  # the Trainer divides by the accumulation steps
        launch.check_processes(self.accelerator)
        if self.accelerator.device.type == "cpu":  # host memory is the training memory
            return_freed_memory()
        per_step = args.per_device_train_batch_size * self.accelerator.num_processes
        #: micro-batches one generation round fills (gradient_accumulation_steps unless
        #: generation_batch_size asks for rounds spanning several optimizer steps)
        self._micro_per_round = args.validate_batch(self.accelerator.num_processes) // per_step
        if self.ref_model is not None:
            self.ref_model = prepare_reference(self.accelerator, self.ref_model)

        # -- setup: generation backend -------------------------------------------------------
        self._vllm = None
        self._client = client
        self._in_process = client is None and args.generation_backend == "engine"
        check_launch(self.accelerator, self._in_process, args.ds3_gather_for_generation)
        if self._client is None:
            if args.generation_backend == "vllm":
                from verifiers_trainer.inference.vllm_servers import VLLMServers

                self._vllm = VLLMServers.from_config(args)  # one server or several
                self._vllm.wait_until_ready(args.vllm_server_timeout)
                self._client = self._vllm.openai()
            else:
                from verifiers_trainer.inference.engine import InProcessEngine

                self._client = InProcessEngine(self.accelerator.unwrap_model(self.model),
                                               processing_class, model_name="policy")
        self._model_name = "policy"
        if self._vllm is not None:
            self._model_name = args.vllm_model_name or self._vllm.model_name()
        launch.note_batches_ahead(args, self._vllm is None)
        if self._vllm is not None:  # env.rollout(client=trainer.client, model=trainer.model)
            from verifiers_trainer.inference.model_client import register

            register(self.model, self._client, self._model_name)
        self._synced_step = -1

        # -- state of the generation rounds ---------------------------------------------------
        self._buffer: list[dict[str, torch.Tensor]] = []
        self._step_tokens: list[float] = []  # dapo: per micro-step of the round, its step's tokens
        self._micro_step = 0
        self._prompt_order: list[int] = []
        self._prompt_position = 0
        self._epoch = 0
        self._pending_metrics: dict[str, list[float]] = defaultdict(list)
        self._round_number = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._in_flight: list[tuple[Any, dict[str, Any]]] = []
        self.round_hooks: list[Callable[[GRPOTrainer], None]] = []
        self._rows_by_difficulty: dict[Any, list[dict[str, Any]]] = {}
        self._ref_synced_step = 0
        self._round_results: Any = None  # the round being scored (compute_rewards' context)
        self._round_epoch = 0
        self._round_metrics_of_rubric: dict[str, list[float]] | None = None

    # =====================================================================================
    # hooks: which rows a round trains on (curriculum), reward weights by phase
    # =====================================================================================
    @property
    def prompts_per_round(self) -> int:
        """Prompts each process draws per generation round (each gets num_generations rollouts)."""
        args = self.args
        return args.per_device_train_batch_size * self._micro_per_round // args.num_generations

    @property
    def num_steps_per_epoch(self) -> int:
        """Optimizer steps per pass over the training set (all processes together)."""
        rounds = len(self.env.get_dataset()) / (self.prompts_per_round * self.accelerator.num_processes)
        steps_per_round = self._micro_per_round / self.args.gradient_accumulation_steps
        return max(1, int(rounds * steps_per_round * self.args.num_iterations))

    def get_batch(self, epoch: int, step: int) -> list[dict[str, Any]]:
        """The rows of the next round (``prompts_per_round`` of them) at ``epoch`` and ``step``
        within it. Default: the next rows of a seeded shuffle of the training set, reshuffled
        every epoch; with ``difficulty_schedule``, rows of the scheduled difficulty. Override
        to choose rows another way (return ``self.sample_batch(rows)`` for a random draw)."""
        schedule = self.args.difficulty_schedule
        if not schedule:
            return self._next_prompts(self.prompts_per_round)
        value = value_at(schedule, epoch + step / self.num_steps_per_epoch)  # checked by GRPOConfig
        if value not in self._rows_by_difficulty:
            column = self.args.difficulty_column
            rows = [row for row in self.env.get_dataset()
                    if (row.get(column) if column in row else (row.get("info") or {}).get(column)) == value]
            if not rows:
                raise ValueError(f"difficulty_schedule asks for {column}={value!r}, but no training row "
                                 f"has it. Check difficulty_column and the dataset's values.")
            self._rows_by_difficulty[value] = rows
        return self.sample_batch(self._rows_by_difficulty[value])

    def sample_batch(self, rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        """``prompts_per_round`` rows drawn at random from ``rows`` (without replacement when
        there are enough), seeded by the run's seed, the round and the process."""
        rng = random.Random(f"{self.args.seed}:{self._round_number}:{self.accelerator.process_index}")
        count = self.prompts_per_round
        return rng.sample(list(rows), count) if len(rows) >= count else rng.choices(list(rows), k=count)

    def _apply_reward_weights(self, progress: float) -> None:
        schedule = self.args.reward_weights_schedule
        if schedule:
            set_reward_weights(self.env.rubric, value_at(schedule, progress))  # checked by GRPOConfig

    # =====================================================================================
    # 2. generation round
    # =====================================================================================
    def _next_prompts(self, count: int) -> list[dict[str, Any]]:
        """The next ``count`` dataset rows, in a seeded order reshuffled every epoch; each
        process draws its own rows."""
        dataset = self.env.get_dataset()
        rows: list[dict[str, Any]] = []
        world, rank = self.accelerator.num_processes, self.accelerator.process_index
        while len(rows) < count:
            if self._prompt_position >= len(self._prompt_order):
                order = list(range(len(dataset)))
                random.Random(self.args.seed + self._epoch).shuffle(order)
                self._prompt_order, self._prompt_position = order, 0
                self._epoch += 1
            index = self._prompt_order[self._prompt_position]
            if self._prompt_position % world == rank:
                rows.append(dataset[index])
            self._prompt_position += 1
        return rows

    def sampling_args(self) -> dict[str, Any]:
        args = self.args
        sampling: dict[str, Any] = {
            "temperature": args.temperature, "top_p": args.top_p,
            "max_tokens": args.max_tokens or args.max_completion_length,
            "logprobs": True, "return_token_ids": True,
        }
        for key in ("top_k", "min_p", "repetition_penalty"):
            value = getattr(args, key, None)
            if value is not None:
                sampling[key] = value
        return sampling

    def push_weights(self) -> None:
        """Hook: give the generation server the policy's current weights (LoRA merged).

        Called before each round's generation, before evaluation and by ``generate``; a
        no-op in process (the engine generates with the training model itself) and when the
        server already has this optimizer step's weights. Override to skip or redirect the
        push (``TeacherGRPOTrainer`` skips it when the teachings come from the frozen
        reference model)."""
        if self._vllm is None or self._synced_step == self.state.global_step:
            return
        # Rounds generated further ahead (this process's, or with several processes anyone's)
        # may be running: their requests are frozen in place during the update.
        running = self.accelerator.num_processes > 1 or any(not f.done() for f, _ in self._in_flight)
        main = self.accelerator.is_main_process
        seconds = 0.0
        with self._whole_policy() as model:  # ZeRO-3 / FSDP: gathered by every process
            if main:  # one push: every process holds the same weights
                if running:
                    self._vllm.pause("keep")
                try:
                    seconds = self._vllm.update_weights(merged_named_weights(model))
                finally:
                    if running:
                        self._vllm.resume()
                if not running:  # cached prefixes hold the old weights' keys and values
                    self._vllm.reset_prefix_cache()
        self.accelerator.wait_for_everyone()  # no process generates before the new weights are in
        if main:
            self._pending_metrics["timing/weight_sync_s"].append(seconds)
        self._synced_step = self.state.global_step

    def _round_rows(self) -> _Draw:
        """The rollouts of the next round (``num_generations`` per prompt, each row with its
        ``example_id`` = ``group_id`` and ``rollout_index``). Completions given with their
        rewards (``get_batch`` returning ``(prompts, completions, rewards)``, or
        pre-generated data) come back as :class:`GivenRollouts`. Prompts longer than
        ``max_prompt_length`` are left out here, before sampling."""
        group = self.args.num_generations
        before = {"prompt_order": list(self._prompt_order), "prompt_position": self._prompt_position,
                  "epoch": self._epoch, "round_number": self._round_number}
        steps_per_epoch = self.num_steps_per_epoch
        step = self.state.global_step
        self._apply_reward_weights(step / steps_per_epoch)
        self._round_epoch = step // steps_per_epoch
        if _takes_no_arguments(self.get_batch):  # get_batch(self), as in verifiers 0.1.x's guide
            prompts = self.get_batch()
        else:
            prompts = self.get_batch(step // steps_per_epoch, step % steps_per_epoch)
        if isinstance(prompts, tuple) and len(prompts) == 3 and all(
                isinstance(part, Sequence) and not isinstance(part, str | Mapping) for part in prompts):
            self._round_number += 1
            return _Draw(from_triple(*prompts), before)
        if self._pregenerated is not None:
            self._round_number += 1
            return _Draw(self._pregenerated.for_rows(prompts), before)
        if len(prompts) != self.prompts_per_round:
            raise ValueError(f"get_batch returned {len(prompts)} rows; a round needs "
                             f"{self.prompts_per_round} (see GRPOTrainer.prompts_per_round).")
        fitting = self._prompts_that_fit(prompts)
        rows = [dict(row) for row in fitting for _ in range(group)]
        self._round_number += 1
        for i, row in enumerate(rows):
            group_id = f"{row.get('example_id')}:{self._round_number}:{i // group}"
            row.update(example_id=group_id, group_id=group_id, rollout_index=i % group)
        return _Draw(rows, before, (len(prompts) - len(fitting)) * group)

    def _prompts_that_fit(self, rows: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
        """The rows whose prompt fits ``max_prompt_length`` (tokens as the generator renders
        them); the others are left out with a warning, and a round where none fits fails."""
        limit = self.args.max_prompt_length
        if not limit or self.processing_class is None:
            return list(rows)
        fitting, longest = [], 0
        for row in rows:
            if "prompt" not in row:  # built by the environment: checked on its samples
                fitting.append(row)
                continue
            tools = (row.get("info") or {}).get("oai_tools") or self.env.oai_tools
            length = prompt_length(self.processing_class, row["prompt"], tools)
            if length <= limit:
                fitting.append(row)
            longest = max(longest, length)
        if not fitting:
            raise ValueError(f"Every prompt of this round is longer than max_prompt_length={limit} "
                             f"tokens (the longest has {longest}). Raise max_prompt_length (or set it "
                             "to None), or shorten the prompts.")
        if len(fitting) < len(rows):
            logger.warning("%d of %d prompts have more than max_prompt_length=%d tokens (up to %d); "
                           "they are left out of this round.", len(rows) - len(fitting), len(rows),
                           limit, longest)
        return fitting

    async def _rollouts(self, draw: _Draw) -> _Generated:
        start = time.perf_counter()
        if isinstance(draw.rows, GivenRollouts):
            return _Generated(draw.rows.results(), 0.0, 0)
        results = await self.env.a_generate(
            draw.rows, self._client, self._model_name, self.sampling_args(),
            max_concurrent=self.args.max_concurrent, progress=False,
            score_rollouts=not round_rewards.scored_after_round(self),
        )
        return _Generated(results, time.perf_counter() - start, draw.prompt_too_long)

    def _pipelined(self) -> bool:
        """Generate the next round while training on this one (vf-vllm only: in process, the
        model cannot generate and train at once)."""
        return self._vllm is not None and self.args.num_batches_ahead > 0

    def _submit(self) -> None:
        import threading

        if self._loop is None:
            self._loop = asyncio.new_event_loop()
            threading.Thread(target=self._loop.run_forever, name="vf-generation", daemon=True).start()
        draw = self._round_rows()
        draw.before["submitted_step"] = self.state.global_step
        future = asyncio.run_coroutine_threadsafe(self._rollouts(draw), self._loop)
        self._in_flight.append((future, draw.before))

    def _generate_round(self) -> GenerationBatch:
        """One GRPO round: draw rows and generate their rollouts (or take the round generated
        ahead), score them, group them by the environment's group ids, turn them into token
        samples, compute advantages within each group, and split into micro-batches."""
        generated = self._generated_round()  # rows drawn, rollouts generated
        results = generated.results
        self._score_round(results)
        round_rewards.check_round(self.accelerator, results["errors"])
        failed = [e is not None for e in results["errors"]]
        groups, dropped = groups_by_id(_group_ids(results), failed)  # failed rollouts left out
        tokens = {i: self._token_samples(results, i) for g in groups for i in g}
        advantages = advantages_for(trained_rewards(results["rewards"], tokens), groups,
                                    self.args.scale_rewards)
        samples = training_samples(tokens, advantages)
        micro_batches = split(samples, self._micro_per_round)

        metrics = self.round_metrics(results, failed, dropped, generated.seconds)
        metrics["rollouts/prompt_too_long"] = float(generated.prompt_too_long + sum(
            any(t.prompt_too_long for t in ts) for ts in tokens.values()))
        if results.get("given_rewards") and samples:  # no server usage: count the tokens trained
            metrics["completions/mean_length"] = statistics.fmean(len(s.completion_ids) for s in samples)
        return GenerationBatch(samples, results["rewards"], metrics,
                               self._preview(results, sorted(advantages)), micro_batches)

    def _preview(self, results: Any, kept: list[int]) -> list[dict[str, Any]]:
        """The first trained rollouts of the round, for ``log_completions``."""
        return [{"prompt": results["prompts"][i], "completion": results["completions"][i],
                 "reward": results["rewards"][i],
                 "metrics": {name: values[i] for name, values in results["metrics"].items()}}
                for i in kept[: self.args.num_completions_to_print]]

    def _generated_round(self) -> _Generated:
        """The round's rollouts. Pipelined (``num_batches_ahead`` = k >= 1 with vf-vllm): the
        round was generated while earlier steps trained, with weights up to k steps old
        (rounds still running when new weights arrive are frozen for the update and finish
        with the new ones; the sampler correction uses the logprobs they were sampled with),
        and rounds are queued until k are in flight. Otherwise drawn and generated now, with
        the current weights."""
        args = self.args
        if not self._pipelined():
            draw = self._round_rows()
            self.push_weights()
            with self.generation_context():
                return asyncio.run(self._rollouts(draw))
        if not self._in_flight:
            self.push_weights()
            self._submit()
        future, submitted = self._in_flight.pop(0)
        self._pending_metrics["async/off_policy_steps"].append(
            float(self.state.global_step - submitted["submitted_step"]))
        waited = time.perf_counter()
        try:
            generated = future.result(timeout=args.async_generation_timeout)
        except TimeoutError as exc:
            raise RuntimeError(
                f"A generation round took longer than async_generation_timeout="
                f"{args.async_generation_timeout} s. Is the vf-vllm server overloaded? Raise "
                "the timeout, or lower max_concurrent / the batch size."
            ) from exc
        self._pending_metrics["timing/generation_wait_s"].append(time.perf_counter() - waited)
        self.push_weights()
        while len(self._in_flight) < args.num_batches_ahead:
            self._submit()
        return generated

    def _score_round(self, results: Any) -> None:
        """Rewards for the whole round at once, when they are scored after it
        (``compute_rewards`` overridden, or a rubric scoring in batches)."""
        if round_rewards.scored_after_round(self):
            self._round_results = results
            rewards = self.compute_rewards(results["completions"], results["prompts"], self._round_epoch)
            round_rewards.apply_rewards(results, rewards, getattr(self, "_round_metrics_of_rubric", None))
            self._round_metrics_of_rubric = None

    def _token_samples(self, results: Any, i: int) -> list[TokenSample]:
        """Rollout ``i``'s token samples, with the run's length limits applied once each."""
        args = self.args
        policy = LengthPolicy(
            max_prompt_length=args.max_prompt_length, max_completion_length=args.max_completion_length,
            max_seq_len=args.max_seq_len, mask_truncated=args.mask_truncated_completions,
            zero_truncated=args.zero_truncated_completions)
        return rollout_to_samples(
            results["prompts"][i], results["completions"][i], results["states"][i],
            results["rewards"][i], policy, processing_class=self.processing_class,
            message_type=self.env.message_type, mask_env_responses=args.mask_env_responses)

    def compute_rewards(self, completions: list[Any], prompts: list[Any], epoch: int | None = None) -> Any:
        """The rewards of this round's completions (one per completion): the given rewards
        of pre-generated completions, else the environment's rubric's scores. Called once
        per round when overridden (or when the rubric scores in batches); the returned list
        (or ``{"reward": [...], ...}``) is what the round trains on. ``epoch``: passes over
        the training set so far."""
        results = self._round_results
        if results.get("given_rewards"):
            return list(results["rewards"])
        scores = round_rewards.score_with_rubric(self.env.rubric, results, prompts, completions)
        self._round_metrics_of_rubric = {k: v for k, v in scores.items() if k != "reward"}
        return scores["reward"]

    def _whole_policy(self) -> Any:
        """The bare policy with whole weights (a no-op unless ZeRO-3 / FSDP shard them)."""
        plugin = getattr(self.accelerator.state, "fsdp_plugin", None)
        return full_weights(self.model_wrapped, getattr(plugin, "reshard_after_forward", True))

    def _generation_weights(self) -> Any:
        """Whole weights while the in-process engine generates (see ``grpo/sharding.py``)."""
        return self._whole_policy() if self._in_process else contextlib.nullcontext()

    @contextlib.contextmanager
    def generation_context(self) -> Iterator[Any]:
        """Hook: the context every generation with the policy runs in (a round's rollouts,
        evaluation, ``generate(prompts)``): the model in eval mode (train mode restored
        after), and in process its whole weights gathered when ZeRO-3 / FSDP shard them.
        Yields the whole model in process, else ``None``. Override to add set-up around
        generation (call ``super().generation_context()`` inside)."""
        was_training = self.model.training
        self.model.eval()
        try:
            with self._generation_weights() as whole:
                yield whole
        finally:
            self.model.train(was_training)

    @property
    def generation_client(self) -> Any:
        """Hook: the OpenAI-compatible client rollouts are sent to (the in-process engine,
        or the vf-vllm servers' client); assign another client to generate elsewhere."""
        return self._client

    @generation_client.setter
    def generation_client(self, client: Any) -> None:
        self._client = client

    @contextlib.contextmanager
    def round_context(self) -> Iterator[None]:
        """Hook: the context each generation round runs in, from drawing its rows to the
        old and reference log-probs of its micro-batches (``TeacherGRPOTrainer`` keeps its
        student on the accelerator there). Default: nothing. Runs once per round, on each
        process; per-round work after the batches are ready goes in ``round_hooks``."""
        yield

    def round_metrics(self, results: Any, failed: list[bool], dropped: int, seconds: float) -> dict[str, float]:
        """Hook: the metrics logged for one generation round (averaged over the rounds of
        each logging interval).

        ``results``: the round's scored rollouts (``results["rewards"]``, ``["states"]``,
        ``["errors"]``, ``["metrics"]``, ...); ``failed``: one flag per rollout;
        ``dropped``: rollouts left out of their groups; ``seconds``: generation time.
        Override to add metrics: ``metrics = super().round_metrics(...)``, then update it."""
        ok = [i for i, f in enumerate(failed) if not f]
        metrics: dict[str, float] = {
            "reward": statistics.fmean(results["rewards"][i] for i in ok) if ok else float("nan"),
            "rollouts/failed": float(sum(failed)),
            "rollouts/dropped_from_groups": float(dropped),
            "timing/generation_s": seconds,
        }
        errors = [e for e in results["errors"] if e is not None]
        if errors:  # why, by reason (the text before the first colon), and one example
            for error in errors:
                key = f"rollouts/failed/{error.split(':', 1)[0].strip()[:40]}"
                metrics[key] = metrics.get(key, 0.0) + 1.0
            logger.warning("%d of %d rollouts failed this round (dropped from their groups); e.g. %s",
                           len(errors), len(failed), errors[0][:300])
        if len(ok) > 1:
            metrics["reward_std"] = statistics.pstdev(results["rewards"][i] for i in ok)
        for name, values in results["metrics"].items():
            clean = [values[i] for i in ok if values[i] == values[i]]
            if clean:
                metrics[f"rewards/{name}"] = statistics.fmean(clean)
        lengths = [s.get("usage", {}).get("completion_tokens") or 0 for s in results["states"]]
        metrics["completions/mean_length"] = statistics.fmean(lengths) if lengths else 0.0
        truncated = [bool(s.get("is_truncated")) for s in results["states"]]
        metrics["completions/truncated_ratio"] = sum(truncated) / max(1, len(truncated))
        return metrics

    def _policy_logps(self, model: Any, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Log-probs of the completion tokens (temperature-scaled, like the sampler's)."""
        groups = prompt_groups(batch["prompt_ids"]) if self._can_share_prompts(model) else None
        if groups is not None:  # each distinct prompt once (see grpo/shared_prompts.py)
            return shared_prompt_logps(model, batch, groups, max(self.args.temperature, 1e-5),
                                       self.accelerator.device)
        completion_len = batch["completion_ids"].shape[1]
        input_ids = torch.cat([batch["prompt_ids"], batch["completion_ids"]], dim=1)
        attention = torch.cat([batch["prompt_mask"], batch["completion_attention"]], dim=1)
        positions = (attention.cumsum(dim=1) - 1).clamp(min=0)
        device = self.accelerator.device
        # Only the positions that predict completion tokens go through the LM head (the
        # last prompt position and every completion position but the last).
        logits = model(input_ids=input_ids.to(device), attention_mask=attention.to(device),
                       position_ids=positions.to(device), use_cache=False,
                       logits_to_keep=completion_len + 1).logits
        # scaled by the temperature and upcast inside, a row at a time: no full-size copies
        return selective_log_softmax(logits[:, :-1, :], batch["completion_ids"].to(device),
                                     max(self.args.temperature, 1e-5))

    def _can_share_prompts(self, model: Any) -> bool:
        """One process, no gradient checkpointing (it turns the KV cache off), no DeepSpeed
        or FSDP (their sharded forwards must run alike on every process)."""
        if (self.accelerator.num_processes > 1 or getattr(self, "is_deepspeed_enabled", False)
                or getattr(self, "is_fsdp_enabled", False)):
            return False
        unwrapped = self.accelerator.unwrap_model(model)
        return not getattr(unwrapped, "is_gradient_checkpointing", False)

    def _fill_buffer(self) -> None:
        args = self.args
        round_ = self._generate_round()
        for key, value in round_.metrics.items():
            self._pending_metrics[key].append(value)
        if args.log_completions and self.accelerator.is_main_process:
            log_completions(self.state.global_step, round_.completions_preview, args.output_dir,
                            args.report_to or ())
        if not round_.samples:
            logger.warning("generation round produced no trainable samples (all groups failed "
                           "or had fewer than two usable rollouts); skipping its updates")
        pad = self.processing_class.pad_token_id
        micro = round_.micro_batches
        self._buffer = [collate(m, pad) if m else {} for m in micro]
        # old log-probs: the policy's as the round begins, needed once it can change during
        # the round (several passes, or a round spanning optimizer steps); otherwise they equal
        # the current ones (compute_loss detaches them)
        need_old = args.num_iterations > 1 or self._micro_per_round > args.gradient_accumulation_steps
        for batch in self._buffer:
            with torch.no_grad():
                if not batch:  # nothing to score, but the forwards the other processes run
                    if need_old:
                        self._policy_logps(self.model, self._idle_batch())
                    if args.beta > 0:
                        self._reference_logps(self._idle_batch())
                    continue
                if need_old:
                    batch["old_logps"] = self._policy_logps(self.model, batch).cpu()
                if args.beta > 0:
                    batch["ref_logps"] = self._reference_logps(batch).cpu()
        self._step_tokens = self._round_step_tokens() if args.loss_type == "dapo" else []
        for hook in self.round_hooks:
            hook(self)

    def _round_step_tokens(self) -> list[float]:
        """dapo's normaliser for each micro-step of the round just filled: the trained tokens
        of its optimizer step over all processes (one all-reduce per round; see
        :func:`verifiers_trainer.grpo.math.dapo_step_tokens`)."""
        local = torch.tensor([float(b["completion_mask"].sum()) if b else 0.0 for b in self._buffer],
                             dtype=torch.float64, device=self.accelerator.device)
        counts = self.accelerator.reduce(local, reduction="sum").tolist()
        return dapo_step_tokens(counts, self._micro_step, self.args.num_iterations,
                                self.args.gradient_accumulation_steps)

    @torch.no_grad()
    def sync_ref_model(self) -> None:
        """ref <- alpha * policy + (1 - alpha) * ref (``ref_model_mixup_alpha``; 1 copies)."""
        alpha = self.args.ref_model_mixup_alpha
        with self._whole_policy() as policy, writable_weights(self.ref_model) as reference:
            for ref_param, param in zip(reference.parameters(), policy.parameters(), strict=True):
                ref_param.mul_(1.0 - alpha).add_(param.detach().to(ref_param.dtype), alpha=alpha)

    def _idle_batch(self) -> dict[str, torch.Tensor]:
        """A one-token batch for a process with nothing to compute. Under ZeRO-3 and FSDP
        every forward gathers the weights it uses with all processes, so each process must
        run the same forwards (the same code path: LoRA's disabled adapter included)."""
        pad = self.processing_class.pad_token_id
        return collate([Sample([pad], [pad], [0], None, 0.0, 0.0)], pad)

    def _reference_logps(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        if self.ref_model is not None:
            return self._policy_logps(self.ref_model, batch)
        model = self.accelerator.unwrap_model(self.model)
        with model.disable_adapter():  # LoRA: the base model is the reference
            return self._policy_logps(self.model, batch)

    def _prepare_inputs(self, inputs: Any) -> dict[str, torch.Tensor]:
        per_round = self._micro_per_round * self.args.num_iterations
        if self._micro_step % per_round == 0:
            step = self.state.global_step
            if self.args.sync_ref_model and step - self._ref_synced_step >= self.args.ref_model_sync_steps:
                self.sync_ref_model()
                self._ref_synced_step = step
            with self.round_context():
                self._fill_buffer()
        batch = self._buffer[self._micro_step % self._micro_per_round]
        if batch and self._step_tokens:  # dapo: the step's token count travels with the batch
            batch = {**batch, "num_items_in_batch": self._step_tokens[self._micro_step % per_round]}
        self._micro_step += 1
        return batch

    # =====================================================================================
    # 3. loss
    # =====================================================================================
    def compute_loss(self, model: Any, inputs: dict[str, torch.Tensor], return_outputs: bool = False,
                     num_items_in_batch: Any = None) -> torch.Tensor:
        if return_outputs:
            raise ValueError("GRPOTrainer.compute_loss does not return outputs.")
        if not inputs:  # an empty micro-batch (every group failed): a zero loss, through the
            return self._policy_logps(model, self._idle_batch()).sum() * 0.0  # others' forward
        args = self.args
        device = self.accelerator.device
        mask = inputs["completion_mask"].to(device)
        logps = self._policy_logps(model, inputs)
        old = inputs["old_logps"].to(device) if "old_logps" in inputs else logps.detach()
        ref = inputs["ref_logps"].to(device) if "ref_logps" in inputs else None
        normaliser = None
        if args.loss_type == "dapo":
            # The Trainer divides each micro-batch's loss by the accumulation steps and data
            # parallel averages gradients over processes; dividing the step's token count by both
            # makes the step's gradient the token sum's over that count (TRL's scaling).
            if "num_items_in_batch" not in inputs:
                raise ValueError("loss_type='dapo' needs the optimizer step's token count: pass "
                                 "batches from GRPOTrainer._prepare_inputs, which adds "
                                 "'num_items_in_batch' to each.")
            accumulation = getattr(self, "current_gradient_accumulation_steps", None) or \
                args.gradient_accumulation_steps
            normaliser = inputs["num_items_in_batch"] / (self.accelerator.num_processes * accumulation)
        weights = None
        if "sampler_logps" in inputs and args.sampler_correction_cap:
            weights = sampler_correction(old, inputs["sampler_logps"].to(device), mask,
                                         args.sampler_correction_cap)
        loss, metrics = grpo_loss(
            logps, old, ref, inputs["advantages"].to(device), mask,
            beta=args.beta, epsilon_low=args.epsilon,
            epsilon_high=args.epsilon_high if args.epsilon_high is not None else args.epsilon,
            delta=args.delta, loss_type=args.loss_type,
            importance_sampling_level=args.importance_sampling_level,
            max_completion_length=args.max_completion_length, sampler_weights=weights,
            num_items_in_batch=normaliser, use_bias_correction_kl=args.use_bias_correction_kl,
        )
        for key, value in metrics.items():
            self._pending_metrics[key].append(float(value))
        return loss

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        for key, values in self._pending_metrics.items():
            clean = [v for v in values if v == v]
            if clean:
                logs[key] = statistics.fmean(clean)
        self._pending_metrics.clear()
        super().log(logs, start_time)

    # =====================================================================================
    # checkpoints: the generation state travels with the Trainer's own
    # =====================================================================================
    def _generation_state_file(self, folder: str) -> str:
        return os.path.join(folder, f"vf_generation_state-{self.accelerator.process_index}.json")

    def _save_checkpoint(self, model: Any, trial: Any) -> None:
        """Save as the Trainer does (weights, optimizer, scheduler, RNG, trainer state), plus
        where each process is in its prompt stream."""
        super()._save_checkpoint(model, trial)
        folder = os.path.join(self._get_output_dir(trial=trial), f"checkpoint-{self.state.global_step}")
        state = {"prompt_order": self._prompt_order, "prompt_position": self._prompt_position,
                 "epoch": self._epoch, "round_number": self._round_number}
        if self._in_flight:  # a round generated ahead is not trained on yet: redraw it on resume
            state.update(self._in_flight[0][1])
        state["micro_step"] = self._micro_step
        with open(self._generation_state_file(folder), "w") as handle:
            json.dump(state, handle)
        if hasattr(self._client, "get_rng_state"):  # the in-process engine's sampling stream
            torch.save(self._client.get_rng_state(), self._generation_state_file(folder) + ".rng")

    def train(self, resume_from_checkpoint: str | bool | None = None, **kwargs: Any) -> Any:
        """``Trainer.train``; resuming also restores the prompt stream, and the generation
        server's weights are re-synced before the first new round."""
        if resume_from_checkpoint:
            folder = resume_from_checkpoint
            if folder is True:
                from transformers.trainer_utils import get_last_checkpoint

                folder = get_last_checkpoint(self.args.output_dir)
                if folder is None:
                    raise ValueError(f"No checkpoint to resume from in {self.args.output_dir}.")
            path = self._generation_state_file(str(folder))
            if os.path.isfile(path):
                with open(path) as handle:
                    state = json.load(handle)
                self._prompt_order = state["prompt_order"]
                self._prompt_position = state["prompt_position"]
                self._epoch = state["epoch"]
                self._round_number = state.get("round_number", 0)
                per_round = self._micro_per_round * self.args.num_iterations
                self._micro_step = state["micro_step"] // per_round * per_round
                if os.path.isfile(path + ".rng") and hasattr(self._client, "set_rng_state"):
                    self._client.set_rng_state(torch.load(path + ".rng", weights_only=False))
            else:
                logger.warning("%s has no generation state (%s): the prompt stream restarts.",
                               folder, os.path.basename(path))
            self._synced_step = -1
        try:
            return super().train(resume_from_checkpoint=resume_from_checkpoint, **kwargs)
        finally:
            self._stop_generation()

    def _stop_generation(self) -> None:
        """Drop a round generated ahead that training no longer needs; stop its loop."""
        for future, _ in self._in_flight:
            future.cancel()
        self._in_flight.clear()
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._loop = None

    # =====================================================================================
    # evaluation through the environment
    # =====================================================================================
    def evaluate(self, eval_dataset: Any = None, ignore_keys: Any = None,
                 metric_key_prefix: str = "eval") -> dict[str, float]:
        """Evaluate the current policy on the environment's eval set (the rewards and each
        reward function's mean), greedy unless ``eval_temperature`` is set."""
        self.push_weights()
        sampling = {**self.sampling_args(), "temperature": self.args.eval_temperature}
        batched = bool(getattr(self.env.rubric, "scores_in_batches", False))
        with self.generation_context():
            results = asyncio.run(self.env.a_evaluate(
                self._client, self._model_name, num_examples=self.args.eval_num_examples,
                sampling_args=sampling, max_concurrent=self.args.max_concurrent,
                progress=False, score_rollouts=not batched))
        if batched:  # batch reward functions see the whole eval set at once
            scores = round_rewards.score_with_rubric(self.env.rubric, results, results["prompts"],
                                                     results["completions"])
            round_rewards.apply_rewards(results, scores, None)
        summary = results.summary()
        metrics = {f"{metric_key_prefix}_reward": summary["reward"]["mean"],
                   f"{metric_key_prefix}_failed": float(summary["num_failed"])}
        for name, stats in summary["metrics"].items():
            metrics[f"{metric_key_prefix}_{name}"] = stats["mean"]
        self.log(metrics)
        self.control = self.callback_handler.on_evaluate(self.args, self.state, self.control, metrics)
        return metrics


def merged_named_weights(model: Any) -> list[tuple[str, torch.Tensor]]:
    """The policy's weights under the base model's names; LoRA adapters merged in."""
    if not hasattr(model, "merge_adapter"):
        return [(name, p.detach()) for name, p in model.named_parameters()]
    model.merge_adapter()
    try:
        out = []
        for name, p in model.named_parameters():
            if "lora_" in name or ".original_module." in name:
                continue  # adapter weights are merged in; the original copy is not served
            clean = (name.removeprefix("base_model.model.").replace(".base_layer", "")
                     .replace(".modules_to_save.default", ""))
            out.append((clean, p.detach().clone()))
        return out
    finally:
        model.unmerge_adapter()


_merged_named_weights = merged_named_weights  # the name tests and scripts import


def _takes_no_arguments(method: Any) -> bool:
    import inspect

    return not [p for p in inspect.signature(method).parameters.values()
                if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL)]


def _group_ids(results: Any) -> list[Any]:
    """The group of each rollout, as the environment returned it (the trainer's rows set
    ``group_id``, one per prompt and round; given completions carry their own)."""
    return list(results["group_ids"])


def _steps_for_epochs(args: GRPOConfig, rows: int) -> int:
    """Optimizer steps for ``num_train_epochs`` passes over ``rows`` prompts (``max_steps`` <= 0)."""
    if not args.num_train_epochs > 0:
        raise ValueError("Give the training length: max_steps > 0 (optimizer steps) or "
                         f"num_train_epochs > 0 (passes over the dataset); got max_steps={args.max_steps}, "
                         f"num_train_epochs={args.num_train_epochs}.")
    per_step = args.per_device_train_batch_size * args.world_size * args.gradient_accumulation_steps
    prompts_per_step = max(1, per_step // args.num_generations)
    return max(1, math.ceil(args.num_train_epochs * rows / prompts_per_step) * args.num_iterations)
