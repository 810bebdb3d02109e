"""GRPOConfig: every setting of a GRPO run, checked when it is built.

A ``transformers.TrainingArguments`` with the GRPO fields added (names as in TRL's
``GRPOConfig`` where the meaning is the same). Each field documents itself once, in its
``metadata["help"]``, with its bounds; a value out of bounds fails at construction with
the field's name and the rule. The one rule that needs the number of processes (the
generation batch must hold whole groups) is checked by ``validate_batch(num_processes)``,
which the trainer calls once it knows it.

Older names are accepted as keyword aliases (``GRPOConfig(batch_size=8, group_size=4)``):
see ``ALIASES``. ``grpo_defaults`` and ``lora_defaults`` give ready-made configs.
"""

from __future__ import annotations

import contextvars
import dataclasses
import difflib
import functools
import warnings
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NoReturn

from transformers import TrainingArguments

from verifiers_trainer.grpo import config_names, launch
from verifiers_trainer.grpo.math import IMPORTANCE_SAMPLING_LEVELS, LOSS_TYPES, SCALE_REWARDS
from verifiers_trainer.grpo.schedules import check_schedule

if TYPE_CHECKING:
    from peft import LoraConfig

__all__ = ["ALIASES", "IGNORED_ALIASES", "GRPOConfig", "grpo_defaults", "lora_defaults", "register_extension"]

#: Keyword aliases accepted by ``GRPOConfig(...)`` and ``grpo_defaults(...)``: alias → field.
ALIASES: dict[str, str] = {
    "batch_size": "per_device_train_batch_size",
    "group_size": "num_generations",
    "num_epochs": "num_train_epochs",
    "kl_coef": "beta",
    "max_new_tokens": "max_completion_length",
    "warmup_ratio": "warmup_steps",  # transformers 5: warmup_steps < 1 is a share of the steps
    "vllm_host": "vllm_server_host",  # ATLAS's names for the external server
    "vllm_port": "vllm_server_port",
}

#: ATLAS's switches for vLLM generation: ``True`` means ``generation_backend="vllm"``.
BACKEND_SWITCHES = ("use_vllm", "use_vllm_server")

#: Keywords accepted for compatibility and ignored with a warning: name → why.
IGNORED_ALIASES: dict[str, str] = {
    "gamma": "GRPO has no per-step discounting: each completion's reward is one terminal score",
    "gae_lambda": "GRPO has no value function, so there is no GAE: advantages are group-relative",
    "vllm_device": "the vf-vllm server is placed when it starts (CUDA_VISIBLE_DEVICES=... vf-vllm)",
    "vllm_gpu_memory_utilization": "a vf-vllm server setting: vf-vllm --gpu-memory-utilization 0.9",
    "num_vllm_clients": "each training process is a client of the vf-vllm server already",
}

GENERATION_BACKENDS = ("engine", "vllm")


#: The fields the caller of ``GRPOConfig(...)`` gave (read by ``__post_init__``).
_EXPLICIT: contextvars.ContextVar[frozenset[str]] = contextvars.ContextVar("explicit", default=frozenset())


def _fail(message: str) -> NoReturn:
    raise ValueError(message)


class _KeywordAliases(type):
    """Metaclass of ``GRPOConfig``: before the dataclass ``__init__`` runs, translates
    EasyDeL's names (:mod:`verifiers_trainer.grpo.config_names`), renames alias keywords to
    their fields, drops (with a warning) the ignored ones, and rejects unknown keywords with
    the closest field names. Subclasses inherit it; ``dataclasses.replace`` and
    ``HfArgumentParser`` pass field names only, so they are unaffected."""

    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        unknown = [key for key in kwargs if not _accepts(cls, key)]
        if unknown:  # fields of an extension (ATLAS's GRPOConfig(max_probe_tokens=...))
            cls = _extension_for(cls, unknown) or cls
        resolved = _resolve_keywords(cls, config_names.translate(kwargs, _defaults(cls)))
        token = _EXPLICIT.set(frozenset(resolved))
        try:
            return super().__call__(*args, **resolved)
        finally:
            _EXPLICIT.reset(token)


