"""Finding and loading installed environments by id, through entry points.

An environment package declares, in its pyproject::

    [project.entry-points."verifiers.environments"]
    vf-wordle = "vf_wordle:load_environment"

and ``vf.load_environment("vf-wordle", **kwargs)`` calls that function. The short id
(``wordle``) and the module spelling (``vf_wordle``) resolve too.

When no entry point matches, the id names a module to import, as in verifiers 0.1.x
(``math-python`` -> ``math_python``, ``owner/name`` -> ``name``), whose
``load_environment`` is called: packages written for 0.1.x, without our entry point, load.
Entry points win over modules.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.metadata
import importlib.util
import logging
import time
from typing import Any

logger = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "verifiers.environments"


class EnvironmentNotFoundError(LookupError):
    """No installed environment has the requested id."""


def _normalize(env_id: str) -> str:
    return env_id.strip().lower().replace("_", "-")


def list_environments() -> dict[str, importlib.metadata.EntryPoint]:
    """Installed environments: ``{id: entry point}``."""
    return {ep.name: ep for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)}


def resolve_environment_id(env_id: str) -> str:
    """The installed id that ``env_id`` names (``math-python`` -> ``vf-math-python``)."""
    installed = list_environments()
    wanted = _normalize(env_id)
    by_norm = {_normalize(name): name for name in installed}
    for candidate in (wanted, f"vf-{wanted}", wanted.removeprefix("vf-")):
        if candidate in by_norm:
            return by_norm[candidate]
    names = sorted(installed)
    listing = ", ".join(names) if names else "none"
    close = difflib.get_close_matches(wanted, list(by_norm) + [n.removeprefix("vf-") for n in by_norm], n=1)
    hint = ""
    if close:
        match = by_norm.get(close[0]) or by_norm.get(f"vf-{close[0]}", close[0])
        hint = f" Did you mean {match!r}?"
    raise EnvironmentNotFoundError(
        f"Unknown environment {env_id!r}. Installed: {listing}.{hint} "
        f"Install one with `vf-install NAME`, or create one with `vf-init NAME`."
    )


def module_name_for(env_id: str) -> str:
    """The module verifiers 0.1.x imports for an id: ``owner/math-python`` -> ``math_python``."""
    return env_id.strip().rsplit("/", 1)[-1].replace("-", "_")


def _module_exists(name: str) -> bool:
    if not name.isidentifier():
        return False
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def find_loader(env_id: str) -> tuple[str, Any]:
    """``(name, load_environment function)`` for ``env_id``: an installed entry point, else
    a module named after the id (verifiers 0.1.x's lookup)."""
    try:
        name = resolve_environment_id(env_id)
    except EnvironmentNotFoundError as not_installed:
        return _module_loader(env_id, str(not_installed))
    entry_point = list_environments()[name]
    try:
        return name, entry_point.load()
    except Exception as exc:
        raise ImportError(
            f"Environment {name!r} is installed but failed to import "
            f"({entry_point.value}): {type(exc).__name__}: {exc}"
        ) from exc


def _module_loader(env_id: str, not_installed: str) -> tuple[str, Any]:
    module_name = module_name_for(env_id)
    if not _module_exists(module_name):
        raise EnvironmentNotFoundError(
            f"{not_installed} Searched: the {ENTRY_POINT_GROUP!r} entry points, then a "
            f"module named {module_name!r} (verifiers 0.1.x's lookup), which is not "
            "importable either."
        )
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:
        raise ImportError(
            f"Environment module {module_name!r} failed to import: {type(exc).__name__}: {exc}"
        ) from exc
    loader = getattr(module, "load_environment", None)
    if not callable(loader):
        raise EnvironmentNotFoundError(
            f"No installed environment has the id {env_id!r}, and module {module_name!r} "
            f"({getattr(module, '__file__', '?')}) has no load_environment function."
        )
    return module_name, loader


def load_environment(env_id: str, **env_args: Any) -> Any:
    """Load an installed environment: ``vf.load_environment("vf-wordle", use_think=True)``.

    Keyword arguments go to the package's ``load_environment``; an argument it does not
    take fails with the list of those it does.
    """
    import inspect

    name, loader = find_loader(env_id)
    signature = inspect.signature(loader)
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in signature.parameters.values())
    unknown = [k for k in env_args if k not in signature.parameters]
    if unknown and not takes_any:
        accepted = ", ".join(signature.parameters) or "none"
        raise TypeError(
            f"Environment {name!r} does not take {', '.join(map(repr, unknown))}. "
            f"Its arguments: {accepted}."
        )
    start = time.perf_counter()
    env = loader(**env_args)
    if getattr(env, "env_id", "unset") is None:
        env.env_id = name
    logger.info("loaded environment %s in %.2f s", name, time.perf_counter() - start)
    return env
