"""A client for a model object: ``env.rollout(model=hf_model, ...)`` without a server.

The core calls :func:`client_for_model` when ``model=`` is a loaded model rather than a
served name. The model is served in process by an :class:`InProcessEngine` (one per model,
kept while the model lives), with the tokenizer saved next to it
(``model.config._name_or_path``). A trainer registers its policy (:func:`register`), so
``env.rollout(client=trainer.client, model=trainer.model, ...)`` reaches the trainer's own
generation backend under its served name.
"""

from __future__ import annotations

import threading
import weakref
from typing import Any

_SERVED: weakref.WeakKeyDictionary[Any, tuple[Any, str]] = weakref.WeakKeyDictionary()
_LOCK = threading.Lock()
_ENGINE_ATTRIBUTE = "_vf_in_process_engine"


def register(model: Any, client: Any, name: str) -> None:
    """Serve ``model`` (and the module it wraps, if any) through ``client`` as ``name``
    (a server's client: it must not hold the model, which is a weak key here)."""
    with _LOCK:
        for target in {id(m): m for m in _unwrapped(model)}.values():
            _SERVED[target] = (client, name)


def _unwrapped(model: Any) -> list[Any]:
    out, current = [model], model
    for _ in range(4):  # DDP / DeepSpeed (.module), PEFT (.base_model.model)
        current = getattr(current, "module", None)
        if current is None:
            break
        out.append(current)
    return out


def client_for_model(model: Any, client: Any = None) -> tuple[Any, str]:
    """``(client, served name)`` for ``model`` (see the module docstring)."""
    with _LOCK:
        served = next((_SERVED[m] for m in _unwrapped(model) if m in _SERVED), None)
    if served is not None and (client is None or client is served[0]):
        return served
    cached = getattr(model, _ENGINE_ATTRIBUTE, None)
    if client is None and cached is not None:
        return cached, cached.model_name
    if client is not None:
        engine_model = getattr(client, "model", None)
        if engine_model is not None and any(engine_model is m for m in _unwrapped(model)):
            return client, client.model_name
        raise TypeError(
            f"model= is a {type(model).__name__} object and client= a {type(client).__name__} that "
            "does not serve it: pass the name the client's server knows (model='...'), or leave "
            "client out to generate with the model in process.")
    from verifiers_trainer.grpo.constructor import tokenizer_of
    from verifiers_trainer.inference.engine import InProcessEngine

    try:
        tokenizer = tokenizer_of(model)
    except TypeError as exc:
        raise TypeError(
            f"model= is a {type(model).__name__} object whose tokenizer could not be loaded from "
            f"its folder ({exc}). Pass client=InProcessEngine(model, tokenizer) and "
            "model='local' instead.") from exc
    with _LOCK:  # kept on the model itself, so that it goes when the model goes
        engine = getattr(model, _ENGINE_ATTRIBUTE, None)
        if engine is None:
            engine = InProcessEngine(model, tokenizer, model_name="local")
            object.__setattr__(model, _ENGINE_ATTRIBUTE, engine)
    return engine, engine.model_name