@dataclass
class GRPOConfig(TrainingArguments, metaclass=_KeywordAliases):
    """Configuration of a GRPO run (``transformers.TrainingArguments`` plus the fields below).

    Older keyword names are accepted (``ALIASES``: ``batch_size``, ``group_size``,
    ``num_epochs``, ``kl_coef``, ``max_new_tokens``; also readable and writable as attributes),
    and ``gamma`` / ``gae_lambda`` are accepted and ignored with a warning.

    Batch layout: each micro-step a process trains on ``per_device_train_batch_size``
    completions; an optimizer step covers ``per_device_train_batch_size × num_processes ×
    gradient_accumulation_steps`` completions, which must be whole groups of
    ``num_generations`` completions of the same prompt (checked by ``validate_batch``).
    """

    # -- batch and lengths --
    num_generations: int = field(
        default=8,
        metadata={"help": "Completions sampled per prompt (the group size G); >= 2. The "
                  "generation batch (per_device_train_batch_size × num_processes × "
                  "gradient_accumulation_steps, or generation_batch_size) must be a multiple."},
    )
    generation_batch_size: int | None = field(
        default=None,
        metadata={"help": "Completions generated per generation round, over all processes; "
                  "None = one optimizer step's worth (per_device_train_batch_size × "
                  "num_processes × gradient_accumulation_steps). If set: >= 1, a multiple of "
                  "num_generations and of per_device_train_batch_size × num_processes."},
    )
    max_prompt_length: int | None = field(
        default=1024,
        metadata={"help": "Prompt tokens allowed: longer prompts are left out before sampling "
                  "(never cut; metric rollouts/prompt_too_long); >= 1, or None for no limit."},
    )
    max_completion_length: int = field(
        default=2048,
        metadata={"help": "Completion tokens per rollout, all turns together (environment "
                  "responses included); >= 1. Also the dr_grpo loss normaliser."},
    )
    max_tokens: int | None = field(
        default=None,
        metadata={"help": "Tokens the model may generate in one turn; >= 1, or None to be "
                  "limited only by max_completion_length."},
    )
    max_seq_len: int | None = field(
        default=None,
        metadata={"help": "Context window used for training (prompt + completion); >= 1 and "
                  ">= max_prompt_length + max_completion_length, or None for the model's own."},
    )

    # -- optimisation (defaults differ from TrainingArguments) --
    learning_rate: float = field(
        default=1e-6,
        metadata={"help": "Peak learning rate (AdamW); > 0. GRPO wants small steps: 1e-6 is a "
                  "safe start, 2e-6 to 5e-6 is aggressive."},
    )
    lr_scheduler_type: str = field(
        default="constant_with_warmup",
        metadata={"help": "Learning-rate schedule (a transformers SchedulerType name)."},
    )
    warmup_steps: float = field(
        default=10,
        metadata={"help": "Linear warmup: steps if >= 1, a fraction of the run if in [0, 1); "
                  ">= 0."},
    )
    num_iterations: int = field(
        default=1,
        metadata={"help": "Optimisation passes over each generated batch (μ); >= 1. More "
                  "than 1 trains off-policy, with the ratio clipped."},
    )
    remove_unused_columns: bool = field(
        default=False,
        metadata={"help": "Keep every dataset column (environments and rubrics read them)."},
    )
    # None first, as in TrainingArguments: HfArgumentParser reads the union in this order.
    report_to: None | str | list[str] = field(  # noqa: RUF036
        default="none",
        metadata={"help": "Loggers to report to ('wandb', 'tensorboard', ...); 'none' for none."},
    )

    # -- sampling --
    temperature: float = field(
        default=1.0,
        metadata={"help": "Sampling temperature; > 0. Higher gives more diverse groups."},
    )
    top_p: float = field(
        default=1.0, metadata={"help": "Nucleus sampling mass; in (0, 1], 1.0 disables."}
    )
    top_k: int | None = field(
        default=None, metadata={"help": "Top-k filtering; >= 1, or None to disable."}
    )
    min_p: float | None = field(
        default=None,
        metadata={"help": "Minimum token probability relative to the most likely token; in "
                  "[0, 1], or None to disable."},
    )
    repetition_penalty: float = field(
        default=1.0,
        metadata={"help": "Penalty on tokens already in the prompt or completion; > 0, 1.0 "
                  "disables, > 1 discourages repeats."},
    )

    # -- the GRPO objective --
    beta: float = field(
        default=0.001,
        metadata={"help": "KL penalty coefficient against the reference model; >= 0. 0 "
                  "skips the reference model (faster, less stable); 0.001 is conservative."},
    )
    use_bias_correction_kl: bool = field(
        default=True,
        metadata={"help": "Multiply the per-token KL term by the importance ratio π_θ/π_old "
                  "(TRL's option of this name, on by default there too): the KL gradient is then "
                  "the unbiased reverse-KL gradient, and it changes the gradient whenever beta > 0, "
                  "on-policy included. False gives the plain k3 penalty. No effect with beta=0 "
                  "(no KL term)."},
    )
    sync_ref_model: bool = field(
        default=False,
        metadata={"help": "Move the reference model toward the policy every "
                  "ref_model_sync_steps steps (TR-DPO); useful for runs of 500+ steps."},
    )
    ref_model_sync_steps: int = field(
        default=100, metadata={"help": "Steps between reference syncs (τ); >= 1."}
    )
    ref_model_mixup_alpha: float = field(
        default=0.5,
        metadata={"help": "Sync mix α in π_ref ← α·π_θ + (1 − α)·π_ref; in [0, 1]."},
    )
    loss_type: str = field(
        default="dr_grpo",
        metadata={"help": "How per-token losses are averaged: 'grpo' (per completion, then "
                  "over completions; length-biased), 'bnpo' (over the local batch's tokens), "
                  "'dr_grpo' (sum / (B × max_completion_length); no length bias), 'dapo' (over "
                  "the trained tokens of the whole optimizer step: every accumulation "
                  "micro-batch on every process)."},
    )
    epsilon: float = field(
        default=0.2,
        metadata={"help": "Lower clip range ε_low: the ratio is clipped below at 1 − ε; in "
                  "[0, 1)."},
    )
    epsilon_high: float | None = field(
        default=None,
        metadata={"help": "Upper clip range ε_high (ratio clipped above at 1 + ε_high); >= 0, "
                  "or None for the value of epsilon. DAPO's clip-higher uses 0.28."},
    )
    delta: float | None = field(
        default=None,
        metadata={"help": "Two-sided clipping: cap on the unclipped ratio (INTELLECT-2); "
                  "> 1 + ε_high, or None to disable."},
    )
    scale_rewards: str = field(
        default="group",
        metadata={"help": "Divisor of the group-centred rewards: 'group' (std of the group), "
                  "'batch' (std of the whole batch), 'none' (no scaling; Dr. GRPO). True/False "
                  "mean 'group'/'none'."},
    )
    importance_sampling_level: str = field(
        default="token",
        metadata={"help": "Policy ratio per 'token' (GRPO) or per 'sequence' (GSPO: exp of "
                  "the mean token log-ratio)."},
    )
    sampler_correction_cap: float | None = field(
        default=3.0,
        metadata={"help": "Cap C of the per-token weight min(exp(logp_trainer − logp_sampler), "
                  "C) that corrects for the inference server sampling from a slightly "
                  "different distribution than the trainer computes; >= 1, or None to turn "
                  "the correction off. 3.0 is TRL's default cap."},
    )
    mask_env_responses: bool = field(
        default=True,
        metadata={"help": "Leave environment/tool tokens inside multi-turn completions out of "
                  "the loss (the policy did not write them)."},
    )
    mask_truncated_completions: bool = field(
        default=False,
        metadata={"help": "Leave completions cut off by a length limit out of the loss (DAPO's "
                  "overlong filtering)."},
    )
    zero_truncated_completions: bool = field(
        default=False,
        metadata={"help": "Give completions cut off by a length limit reward 0."},
    )

    # -- generation --
    generation_backend: str = field(
        default="engine",
        metadata={"help": "'engine' (the in-process transformers engine, no server) or 'vllm' "
                  "(a vf-vllm server at vllm_server_host:vllm_server_port)."},
    )
    vllm_server_host: str = field(
        default="127.0.0.1", metadata={"help": "Host of the vf-vllm server."}
    )
    vllm_server_port: int = field(
        default=8000, metadata={"help": "Port of the vf-vllm server; in [1, 65535]."}
    )
    vllm_server_base_url: str | None = field(
        default=None,
        metadata={"help": "Base URL of the vf-vllm server (TRL's name), e.g. "
                  "'http://10.0.0.2:8000'; replaces vllm_server_host/port. Several servers of "
                  "one model: a list, or URLs separated by commas (rollouts are spread over "
                  "them, weights pushed to all, a server that goes away is dropped)."},
    )
    vllm_weight_transfer: str = field(
        default="auto",
        metadata={"help": "How weights reach vf-vllm: 'auto' (vf_shm for a server on this "
                  "machine, else nccl), 'vf_shm' (shared memory, same machine) or 'nccl'."},
    )
    vllm_group_address: str | None = field(
        default=None,
        metadata={"help": "nccl: an address of this machine the servers can reach for the "
                  "rendezvous; None: the one on the route to the first server."},
    )
    vllm_group_port: int | None = field(
        default=None,
        metadata={"help": "nccl: the rendezvous port on vllm_group_address (TRL's name), in "
                  "[1, 65535]; None: a free port."},
    )
    vllm_server_timeout: float = field(
        default=300.0,
        metadata={"help": "Seconds to wait for the vf-vllm server to come up; > 0."},
    )
    vllm_model_name: str | None = field(
        default=None,
        metadata={"help": "Model name sent to the vf-vllm server (its --served-model-name, "
                  "else its --model); None leaves the choice to the trainer."},
    )
    num_batches_ahead: int = field(
        default=1,
        metadata={"help": "Batches generated ahead of training (1 = one-step off-policy "
                  "overlap); >= 0, 0 generates synchronously."},
    )
    async_generation_timeout: float = field(
        default=300.0,
        metadata={"help": "Seconds a generation batch may take before it fails; > 0."},
    )
    max_concurrent: int = field(
        default=1024,
        metadata={"help": "Rollouts in flight at once against the environment; >= 1."},
    )
    ds3_gather_for_generation: bool = field(
        default=True,
        metadata={"help": "DeepSpeed ZeRO-3: gather the full weights for generation (faster); "
                  "off lets models larger than one GPU train, generating more slowly."},
    )

    # -- curriculum and reward phases (progress in epochs over the training set) --
    difficulty_schedule: list[Any] | None = field(
        default=None,
        metadata={"help": "Train on the rows whose difficulty_column equals the scheduled value: "
                  "[(until_epoch, value), ...], e.g. [(1.0, 'easy'), (2.0, 'medium')]; the last "
                  "value holds after the final threshold. None draws from every row."},
    )
    difficulty_column: str = field(
        default="difficulty",
        metadata={"help": "Dataset column (or info key) that difficulty_schedule filters on."},
    )
    reward_weights_schedule: list[Any] | None = field(
        default=None,
        metadata={"help": "Reward weights by phase: [(until_epoch, [w1, w2, ...]), ...], one weight "
                  "per rubric of a RubricGroup, else per reward function; applied at the start "
                  "of each generation round. None keeps the environment's weights."},
    )

    # -- evaluation through the environment --
    eval_temperature: float = field(
        default=0.0,
        metadata={"help": "Sampling temperature for evaluation; >= 0, 0 is greedy."},
    )
    eval_num_examples: int = field(
        default=-1,
        metadata={"help": "Eval examples per evaluation; >= 1, or -1 for the whole eval set."},
    )

    # -- logging --
    log_completions: bool = field(
        default=False,
        metadata={"help": "Log a sample of prompts, completions and rewards every "
                  "logging_steps."},
    )
    num_completions_to_print: int | None = field(
        default=None,
        metadata={"help": "Completions printed when log_completions is on; >= 1, or None "
                  "for all."},
    )

    def __post_init__(self) -> None:
        #: the fields given to the constructor (some settings differ when left to defaults)
        self._explicit_fields = _EXPLICIT.get()
        if isinstance(self.scale_rewards, bool):
            self.scale_rewards = "group" if self.scale_rewards else "none"
        self._validate()  # first, so our messages win over TrainingArguments' terser ones
        launch.configure(self, self._explicit_fields)  # processes on CPU, DeepSpeed's precision
        super().__post_init__()

    # -- checks --

    def _validate(self) -> None:
        def at_least(name: str, low: float, none_ok: bool = False) -> None:
            value = getattr(self, name)
            if value is None and none_ok:
                return
            if value is None or value < low:
                extra = ", or None" if none_ok else ""
                _fail(f"{name} must be >= {low}{extra}; got {value!r}.")

        def choice(name: str, choices: tuple[str, ...]) -> None:
            value = getattr(self, name)
            if value not in choices:
                close = difflib.get_close_matches(str(value), choices, n=1)
                hint = f" Did you mean {close[0]!r}?" if close else ""
                allowed = ", ".join(map(repr, choices))
                _fail(f"{name} must be one of {allowed}; got {value!r}.{hint}")

        if self.num_generations is None or self.num_generations < 2:
            _fail(
                "num_generations must be >= 2 (GRPO compares completions within a group of the "
                f"same prompt); got {self.num_generations!r}."
            )
        at_least("per_device_train_batch_size", 1)
        at_least("gradient_accumulation_steps", 1)
        at_least("generation_batch_size", 1, none_ok=True)
        if (
            self.generation_batch_size is not None
            and self.generation_batch_size % self.num_generations != 0
        ):
            _fail(
                f"generation_batch_size ({self.generation_batch_size}) must be divisible by "
                f"num_generations ({self.num_generations}), so that it holds whole groups."
            )
        for name in ("max_prompt_length", "max_tokens", "max_seq_len"):
            at_least(name, 1, none_ok=True)
        at_least("max_completion_length", 1)
        if self.max_seq_len is not None:
            used = (self.max_prompt_length or 0) + self.max_completion_length
            if used > self.max_seq_len:
                _fail(
                    f"max_prompt_length ({self.max_prompt_length}) + max_completion_length "
                    f"({self.max_completion_length}) = {used} must be <= max_seq_len "
                    f"({self.max_seq_len}); lower one of the first two or raise max_seq_len."
                )
        at_least("num_iterations", 1)
        if not self.learning_rate > 0:
            _fail(f"learning_rate must be > 0; got {self.learning_rate!r}.")
        at_least("warmup_steps", 0)
        if not self.temperature > 0:
            _fail(f"temperature must be > 0; got {self.temperature!r}.")
        if not 0 < self.top_p <= 1:
            _fail(f"top_p must be in (0, 1] (1.0 disables nucleus sampling); got {self.top_p!r}.")
        if self.top_k is not None and self.top_k < 1:
            _fail(f"top_k must be >= 1, or None to disable top-k; got {self.top_k!r}.")
        if self.min_p is not None and not 0 <= self.min_p <= 1:
            _fail(f"min_p must be in [0, 1], or None to disable; got {self.min_p!r}.")
        if not self.repetition_penalty > 0:
            _fail(
                f"repetition_penalty must be > 0 (1.0 disables); got {self.repetition_penalty!r}."
            )
        at_least("beta", 0)
        if not isinstance(self.use_bias_correction_kl, bool):
            _fail("use_bias_correction_kl must be True or False; got "
                  f"{self.use_bias_correction_kl!r}.")
        at_least("ref_model_sync_steps", 1)
        if not 0 <= self.ref_model_mixup_alpha <= 1:
            _fail(f"ref_model_mixup_alpha must be in [0, 1]; got {self.ref_model_mixup_alpha!r}.")
        choice("loss_type", LOSS_TYPES)
        if not 0 <= self.epsilon < 1:
            _fail(
                "epsilon must be in [0, 1) (the ratio's lower clip is 1 − epsilon); "
                f"got {self.epsilon!r}."
            )
        at_least("epsilon_high", 0, none_ok=True)
        _, eps_high = self.clip_epsilons
        if self.delta is not None and not self.delta > 1 + eps_high:
            _fail(
                f"delta must be > 1 + epsilon_high (= {1 + eps_high}), or None to disable "
                f"two-sided clipping; got {self.delta!r}."
            )
        choice("scale_rewards", SCALE_REWARDS)
        choice("importance_sampling_level", IMPORTANCE_SAMPLING_LEVELS)
        at_least("sampler_correction_cap", 1, none_ok=True)
        choice("generation_backend", GENERATION_BACKENDS)
        try:
            if self.difficulty_schedule is not None:
                check_schedule("difficulty_schedule", self.difficulty_schedule)
            if self.reward_weights_schedule is not None:
                for _, weights in check_schedule("reward_weights_schedule", self.reward_weights_schedule):
                    if isinstance(weights, (str, bytes)) or not isinstance(weights, (list, tuple)) or \
                            not all(isinstance(w, (int, float)) for w in weights):
                        raise ValueError("reward_weights_schedule: each value must be a list of "
                                         f"numbers (one weight per reward); got {weights!r}.")
        except ValueError as exc:
            _fail(str(exc))
        if not 1 <= self.vllm_server_port <= 65535:
            _fail(f"vllm_server_port must be in [1, 65535]; got {self.vllm_server_port!r}.")
        from verifiers_trainer.inference.vllm_servers import check_server_settings

        try:
            check_server_settings(self)
        except ValueError as exc:
            _fail(str(exc))
        if not self.vllm_server_timeout > 0:
            _fail(f"vllm_server_timeout must be > 0 seconds; got {self.vllm_server_timeout!r}.")
        at_least("num_batches_ahead", 0)
        if not self.async_generation_timeout > 0:
            _fail(
                "async_generation_timeout must be > 0 seconds; "
                f"got {self.async_generation_timeout!r}."
            )
        at_least("max_concurrent", 1)
        at_least("eval_temperature", 0)
        if self.eval_num_examples != -1 and self.eval_num_examples < 1:
            _fail(f"eval_num_examples must be >= 1, or -1 for all; got {self.eval_num_examples!r}.")
        at_least("num_completions_to_print", 1, none_ok=True)
        if self.importance_sampling_level == "sequence" and self.loss_type != "grpo":
            warnings.warn(
                f"importance_sampling_level='sequence' with loss_type={self.loss_type!r} sums "
                "token terms, so each completion weighs by its length; GSPO as published "
                "uses loss_type='grpo'.",
                UserWarning,
                stacklevel=4,
            )

    def validate_batch(self, num_processes: int) -> int:
        """Check the batch rules that depend on the number of processes; return the
        generation batch size (completions per generation round, all processes together).

        Raises ``ValueError`` when the generation batch does not hold whole groups of
        ``num_generations``, or when ``generation_batch_size`` is not a whole number of
        per-step batches. (Evaluation runs one rollout per eval example through the
        environment, so the eval batch has no rule.)
        """
        if num_processes < 1:
            _fail(f"num_processes must be >= 1; got {num_processes!r}.")
        per_step = self.per_device_train_batch_size * num_processes
        if self.generation_batch_size is None:
            generation_batch = per_step * self.gradient_accumulation_steps
            if generation_batch % self.num_generations != 0:
                _fail(
                    "generation batch (per_device_train_batch_size × num_processes × "
                    f"gradient_accumulation_steps = {self.per_device_train_batch_size} × "
                    f"{num_processes} × {self.gradient_accumulation_steps} = {generation_batch}) "
                    f"must be divisible by num_generations ({self.num_generations}). "
                    f"num_generations that fit: {_divisors_from_2(generation_batch)}; or change "
                    "the batch."
                )
        else:
            generation_batch = self.generation_batch_size
            if generation_batch % per_step != 0:
                _fail(
                    f"generation_batch_size ({generation_batch}) must be divisible by "
                    "per_device_train_batch_size × num_processes "
                    f"({self.per_device_train_batch_size} × {num_processes} = {per_step})."
                )
        return generation_batch

    @property
    def clip_epsilons(self) -> tuple[float, float]:
        """``(ε_low, ε_high)``: ``epsilon`` and ``epsilon_high`` (``epsilon`` when None)."""
        high = self.epsilon if self.epsilon_high is None else self.epsilon_high
        return self.epsilon, high


