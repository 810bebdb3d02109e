"""vLLM weight-transfer engines of vf-vllm: ``vf_shm`` (shared memory) and ``vf_auto``.

vLLM (>= 0.19) lets a trainer push new weights into a running server: the server exposes
``/init_weight_transfer_engine``, ``/start_weight_update``, ``/update_weights`` and
``/finish_weight_update`` (development mode), and a *weight transfer engine* moves the
tensors, chosen at start-up by ``--weight-transfer-config '{"backend": NAME}'``. This module
adds two engines to vLLM's registry:

- ``vf_shm``, for a trainer and a server on the same machine, GPU or not: the trainer copies
  the named tensors to host memory and writes them as safetensors files (chunks of bounded
  size) in a shared-memory folder (``/dev/shm`` where it exists), posting each path; each
  vLLM worker memory-maps the file, moves the tensors to its device and loads them with the
  model's own ``load_weights`` (which maps Hugging Face names onto vLLM's fused layers).
  No NCCL group, no GPU peer access between trainer and server.
- ``vf_auto`` (vf-vllm's default), one server offering several transports: ``vf_shm``
  always, vLLM's own ``nccl`` where the server has CUDA. The trainer's
  ``init_weight_transfer_engine`` payload names the transport (``{"transport": "nccl",
  ...the transport's own fields}``) and the server's workers build that engine for it.

Both register through vLLM's plugin entry point (``vllm.general_plugins``), so they exist in
every vLLM process, including spawned workers.
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import torch
from vllm.distributed.weight_transfer.base import (
    ParamMeta,
    TrainerInitInfo,
    TrainerWeightTransferEngine,
    WeightSource,
    WeightTransferEngine,
    WeightTransferInitInfo,
    WeightTransferUpdateInfo,
)

logger = logging.getLogger(__name__)

BACKEND = "vf_shm"
AUTO_BACKEND = "vf_auto"
#: bytes of weights per safetensors file written by vf_shm (bounds the host memory used)
DEFAULT_CHUNK_BYTES = 1 << 30


def default_transfer_dir() -> str:
    """A folder in shared memory (RAM-backed) when the platform has one."""
    shm = Path("/dev/shm")
    return str(shm) if shm.is_dir() and os.access(shm, os.W_OK) else tempfile.gettempdir()


def offered_transports(backend: str, cuda: bool | None = None) -> list[str]:
    """What a server started with ``backend`` can receive weights over."""
    if cuda is None:
        cuda = torch.cuda.is_available()
    if backend == AUTO_BACKEND:
        return [BACKEND, "nccl"] if cuda else [BACKEND]
    return [backend]


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
    """Loads weights that the trainer wrote to safetensors files in shared memory."""

    init_info_cls = SharedMemoryInitInfo
    update_info_cls = SharedMemoryUpdateInfo
    supports_draft_weight_update = False

    def init_transfer_engine(self, init_info: SharedMemoryInitInfo) -> None:
        directory = Path(init_info.directory)
        if not directory.is_dir():
            raise ValueError(
                f"vf_shm weight transfer: {directory} is not a folder on the server's machine. "
                "The trainer and vf-vllm must share a filesystem for this backend; across "
                "machines use the nccl transport."
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


@dataclass
class AutoInitInfo(WeightTransferInitInfo):
    """The transport the trainer chose, the engine built for it and its parsed init info."""

    transport: str
    engine: WeightTransferEngine[Any, Any]
    info: WeightTransferInitInfo


def _transport_engine_class(transport: str) -> type[WeightTransferEngine[Any, Any]]:
    if transport == BACKEND:
        return SharedMemoryWeightTransferEngine
    if transport == "nccl":
        from vllm.distributed.weight_transfer.nccl_engine import NCCLWeightTransferEngine

        return NCCLWeightTransferEngine
    raise ValueError(f"vf_auto weight transfer: unknown transport {transport!r}.")


class AutoWeightTransferEngine(WeightTransferEngine[AutoInitInfo, Any]):
    """``vf_auto``: receives over the transport named in the trainer's init payload
    (``vf_shm``, or ``nccl`` when this worker has CUDA), by delegating every step of vLLM's
    protocol to that transport's engine. A later init replaces the transport."""

    init_info_cls = AutoInitInfo
    supports_draft_weight_update = False

    def __init__(self, config: Any, vllm_config: Any, device: torch.device,
                 model: torch.nn.Module) -> None:
        super().__init__(config, vllm_config, device, model)
        self.delegate: WeightTransferEngine[Any, Any] | None = None

    def parse_init_info(self, init_dict: dict[str, Any]) -> AutoInitInfo:
        options = dict(init_dict)
        transport = options.pop("transport", None)
        offered = offered_transports(AUTO_BACKEND, cuda=self.device.type == "cuda")
        if transport not in offered:
            raise ValueError(
                f"vf_auto weight transfer: the init payload must name a transport this server "
                f"offers, one of {offered} (as {{\"transport\": ...}}); got {transport!r}."
            )
        engine = _transport_engine_class(transport)(
            self.config, self.vllm_config, self.device, self._default_model)
        return AutoInitInfo(transport, engine, engine.parse_init_info(options))

    def init_transfer_engine(self, init_info: AutoInitInfo) -> None:
        init_info.engine.init_transfer_engine(init_info.info)
        if self.delegate is not None:
            self.delegate.shutdown()
        self.delegate = init_info.engine
        logger.info("vf_auto: receiving weights over %s", init_info.transport)

    def _engine(self) -> WeightTransferEngine[Any, Any]:
        if self.delegate is None:
            raise RuntimeError("vf_auto weight transfer: init_weight_transfer_engine first.")
        return self.delegate

    def set_weight_update_target(self, model: torch.nn.Module, model_config: Any) -> None:
        super().set_weight_update_target(model, model_config)
        if self.delegate is not None:
            self.delegate.set_weight_update_target(model, model_config)

    def reset_weight_update_target(self) -> None:
        super().reset_weight_update_target()
        if self.delegate is not None:
            self.delegate.reset_weight_update_target()

    def start_weight_update(self) -> None:
        self._engine().start_weight_update()

    def finish_weight_update(self) -> None:
        self._engine().finish_weight_update()

    def update_weights(self, update_info: dict[str, Any]) -> None:
        self._engine().update_weights(update_info)

    def receive_weights(self, update_info: Any) -> None:
        self._engine().receive_weights(update_info)

    def shutdown(self) -> None:
        if self.delegate is not None:
            self.delegate.shutdown()
            self.delegate = None


