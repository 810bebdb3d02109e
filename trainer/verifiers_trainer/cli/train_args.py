"""vf-train's command line: config files (``CONFIG.toml``, ``@ FILE``, ``@FILE``), the
``--section.key VALUE`` overrides, and bare flags for true/false keys (``--run.overwrite``,
``--no-eval.before``)."""

from __future__ import annotations

from collections.abc import Sequence

from verifiers_trainer.cli.config_sections import ALL_SECTIONS, is_boolean_key
from verifiers_trainer.cli.train_config import ConfigError


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
            if take == 2 and is_boolean_key(item[2:]) and (i + 1 >= len(items)
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
            if not is_boolean_key(key):
                raise ConfigError(f"--no-{key}: {key} is not a true/false key; write --{key} VALUE.")
            out.append((key, "false"))
            i += 1
            continue
        _check_key_parts(key)
        if not eq:
            following = items[i + 1] if i + 1 < len(items) else None
            if is_boolean_key(key) and following not in ("true", "false"):
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


__all__ = ["parse_overrides", "split_arguments"]