def _alias_property(target: str) -> property:
    def get(self: GRPOConfig) -> Any:
        return getattr(self, target)

    def set_(self: GRPOConfig, value: Any) -> None:
        setattr(self, target, value)

    return property(get, set_, doc=f"Alias of ``{target}``.")


for _alias, _target in ALIASES.items():
    setattr(GRPOConfig, _alias, _alias_property(_target))


@functools.cache
def _init_keywords(cls: type) -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(cls) if f.init)


def _defaults(cls: type) -> dict[str, Any]:
    return {f.name: f.default for f in dataclasses.fields(cls) if f.init}


#: Subclasses of GRPOConfig that GRPOConfig(...) builds when given their fields.
_EXTENSIONS: list[type] = []


def register_extension(cls: type) -> type:
    """Class decorator: ``GRPOConfig(...)`` given a field that only this subclass of
    ``GRPOConfig`` has builds this subclass (the teaching settings of
    ``TeacherGRPOConfig``, which ATLAS's documented examples pass to ``GRPOConfig``). The
    package's extensions (``verifiers_trainer.CONFIG_EXTENSIONS``) are registered on import."""
    if not (isinstance(cls, type) and issubclass(cls, GRPOConfig)):
        raise TypeError(f"register_extension takes a subclass of GRPOConfig; got {cls!r}.")
    if cls not in _EXTENSIONS:
        _EXTENSIONS.append(cls)
    return cls