# -- trainer side ---------------------------------------------------------------------------
@dataclass
class SharedMemoryTrainerInitInfo(TrainerInitInfo):
    backend: ClassVar[str] = BACKEND
    directory: str = field(default_factory=default_transfer_dir)
    chunk_bytes: int = DEFAULT_CHUNK_BYTES
    #: cast floating-point tensors to this dtype (the server's) before writing; None keeps them
    dtype: str | None = None


class SharedMemoryTrainerWeightTransferEngine(
    TrainerWeightTransferEngine[SharedMemoryTrainerInitInfo]
):
    """Copies the trainer's weights to shared memory, chunk by chunk, and asks the server
    to load each chunk (one start/finish pair per push)."""

    init_info_cls = SharedMemoryTrainerInitInfo

    def __init__(self, *, client: Any, source: WeightSource | None, is_sender: bool,
                 directory: str, chunk_bytes: int = DEFAULT_CHUNK_BYTES,
                 dtype: str | None = None) -> None:
        super().__init__(client=client, source=source, is_sender=is_sender)
        self.directory = Path(directory)
        if chunk_bytes <= 0:
            raise ValueError(f"vf_shm chunk_bytes must be > 0, got {chunk_bytes}.")
        self.chunk_bytes = chunk_bytes
        self.dtype = getattr(torch, dtype) if dtype else None

    @classmethod
    def trainer_init(
        cls, init_info: SharedMemoryTrainerInitInfo, *, client: Any,
        source: WeightSource | None = None,
    ) -> SharedMemoryTrainerWeightTransferEngine:
        engine = cls(client=client, source=source, is_sender=init_info.is_sender,
                     directory=init_info.directory, chunk_bytes=init_info.chunk_bytes,
                     dtype=init_info.dtype)
        if engine.is_sender:
            client.init_weight_transfer_engine({"directory": init_info.directory})
        return engine

    def _host_chunks(self, items: Iterable[tuple[str, torch.Tensor]]
                     ) -> Iterator[dict[str, torch.Tensor]]:
        chunk: dict[str, torch.Tensor] = {}
        size = 0
        for name, tensor in items:
            tensor = tensor.detach()
            if self.dtype is not None and tensor.is_floating_point():
                tensor = tensor.to(self.dtype)
            host = tensor.to("cpu").contiguous()
            chunk[name] = host
            size += host.numel() * host.element_size()
            if size >= self.chunk_bytes:
                yield chunk
                chunk, size = {}, 0
        if chunk:
            yield chunk

    def send_weights(self, weights: Any = None) -> None:
        """Send ``weights`` (``(name, tensor)`` pairs), or the source's, in one update."""
        from safetensors.torch import save_file

        items = weights if weights is not None else self.source
        if items is None:
            raise ValueError("send_weights() needs weights when the engine has no source.")
        if not self.is_sender:
            for _ in items:  # take part in whatever collective the source runs
                pass
            return
        self.client.start_weight_update()
        for chunk in self._host_chunks(items):
            path = self.directory / f"vf-weights-{uuid.uuid4().hex}.safetensors"
            try:
                save_file(chunk, str(path))
                self.client.update_weights({"path": str(path), "names": list(chunk)})
            finally:
                path.unlink(missing_ok=True)
        self.client.finish_weight_update()

    def shutdown(self) -> None:
        """Nothing is held between updates."""


