"""A CPU-friendly weight-transfer backend for vLLM: weights through shared memory.

vLLM (>= 0.19) lets a trainer push new weights into a running server: the server exposes
``/init_weight_transfer_engine``, ``/start_weight_update``, ``/update_weights`` and
``/finish_weight_update`` (development mode), and a *weight transfer engine* moves the
tensors. Its built-in engines move them over NCCL or CUDA IPC, which need GPUs. This module
adds the ``vf_shm`` backend for a trainer and a server on the same machine, GPU or not:

- the trainer writes the named tensors as one safetensors file in a shared-memory folder
  (``/dev/shm`` where it exists) and posts its path;
- each vLLM worker memory-maps the file and loads the tensors with the model's own
  ``load_weights`` (which maps Hugging Face names onto vLLM's fused layers), then the trainer
  deletes the file.

Both sides register through vLLM's plugin entry point (``vllm.general_plugins``), so the
backend exists in every vLLM process, including spawned workers.
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import torch
from vllm.distributed.weight_transfer.base import (
    TrainerInitInfo,
    TrainerWeightTransferEngine,
    WeightSource,
    WeightTransferEngine,
    WeightTransferInitInfo,
    WeightTransferUpdateInfo,
)

logger = logging.getLogger(__name__)

BACKEND = "vf_shm"


def default_transfer_dir() -> str:
    """A folder in shared memory (RAM-backed) when the platform has one."""
    shm = Path("/dev/shm")
    return str(shm) if shm.is_dir() and os.access(shm, os.W_OK) else tempfile.gettempdir()


# -- worker side (inside vLLM) -------------------------------------------------------------
@dataclass
class SharedMemoryInitInfo(WeightTransferInitInfo):
    directory: str = field(default_factory=default_transfer_dir)


@dataclass
class SharedMemoryUpdateInfo(WeightTransferUpdateInfo):
    path: str = ""
    names: list[str] = field(default_factory=list)


class SharedMemoryWeightTransferEngine(
    WeightTransferEngine[SharedMemoryInitInfo, SharedMemoryUpdateInfo]
):
    """Loads weights that the trainer wrote to a safetensors file in shared memory."""

    init_info_cls = SharedMemoryInitInfo
    update_info_cls = SharedMemoryUpdateInfo
    supports_draft_weight_update = False

    def init_transfer_engine(self, init_info: SharedMemoryInitInfo) -> None:
        directory = Path(init_info.directory)
        if not directory.is_dir():
            raise ValueError(
                f"vf_shm weight transfer: {directory} is not a folder on the server's machine. "
                "The trainer and vf-vllm must share a filesystem for this backend; across "
                "machines use the nccl backend."
            )
        self.directory = directory

    def start_weight_update(self) -> None:
        """Prepare vLLM's layerwise reload (restores the weight loaders that kernels'
        post-processing removed), exactly as vLLM's own NCCL engine does."""
        from vllm.model_executor.model_loader.reload import initialize_layerwise_reload

        initialize_layerwise_reload(self.model)

    def finish_weight_update(self) -> None:
        """Finish the layerwise reload (re-runs the kernels' weight post-processing)."""
        from vllm.model_executor.model_loader.reload import finalize_layerwise_reload

        finalize_layerwise_reload(self.model, self.model_config)
        refresh_tied_lm_head(self.model)

    def receive_weights(self, update_info: SharedMemoryUpdateInfo) -> None:
        from safetensors import safe_open

        path = Path(update_info.path)
        if not path.is_file():
            raise FileNotFoundError(
                f"vf_shm weight transfer: {path} does not exist on the server's machine."
            )
        start = time.perf_counter()
        with safe_open(str(path), framework="pt", device="cpu") as handle:
            names = update_info.names or list(handle.keys())
            weights = [(name, handle.get_tensor(name)) for name in names]
        if self.device.type != "cpu":
            weights = [(name, t.to(self.device, non_blocking=True)) for name, t in weights]
        self.model.load_weights(weights=weights)
        logger.info("vf_shm: loaded %d tensors in %.3f s", len(weights), time.perf_counter() - start)

    def update_weights(self, update_info: dict[str, Any]) -> None:
        self.receive_weights(self.parse_update_info(update_info))
        if self.device.type != "cpu":
            torch.accelerator.synchronize()

    def shutdown(self) -> None:
        """Nothing is held between updates."""