def _accepts(cls: type, key: str) -> bool:
    return (key in _init_keywords(cls) or key in ALIASES or key in IGNORED_ALIASES
            or key in BACKEND_SWITCHES or key in config_names.EASYDEL_NAMES)


def _extensions() -> list[type]:
    import importlib

    import verifiers_trainer

    for module in verifiers_trainer.CONFIG_EXTENSIONS:
        importlib.import_module(module)  # registers its classes
    return _EXTENSIONS


def _extension_for(cls: type, keys: list[str]) -> type | None:
    """The registered extension of ``cls`` that accepts the most of ``keys`` (so that an
    error names what it still does not know), if one accepts any."""
    best, count = None, 0
    for extension in _extensions():
        accepted = sum(_accepts(extension, key) for key in keys) if issubclass(extension, cls) else 0
        if accepted > count:
            best, count = extension, accepted
    return best


def _resolve_keywords(cls: type, kwargs: dict[str, Any]) -> dict[str, Any]:
    known = _init_keywords(cls)
    resolved: dict[str, Any] = {}
    for key, value in kwargs.items():
        if key in BACKEND_SWITCHES:
            if value:
                if kwargs.get("generation_backend", "vllm") != "vllm":
                    raise ValueError(f"{key}=True asks for vLLM generation, but generation_backend="
                                     f"{kwargs['generation_backend']!r}; pass one of them.")
                resolved["generation_backend"] = "vllm"
            continue
        if key in IGNORED_ALIASES:
            warnings.warn(f"{key}={value!r} is ignored: {IGNORED_ALIASES[key]}.", stacklevel=3)
            continue
        target = ALIASES.get(key, key)
        if target not in known:
            extra = [n for e in _extensions() if issubclass(e, cls) for n in _init_keywords(e)]
            candidates = (*known, *ALIASES, *config_names.EASYDEL_NAMES, *extra)
            close = difflib.get_close_matches(key, candidates, n=3, cutoff=0.7)
            hint = f" Did you mean {' or '.join(map(repr, close))}?" if close else ""
            raise TypeError(
                f"{cls.__name__} got an unknown keyword {key!r}.{hint} Its fields are listed by "
                f"dataclasses.fields({cls.__name__}); aliases: {', '.join(ALIASES)}."
            )
        if key in ALIASES and target in kwargs:
            raise ValueError(
                f"got both {key}={value!r} and {target}={kwargs[target]!r}; {key} is an alias "
                f"of {target}: pass only {target}."
            )
        resolved[target] = value
    return resolved