class NamedTensorSource(WeightSource):
    """A :class:`WeightSource` over ``(name, tensor)`` pairs given before each push (whole,
    already-gathered tensors under the served model's names, LoRA merged), cast to
    ``dtype`` and moved to ``device`` one tensor at a time as they are sent."""

    def __init__(self, device: torch.device | str | None = None,
                 dtype: torch.dtype | None = None) -> None:
        self.pairs: list[tuple[str, torch.Tensor]] = []
        self.device = torch.device(device) if device is not None else None
        self.dtype = dtype

    def set(self, pairs: Iterable[tuple[str, torch.Tensor]]) -> None:
        self.pairs = list(pairs)
        for name, tensor in self.pairs:
            if callable(getattr(tensor, "full_tensor", None)):
                raise ValueError(
                    f"{name} is a shard (a DTensor): push whole tensors, gathered on every "
                    "process first (verifiers_trainer.grpo.sharding.full_weights).")

    def _dtype(self, tensor: torch.Tensor) -> torch.dtype:
        return self.dtype if self.dtype is not None and tensor.is_floating_point() else tensor.dtype

    def metadata(self) -> list[ParamMeta]:
        return [ParamMeta(name, self._dtype(t), tuple(t.shape)) for name, t in self.pairs]

    def __iter__(self) -> Iterator[tuple[str, torch.Tensor]]:
        for name, tensor in self.pairs:
            yield name, tensor.detach().to(device=self.device or tensor.device,
                                           dtype=self._dtype(tensor))


def register() -> None:
    """vLLM plugin hook (entry point ``vllm.general_plugins``): register ``vf_shm`` and
    ``vf_auto``."""
    from vllm.distributed.weight_transfer.factory import (
        WeightTransferEngineFactory,
        WeightTransferTrainerFactory,
    )

    for factory, name, cls in (
        (WeightTransferEngineFactory, BACKEND, SharedMemoryWeightTransferEngine),
        (WeightTransferEngineFactory, AUTO_BACKEND, AutoWeightTransferEngine),
        (WeightTransferTrainerFactory, BACKEND, SharedMemoryTrainerWeightTransferEngine),
    ):
        try:
            factory.register_engine(name, cls)
        except ValueError:  # already registered in this process
            pass
