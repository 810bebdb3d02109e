"""TeacherGRPOTrainer: GRPO for a teacher whose reward is how much its teaching helps a student.

Reading order, top to bottom:

1. Setup (``__init__``): the teaching data (an environment's question / answer rows, or a
   dataset with a ``ground_truth`` column) becomes a :class:`TeachingEnv`; the GRPOTrainer
   is set up on it; then the student: a second vf-vllm server, a model or path loaded here,
   or by default the reference model (a frozen copy of the initial model when the trainer
   keeps none). With ``use_reference_teacher_model`` the teachings are sampled from the
   reference model instead of the policy.
2. Each round (GRPOTrainer's round over ``TeachingEnv.a_generate``, in ``round_context``): the
   student's baseline and probe per question, ``num_generations`` teachings per question
   from the teacher prompted with question + probe, the student's answer given each
   teaching, the rewards. The loss is computed from the teacher rollouts' own token ids, so
   under the very prompt each teaching was sampled from. The teacher's serving weights
   follow every optimizer step; the student's never change. A local student sits on the
   accelerator for the round only and is offloaded to the CPU while the teacher trains.
3. Metrics (``round_metrics``): ``teaching/*`` and a random share of logged samples.
"""

from __future__ import annotations

import contextlib
import copy
import inspect
import json
import logging
import os
import random
from collections.abc import Iterator
from typing import Any

from transformers import PreTrainedModel

from verifiers_trainer.grpo.config import GRPOConfig
from verifiers_trainer.grpo.trainer import GRPOTrainer
from verifiers_trainer.teacher.config import TeacherGRPOConfig, teaching_settings
from verifiers_trainer.teacher.data import teaching_rows
from verifiers_trainer.teacher.env import TeachingEnv, outcome_of
from verifiers_trainer.teacher.extraction import extract_solution, message_text, question_text
from verifiers_trainer.teacher.reward import AdaptiveTeachingReward, teaching_metrics
from verifiers_trainer.teacher.student import Placement, Student, freeze
from verifiers_trainer.teacher.templates import TeachingTemplates

logger = logging.getLogger(__name__)

SAMPLES_FILE = "teaching_samples.jsonl"


