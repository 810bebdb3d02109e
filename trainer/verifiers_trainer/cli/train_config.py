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
``TrainConfig.to_dict()`` is the resolved config a run saves. The sections' models are in
``config_sections.py``, the command line's parsing in ``train_args.py``; this module turns
pydantic's validation errors into messages naming the key, the value and the type expected.

Importing this module does not import torch; ``load_config`` does (it builds the
``GRPOConfig``).
"""

from __future__ import annotations

import difflib
import enum
import functools
import re
import tomllib
import types
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, TypeAdapter, ValidationError

from verifiers_trainer.cli.config_sections import (
    ALL_SECTIONS,
    BACKENDS,
    DTYPES,
    SECTIONS,
    TRAINER_DEFAULTS,
    TRAINER_RESERVED,
    EnvSection,
    EvalSection,
    InferenceSection,
    LoraSection,
    ModelSection,
    RunSection,
    describe_sections,
    model_of,
    trainer_section,
)
from verifiers_trainer.cli.toml_io import parse_value


class ConfigError(ValueError):
    """A config that cannot run: says which key, what was wrong and how to fix it."""


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
        parent = model_of(_field_path(model, problem["loc"][:-1])[1]) if len(names) > 1 else model
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
    if model_of(annotation) is not None and not names[1:] and model is TrainConfig:
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
        fields = getattr(model_of(annotation), "model_fields", None)
        if fields is None or not isinstance(part, str):
            break
        if part not in fields:  # an unknown key
            names.append(part)
            annotation = Any
            break
        names.append(part)
        annotation = fields[part].annotation
    return names, annotation


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
    if hint is dict or origin is dict or model_of(hint) is not None:
        return "a table"
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(hint))
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return "one of " + ", ".join(repr(m.value) for m in hint)
    return getattr(hint, "__name__", str(hint))


def _describe_value(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    return {int: "an integer", float: "a number", str: "a string", list: "a list",
            dict: "a table"}.get(type(value), type(value).__name__)



# the sections' names, importable from here too
__all__ = ["ALL_SECTIONS", "BACKENDS", "DTYPES", "SECTIONS", "TRAINER_DEFAULTS", "ConfigError",
           "EnvSection", "EvalSection", "InferenceSection", "LoraSection", "ModelSection",
           "RunSection", "TrainConfig", "describe_sections", "load_config", "trainer_section"]
