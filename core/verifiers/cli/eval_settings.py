"""vf-eval's settings: command-line values checked and turned into the settings of a run
(new, or resumed from a saved run), and the 0.1.x endpoints registry (``-e``).

Every bad value raises :class:`UsageError` with one line saying what was wrong and how to fix
it; vf-eval prints it and exits with code 2.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

DEFAULT_BASE_URL = "https://api.openai.com/v1"
DEFAULT_ENDPOINTS = os.path.join("configs", "endpoints.py")  # verifiers 0.1.x's default

#: Command-line defaults of the options that describe what is evaluated. They are None in
#: the parser, so that ``--resume`` can tell an option given from one left out.
DEFAULTS: dict[str, Any] = {
    "model": "gpt-4.1-mini", "num_examples": 5, "rollouts_per_example": 3,
    "max_concurrent": 32, "timeout": 600.0, "max_retries": 3,
}

#: Settings that decide the results: a resumed run must keep them.
RESULT_KEYS = ("env_id", "env_args", "model", "num_examples", "rollouts_per_example",
               "sampling_args", "seed")
#: Settings of how the run talks to the server: ``--resume`` may change them.
TRANSPORT_KEYS = ("base_url", "api_key_var", "max_concurrent", "timeout", "max_retries")
SETTINGS_KEYS = (*RESULT_KEYS, *TRANSPORT_KEYS)


_UNSET = object()


class UsageError(Exception):
    """A bad command-line value or saved run: one line, exit code 2."""


def json_object(text: str, flag: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"{flag} must be a JSON object: {exc} in {text!r} "
                         """(quote it for the shell, e.g. '{"key": 1}').""") from None
    if not isinstance(value, dict):
        raise UsageError(f"{flag} must be a JSON object ({{...}}), got {text!r}.")
    return value


def check_url(url: str, flag: str = "-b/--api-base-url") -> str:
    """A base URL, or several separated by commas (one model served by several servers)."""
    for part in url.split(","):
        parsed = urlparse(part.strip())
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise UsageError(f"{flag} {part.strip()!r} is not a URL; give the server's base URL, "
                             "e.g. http://127.0.0.1:8000/v1.")
    return url


def check_ranges(args: argparse.Namespace) -> None:
    """The numeric options' bounds, and options that only make sense together."""
    def bad(flag: str, value: Any, rule: str) -> UsageError:
        return UsageError(f"{flag} must be {rule}, got {value}.")

    if args.num_examples is not None and (args.num_examples < -1 or args.num_examples == 0):
        raise bad("-n/--num-examples", args.num_examples, "-1 (all examples) or at least 1")
    if args.rollouts_per_example is not None and args.rollouts_per_example < 1:
        raise bad("-r/--rollouts-per-example", args.rollouts_per_example, "at least 1")
    if args.max_concurrent is not None and args.max_concurrent < 1:
        raise bad("-c/--max-concurrent", args.max_concurrent, "at least 1")
    if args.max_tokens is not None and args.max_tokens < 1:
        raise bad("-t/--max-tokens", args.max_tokens, "at least 1 (leave it out for the server's default)")
    if args.temperature is not None and not args.temperature >= 0:
        raise bad("-T/--temperature", args.temperature, "0 or more")
    if args.timeout is not None and not args.timeout > 0:
        raise bad("--timeout", args.timeout, "a positive number of seconds")
    if args.max_retries is not None and args.max_retries < 0:
        raise bad("--max-retries", args.max_retries, "0 or more")
    if args.num_samples_shown < 0:
        raise bad("--num-samples-shown", args.num_samples_shown, "0 or more")
    if not 0.0 <= args.max_failed_share <= 1.0:
        raise bad("--max-failed-share", args.max_failed_share, "between 0 and 1")
    if args.hf_hub_dataset_name and not args.save_to_hf_hub:
        raise UsageError("-D/--hf-hub-dataset-name names the dataset that -H/--save-to-hf-hub "
                         "pushes; add -H, or leave -D out.")
    out = Path(args.output_dir)
    if out.exists() and not out.is_dir():
        raise UsageError(f"-o/--output-dir {args.output_dir} is a file; give a folder "
                         "(it is created if missing).")


def load_endpoints(path: str | None) -> dict[str, dict[str, str]]:
    """The ``ENDPOINTS`` registry of a Python file (or a folder holding ``endpoints.py``), as
    verifiers 0.1.x reads it: ``{"short-name": {"model": ..., "url": ..., "key": VAR}}``.
    Without ``-e``, ``./configs/endpoints.py`` is used when it exists."""
    explicit = path is not None
    file = Path(path) if path is not None else Path(DEFAULT_ENDPOINTS)
    if file.is_dir():
        file = file / "endpoints.py"
    if not file.is_file():
        if explicit:
            raise UsageError(f"-e/--endpoints-path: no endpoints file at {file}; give a Python "
                             "file defining ENDPOINTS = {name: {model, url, key}}.")
        return {}
    spec = importlib.util.spec_from_file_location("vf_eval_endpoints", file)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        raise UsageError(f"the endpoints file {file} failed to run: "
                         f"{type(exc).__name__}: {exc}") from None
    registry = getattr(module, "ENDPOINTS", None)
    if not isinstance(registry, dict):
        raise UsageError(f"the endpoints file {file} defines no ENDPOINTS dict "
                         "(ENDPOINTS = {name: {'model': ..., 'url': ..., 'key': ...}}).")
    for name, entry in registry.items():
        missing = [k for k in ("model", "url", "key") if not isinstance(entry, dict) or k not in entry]
        if missing:
            raise UsageError(f"the endpoints file {file}: ENDPOINTS[{name!r}] lacks {missing}; "
                             "each entry needs 'model', 'url' and 'key'.")
    return registry