def refresh_tied_lm_head(model: torch.nn.Module) -> None:
    """Re-derive a tied output layer's kernel data from the new embedding.

    With tied embeddings the LM head shares the embedding's weight, but on some platforms
    (vLLM's CPU build) it also keeps a prepacked copy for its matmul. The layerwise reload
    only re-processes layers that received weights, so that copy would go stale and the
    server would keep scoring with the old head. Re-processing the head fixes it.
    """
    lm_head = getattr(model, "lm_head", None)
    embed = getattr(getattr(model, "model", None), "embed_tokens", None)
    if lm_head is None or embed is None or lm_head is embed:
        return
    if getattr(lm_head, "weight", None) is not getattr(embed, "weight", None):
        return  # not tied: the head received its own weights
    method = getattr(lm_head, "quant_method", None)
    if method is not None and hasattr(method, "process_weights_after_loading"):
        method.process_weights_after_loading(lm_head)


# -- trainer side ---------------------------------------------------------------------------
@dataclass
class SharedMemoryTrainerInitInfo(TrainerInitInfo):
    backend: ClassVar[str] = BACKEND
    directory: str = field(default_factory=default_transfer_dir)


class SharedMemoryTrainerWeightTransferEngine(
    TrainerWeightTransferEngine[SharedMemoryTrainerInitInfo]
):
    """Writes the trainer's weights to shared memory and asks the server to load them."""

    init_info_cls = SharedMemoryTrainerInitInfo

    def __init__(self, *, client: Any, source: WeightSource | None, is_sender: bool,
                 directory: str) -> None:
        super().__init__(client=client, source=source, is_sender=is_sender)
        self.directory = Path(directory)

    @classmethod
    def trainer_init(
        cls, init_info: SharedMemoryTrainerInitInfo, *, client: Any,
        source: WeightSource | None = None,
    ) -> SharedMemoryTrainerWeightTransferEngine:
        engine = cls(client=client, source=source, is_sender=init_info.is_sender,
                     directory=init_info.directory)
        if engine.is_sender:
            client.init_weight_transfer_engine({"directory": init_info.directory})
        return engine

    def send_weights(self, weights: Any = None) -> None:
        """Send ``weights`` (``(name, tensor)`` pairs), or the source's, in one update."""
        from safetensors.torch import save_file

        items = weights if weights is not None else self.source
        if items is None:
            raise ValueError("send_weights() needs weights when the engine has no source.")
        tensors = {name: t.detach().to("cpu").contiguous() for name, t in items}
        if not self.is_sender:
            return
        path = self.directory / f"vf-weights-{uuid.uuid4().hex}.safetensors"
        try:
            save_file(tensors, str(path))
            self.client.start_weight_update()
            self.client.update_weights({"path": str(path), "names": list(tensors)})
            self.client.finish_weight_update()
        finally:
            path.unlink(missing_ok=True)

    def shutdown(self) -> None:
        """Nothing is held between updates."""


def register() -> None:
    """vLLM plugin hook (entry point ``vllm.general_plugins``): register ``vf_shm``."""
    from vllm.distributed.weight_transfer.factory import (
        WeightTransferEngineFactory,
        WeightTransferTrainerFactory,
    )

    for factory, cls in (
        (WeightTransferEngineFactory, SharedMemoryWeightTransferEngine),
        (WeightTransferTrainerFactory, SharedMemoryTrainerWeightTransferEngine),
    ):
        try:
            factory.register_engine(BACKEND, cls)
        except ValueError:  # already registered in this process
            pass