class TeacherGRPOTrainer(GRPOTrainer):
    """GRPO on a teacher model whose teachings are rewarded by a student's improvement.

    Takes every argument of :class:`GRPOTrainer` (``model``, ``reward_funcs``, ``args``,
    ``train_dataset``, ``env``, ``peft_config``, ...), plus the keywords below. ``args`` is a
    :class:`TeacherGRPOConfig` (the teaching settings: probe length, the four templates, the
    student's sampling and server), or a plain ``GRPOConfig`` for the default settings.

    Args:
        student_model: the student (a path or a loaded model; it shares the teacher's
            tokenizer). Default: the reference model, i.e. the teacher's initial weights.
            Not allowed with ``args.student_vllm_server_port`` (the server names it).
        use_reference_teacher_model: sample teachings from the frozen reference model
            instead of the policy being trained (off-policy; the sampler correction
            reweights the loss, and vf-vllm weights are not updated).
        student_model_init_kwargs: ``from_pretrained`` keyword arguments when
            ``student_model`` is a path (e.g. ``{"torch_dtype": "bfloat16"}``).
        logging_prob: the share of rollouts whose record (question, probe, teaching, the
            student's answers, reward) is logged and appended to
            ``<output_dir>/teaching_samples.jsonl``; in [0, 1].
        disable_student_offloading: keep a local student on the accelerator all the time.

    ``reward_funcs`` default to ``[AdaptiveTeachingReward()]``; each is called TRL-style
    with ``prompts`` (the teacher prompts), ``completions`` (the teachings),
    ``ground_truths``, ``baseline_solutions``, ``solutions``, ``questions``,
    ``teaching_tokens`` and the dataset's other columns.
    """

    def __init__(self, *args: Any, student_model: str | PreTrainedModel | None = None,
                 use_reference_teacher_model: bool = False,
                 student_model_init_kwargs: dict[str, Any] | None = None,
                 logging_prob: float = 0.0, disable_student_offloading: bool = False,
                 **kwargs: Any) -> None:
        # -- setup: arguments ----------------------------------------------------------------
        if not 0.0 <= logging_prob <= 1.0:
            raise ValueError(f"logging_prob must be in [0, 1]; got {logging_prob!r}.")
        try:
            bound = inspect.signature(GRPOTrainer.__init__).bind(self, *args, **kwargs)
        except TypeError as exc:
            raise TypeError(f"TeacherGRPOTrainer: {exc}") from exc
        call = {k: v for k, v in bound.arguments.items() if k != "self"}
        if call.get("args") is not None and call.get("config") is not None:
            raise TypeError("Pass the configuration once: args=... (or its alias config=...).")
        config = call.pop("config", None)
        config = call.get("args") or config or TeacherGRPOConfig(output_dir="outputs/teacher")
        if not isinstance(config, GRPOConfig):
            raise TypeError(f"args must be a TeacherGRPOConfig (or a GRPOConfig), got "
                            f"{type(config).__name__}.")
        teaching = teaching_settings(config)
        tokenizer = call.pop("tokenizer", None)
        model, tokenizer = call["model"], call.get("processing_class") or tokenizer
        if isinstance(model, str):
            from verifiers_trainer.models.loading import get_model_and_tokenizer

            model, loaded = get_model_and_tokenizer(model)
            tokenizer = tokenizer or loaded
        if tokenizer is None:
            raise TypeError("TeacherGRPOTrainer needs processing_class=tokenizer (or a model path).")
        call.update(args=config, model=model, processing_class=tokenizer)
        if use_reference_teacher_model and call.get("client") is not None:
            raise ValueError("use_reference_teacher_model=True generates the teachings with the "
                             "reference model; client=... would too: pass only one.")
        on_server = teaching.student_vllm_server_port is not None
        if on_server and student_model is not None:
            raise ValueError("student_model=... and args.student_vllm_server_port both name the "
                             "student; the server serves its own model: pass only one.")

        # -- setup: the teaching environment --------------------------------------------------
        funcs = _reward_funcs(call.get("reward_funcs"))
        for func in funcs:
            if isinstance(func, AdaptiveTeachingReward) and func.tokenizer is None:
                func.tokenizer = tokenizer
        judge = next((f for f in funcs if isinstance(f, AdaptiveTeachingReward)), None)
        env = call.get("env")
        if env is not None and call.get("train_dataset") is not None:
            raise TypeError("Give either env=... (its question/answer rows) or train_dataset=..., "
                            "not both.")
        train = env.get_dataset() if env is not None else call.get("train_dataset")
        if train is None:
            raise TypeError("TeacherGRPOTrainer needs env=... or train_dataset=... (questions "
                            "with a ground_truth or answer column).")
        evaluation = env.eval_dataset if env is not None else call.get("eval_dataset")
        call.update(env=TeachingEnv(
            dataset=teaching_rows(train), eval_dataset=teaching_rows(evaluation, "eval_dataset"),
            templates=TeachingTemplates.from_config(teaching),
            judge=judge or AdaptiveTeachingReward(tokenizer=tokenizer),
            reward_funcs=funcs or None, tokenizer=tokenizer, max_concurrent=config.max_concurrent,
        ), reward_funcs=None, train_dataset=None, eval_dataset=None, reward_processing_classes=None)

        # -- setup: GRPO on the teacher (a frozen copy first, if the student needs one) -------
        keeps_reference = config.beta > 0 and call.get("peft_config") is None
        wants_reference = use_reference_teacher_model or (student_model is None and not on_server)
        frozen = freeze(copy.deepcopy(model)) if wants_reference and not keeps_reference else None
        super().__init__(**call)
        self.env: TeachingEnv
        reference = frozen if frozen is not None else (
            self.accelerator.unwrap_model(self.ref_model) if self.ref_model is not None else None)
        self.use_reference_teacher_model = use_reference_teacher_model
        self.logging_prob = logging_prob
        self._sample_rng = random.Random(config.seed)
        #: the teaching settings (``TeacherGRPOConfig``'s fields; defaults for a GRPOConfig)
        self.teaching = teaching
        self._offload_seconds = 0.0
        self._warned_prompt = False

        # -- setup: the student ---------------------------------------------------------------
        self.student_model = None if on_server else student_model or reference
        offload = not disable_student_offloading and not (self.is_deepspeed_enabled
                                                          or self.is_fsdp_enabled)
        self.student = self._make_student(student_model_init_kwargs, offload)
        self.env.student = self.student

        # -- setup: the teacher's generation -------------------------------------------------
        self.teacher_model = (reference if use_reference_teacher_model
                              else self.accelerator.unwrap_model(self.model))
        for func in funcs:
            if isinstance(func, AdaptiveTeachingReward) and func.teacher_model is None:
                func.teacher_model = self.teacher_model
        if use_reference_teacher_model:
            from verifiers_trainer.inference.engine import InProcessEngine

            policy = self.generation_client
            if isinstance(policy, InProcessEngine):  # in process: the reference generates
                self.generation_client = InProcessEngine(reference, tokenizer, model_name=policy.model_name)
            else:
                logger.info("use_reference_teacher_model: the vf-vllm server's weights are not "
                            "updated; it must serve the initial (reference) weights.")

    def _make_student(self, init_kwargs: dict[str, Any] | None, offload: bool) -> Student:
        args, teaching = self.args, self.teaching
        templates = self.env.templates
        max_tokens = teaching.student_max_tokens or args.max_completion_length
        common = dict(templates=templates, max_tokens=max_tokens,
                      max_probe_tokens=teaching.max_probe_tokens, temperature=teaching.student_temperature)
        if teaching.student_vllm_server_port is not None:
            from verifiers_trainer.inference.vllm_client import VLLMClient

            server = VLLMClient(f"http://{teaching.student_vllm_server_host}:{teaching.student_vllm_server_port}",
                                args.vllm_server_timeout)
            server.wait_until_ready(args.vllm_server_timeout)
            self.student_server = server
            return Student(server.openai(), server.model_name(), **common)  # type: ignore[arg-type]
        model, tokenizer = self.student_model, self.processing_class
        if isinstance(model, str):
            from verifiers_trainer.models.loading import get_model_and_tokenizer

            model, tokenizer = get_model_and_tokenizer(model, model_kwargs=init_kwargs)
            self.student_model = model
        elif len(tokenizer) > getattr(model.config, "vocab_size", len(tokenizer)):
            raise ValueError(
                f"student_model has {model.config.vocab_size} token embeddings but the teacher's "
                f"tokenizer has {len(tokenizer)} tokens: pass the student's path instead, so that "
                "its own tokenizer is loaded.")
        from verifiers_trainer.inference.engine import InProcessEngine

        freeze(model)
        placement = Placement(model, self.accelerator.device, offload)
        engine = InProcessEngine(model, tokenizer, model_name="student")
        return Student(engine, "student", placement=placement, **common)  # type: ignore[arg-type]

    # =====================================================================================
    # 2. each round
    # =====================================================================================
    @contextlib.contextmanager
    def round_context(self) -> Iterator[None]:
        """The GRPOTrainer's round, with the student on the accelerator throughout (it
        generates, and when it is the reference model it also gives the KL log-probs)."""
        with super().round_context(), self.student.on_device():
            yield

    def push_weights(self) -> None:
        if not self.use_reference_teacher_model:  # the reference's weights never change
            super().push_weights()

    # =====================================================================================
    # 3. metrics and samples
    # =====================================================================================
    def round_metrics(self, results: Any, failed: list[bool], dropped: int,
                      seconds: float) -> dict[str, float]:
        """GRPOTrainer's round metrics, plus ``teaching/*`` and the student's offload time;
        also logs a share (``logging_prob``) of the round's samples."""
        metrics = super().round_metrics(results, failed, dropped, seconds)
        outcomes = [outcome_of(s) for s, f in zip(results["states"], failed, strict=True) if not f]
        metrics.update(teaching_metrics([o for o in outcomes if o is not None]))
        placement = self.student.placement
        if placement is not None and placement.offload:
            metrics["timing/student_offload_s"] = placement.seconds - self._offload_seconds
            self._offload_seconds = placement.seconds
        self._check_prompt_lengths(results["states"])
        if self.logging_prob > 0 and self.accelerator.is_main_process:
            self._log_samples(results, failed)
        return metrics

    def _check_prompt_lengths(self, states: list[Any]) -> None:
        limit = self.args.max_prompt_length
        longest = max((len(t.get("prompt_token_ids") or []) for s in states
                       for t in s.get("turns", [])[:1]), default=0)
        if limit and longest > limit and not self._warned_prompt:
            self._warned_prompt = True
            logger.warning("A teacher prompt has %d tokens, more than max_prompt_length=%d: its "
                           "rollouts are not trained on (counted in rollouts/prompt_too_long). "
                           "Raise max_prompt_length.", longest, limit)

    def _log_samples(self, results: Any, failed: list[bool]) -> None:
        path = os.path.join(self.args.output_dir, SAMPLES_FILE)
        os.makedirs(self.args.output_dir, exist_ok=True)
        with open(path, "a") as handle:
            for i, state in enumerate(results["states"]):
                if failed[i] or self._sample_rng.random() >= self.logging_prob:
                    continue
                info, record = results["infos"][i], state.get("teaching") or {}
                sample = {
                    "step": self.state.global_step, "question": info.get("question"),
                    "probe": info.get("probe"), "baseline_solution": info.get("baseline_solution"),
                    "teaching": message_text(results["completions"][i]),
                    "student_solution": record.get("student_solution"),
                    "ground_truth": results["answers"][i], "reward": results["rewards"][i],
                }
                logger.info("teaching sample: %s", json.dumps(sample)[:2000])
                handle.write(json.dumps(sample) + "\n")

    # =====================================================================================
    # the protocol's student steps, one at a time (ATLAS's names)
    # =====================================================================================
    def _generate_baseline_solutions(self, prompts_text: list[Any]) -> list[str]:
        """The student's solutions without teaching (extracted answers, "" if none)."""
        return self._extract_solutions_from_responses(self._ask_student("baseline", prompts_text))

    def _generate_student_approaches(self, prompts_text: list[Any]) -> list[str]:
        """The student's diagnostic probes (at most ``max_probe_tokens`` each)."""
        return self._ask_student("probe", prompts_text)

    def _extract_solutions_from_responses(self, responses: list[str]) -> list[str]:
        """The answer in ``<solution>`` tags (or ``\\boxed{}``) of each response, else ""."""
        return [extract_solution(r) for r in responses]

    def _ask_student(self, step: str, prompts: list[Any]) -> list[str]:
        import asyncio

        questions = [question_text(p) for p in prompts]
        ask = getattr(self.student, step)

        async def run() -> list[str]:
            return list(await asyncio.gather(*(ask(q) for q in questions)))

        with self.student.on_device():
            return asyncio.run(run())

    # -- the configuration, as ATLAS's API reads it from the trainer ---------------------
    @property
    def max_probe_tokens(self) -> int:
        return self.student.max_probe_tokens

    @property
    def templates(self) -> TeachingTemplates:
        return self.env.templates

    @property
    def student_diagnostic_template(self) -> str:
        return self.env.templates.student_diagnostic

    @property
    def teacher_adaptive_template(self) -> str:
        return self.env.templates.teacher_adaptive

    @property
    def student_with_teaching_template(self) -> str:
        return self.env.templates.student_with_teaching

    @property
    def student_baseline_template(self) -> str:
        return self.env.templates.student_baseline


def _reward_funcs(value: Any) -> list[Any]:
    funcs = [] if value is None else list(value) if isinstance(value, list | tuple) else [value]
    for func in funcs:
        if not callable(func) or hasattr(func, "config") or isinstance(func, str):
            raise TypeError(
                f"TeacherGRPOTrainer's reward functions must be callables (e.g. "
                f"AdaptiveTeachingReward()); got {func!r}. Reward models cannot score teaching.")
    return funcs