def _divisors_from_2(n: int) -> list[int]:
    return [d for d in range(2, n + 1) if n % d == 0]


def grpo_defaults(run_name: str | None = None, **overrides: Any) -> GRPOConfig:
    """A ``GRPOConfig`` for a small run: ``outputs/<run_name>``, 8 completions per prompt,
    4 prompts per optimizer step on one process (8 × 4 accumulation steps), 500 steps,
    learning rate 1e-6 with 10 warmup steps, gradient norm clipped at 0.01, logging every
    step with sample completions, checkpoints (model only) every 500 steps, no external
    loggers, bf16 on a GPU that supports it. ``overrides`` (fields or aliases) win.
    """
    import torch

    name = run_name or "grpo"
    defaults: dict[str, Any] = {
        "output_dir": f"outputs/{name}",
        "run_name": name,
        "learning_rate": 1e-6,
        "lr_scheduler_type": "constant_with_warmup",
        "warmup_steps": 10,
        "max_steps": 500,
        "max_grad_norm": 0.01,
        "num_iterations": 1,
        "per_device_train_batch_size": 8,
        "num_generations": 8,
        "gradient_accumulation_steps": 4,
        "bf16": bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported()),
        "save_strategy": "steps",
        "save_steps": 500,
        "save_only_model": True,
        "logging_steps": 1,
        "log_on_each_node": False,
        "log_completions": True,
        "num_completions_to_print": 4,
        "report_to": "none",
    }
    for alias, target in ALIASES.items():
        if alias in overrides and target not in overrides:
            defaults.pop(target, None)
    return GRPOConfig(**{**defaults, **overrides})


def lora_defaults(
    r: int = 8,
    alpha: int = 16,
    dropout: float = 0.0,
    target_modules: str | list[str] = "all-linear",
    **overrides: Any,
) -> LoraConfig:
    """A ``peft.LoraConfig`` for a causal LM: rank ``r``, scaling ``alpha``, adapters on
    every linear layer but the output head (``"all-linear"``) unless ``target_modules``
    names them. ``overrides`` go to ``LoraConfig``."""
    from peft import LoraConfig

    return LoraConfig(
        r=r,
        lora_alpha=alpha,
        lora_dropout=dropout,
        target_modules=target_modules,
        task_type="CAUSAL_LM",
        **overrides,
    )