def sampling_args(args: argparse.Namespace) -> tuple[dict[str, Any], list[str]]:
    """``-S`` merged with ``-t``/``-T``; ``-S``'s keys win (verifiers 0.1.x's precedence).
    Also returns a note for each flag that ``-S`` overrode."""
    sampling = json_object(args.sampling_args, "-S/--sampling-args") if args.sampling_args else {}
    notes = []
    for key, flag, value in (("max_tokens", "-t", args.max_tokens),
                             ("temperature", "-T", args.temperature)):
        if value is None:
            continue
        if key in sampling:
            if sampling[key] != value:
                notes.append(f"-S sets {key}={sampling[key]!r}, which overrides {flag} {value}.")
        else:
            sampling[key] = value
    return sampling, notes


def new_settings(args: argparse.Namespace, registry: dict[str, dict[str, str]]) -> dict[str, Any]:
    """The settings of a new run. A model named in the endpoints registry takes its model
    name, URL and key variable from there; ``-b`` and ``-k`` given explicitly still win."""
    model = args.model or DEFAULTS["model"]
    base_url = args.api_base_url or os.environ.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL
    key_var = args.api_key_var or "OPENAI_API_KEY"
    entry = registry.get(model)
    if entry is not None:
        model = str(entry["model"])
        base_url = args.api_base_url or str(entry["url"])
        key_var = args.api_key_var or str(entry["key"])
    sampling, _ = sampling_args(args)
    return {
        "env_id": args.env,
        "env_args": json_object(args.env_args or "{}", "-a/--env-args"),
        "model": model,
        "base_url": check_url(base_url),
        "api_key_var": key_var,
        "num_examples": _given(args.num_examples, "num_examples"),
        "rollouts_per_example": _given(args.rollouts_per_example, "rollouts_per_example"),
        "max_concurrent": _given(args.max_concurrent, "max_concurrent"),
        "sampling_args": sampling,
        "seed": args.seed,
        "timeout": _given(args.timeout, "timeout"),
        "max_retries": _given(args.max_retries, "max_retries"),
    }


def _given(value: Any, key: str) -> Any:
    return DEFAULTS[key] if value is None else value


def resume_settings(args: argparse.Namespace, saved: dict[str, Any]) -> dict[str, Any]:
    """The saved run's settings. Options that decide the results must match them (or be
    left out); options of the connection (-b, -k, -c, --timeout, --max-retries) replace
    them."""
    given: dict[str, Any] = {}
    if args.env is not None:
        given["env_id"] = args.env
    if args.model is not None:
        given["model"] = args.model
    if args.env_args is not None:
        given["env_args"] = json_object(args.env_args, "-a/--env-args")
    if args.num_examples is not None:
        given["num_examples"] = args.num_examples
    if args.rollouts_per_example is not None:
        given["rollouts_per_example"] = args.rollouts_per_example
    if args.seed is not None:
        given["seed"] = args.seed
    if args.sampling_args is not None or args.max_tokens is not None or args.temperature is not None:
        given["sampling_args"] = sampling_args(args)[0]
    flags = {"env_id": "ENV", "model": "-m", "env_args": "-a", "num_examples": "-n",
             "rollouts_per_example": "-r", "seed": "--seed", "sampling_args": "-t/-T/-S"}
    for key, value in given.items():
        if key == "sampling_args":  # only the keys given must agree
            value = {k: v for k, v in value.items() if saved[key].get(k, _UNSET) != v}
            if not value:
                continue
            saved_part = {k: saved[key].get(k) for k in value}
            raise UsageError(
                f"--resume: sampling arguments {json.dumps(value)} (-t/-T/-S) differ from the "
                f"saved run's {json.dumps(saved_part)}; a resumed run keeps its settings. "
                "Leave them out, or start a new run without --resume.")
        if value != saved[key]:
            raise UsageError(
                f"--resume: {flags[key]} {json.dumps(value)} differs from the saved run's "
                f"{json.dumps(saved[key])}; a resumed run keeps its settings. Leave "
                f"{flags[key]} out, or start a new run without --resume.")
    settings = dict(saved)
    if args.api_base_url is not None:
        settings["base_url"] = check_url(args.api_base_url)
    for key, value in (("api_key_var", args.api_key_var), ("max_concurrent", args.max_concurrent),
                       ("timeout", args.timeout), ("max_retries", args.max_retries)):
        if value is not None:
            settings[key] = value
    return settings


def check_saved_settings(settings: Any, source: str) -> dict[str, Any]:
    """A saved run's settings, checked for the keys and types vf-eval needs."""
    if not isinstance(settings, dict):
        raise UsageError(f"{source} has no 'settings' object; it was not written by vf-eval -s, "
                         "or it was cut short. Start a new run instead.")
    missing = [k for k in SETTINGS_KEYS if k not in settings]
    if missing:
        raise UsageError(f"{source} is incomplete: its settings lack {missing}. Start a new run "
                         "instead (or restore the file).")
    kinds: dict[str, type | tuple[type, ...]] = {"env_id": str, "model": str, "base_url": str, "api_key_var": str,
             "env_args": dict, "sampling_args": dict, "num_examples": int,
             "rollouts_per_example": int, "max_concurrent": int, "max_retries": int,
             "timeout": (int, float)}
    for key, kind in kinds.items():
        if not isinstance(settings[key], kind) or isinstance(settings[key], bool):
            raise UsageError(f"{source}: settings[{key!r}] = {settings[key]!r} has the wrong "
                             "type; the file is damaged. Start a new run instead.")
    return settings
