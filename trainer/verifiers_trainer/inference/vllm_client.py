"""The trainer's side of vf-vllm: health, world size, weight updates, prefix cache.

    server = VLLMClient("http://127.0.0.1:8000")
    server.wait_until_ready()
    server.init_weight_transfer()              # "auto": vf_shm on this machine, else nccl
    seconds = server.update_weights(model)     # a module, a state dict or (name, tensor) pairs
    client = server.openai()                   # AsyncOpenAI for the environments

Weight updates use vLLM's own weight-transfer API (:mod:`verifiers_trainer.inference.weight_push`
chooses the transport and drives the server's ``/init_weight_transfer_engine``,
``/start_weight_update``, ``/update_weights`` and ``/finish_weight_update`` endpoints).
Several servers: :class:`~verifiers_trainer.inference.vllm_servers.VLLMServers`.
"""

from __future__ import annotations

import json
import logging
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from typing import Any

logger = logging.getLogger(__name__)


class VLLMServerError(RuntimeError):
    """The vf-vllm server answered with an error, or could not be reached."""


class VLLMClient:
    """Control-plane client of one vf-vllm server (``base_url`` without ``/v1``)."""

    def __init__(self, base_url: str = "http://127.0.0.1:8000", timeout: float = 300.0) -> None:
        self.base_url = base_url.rstrip("/").removesuffix("/v1")
        self.timeout = timeout
        self._engine: Any = None
        self.backend: str | None = None

    # -- plumbing ---------------------------------------------------------------------------
    @property
    def openai_base_url(self) -> str:
        return f"{self.base_url}/v1"

    def _request(self, method: str, path: str, body: Any = None, timeout: float | None = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            f"{self.base_url}/{path.lstrip('/')}", data=data, method=method,
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout or self.timeout) as response:
                text = response.read().decode() or "null"
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace")[:500]
            raise VLLMServerError(f"{method} /{path} failed with HTTP {exc.code}: {detail}") from exc
        except (urllib.error.URLError, OSError) as exc:
            raise VLLMServerError(
                f"{method} /{path}: cannot reach the vf-vllm server at {self.base_url} ({exc})."
            ) from exc
        try:
            return json.loads(text)
        except json.JSONDecodeError:
            return text

    # -- status -----------------------------------------------------------------------------
    def health(self) -> bool:
        try:
            self._request("GET", "health", timeout=5)
        except VLLMServerError:
            return False
        return True

    def wait_until_ready(self, timeout: float = 600.0, process: Any = None) -> None:
        """Block until ``/health`` answers; fail early if ``process`` (a Popen) exited."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if process is not None and process.poll() is not None:
                raise VLLMServerError(f"the vf-vllm process exited with code {process.returncode}")
            if self.health():
                return
            time.sleep(0.5)
        raise VLLMServerError(f"vf-vllm at {self.base_url} was not ready after {timeout:.0f} s")

    def world_size(self) -> int:
        """Number of vLLM workers (tensor x pipeline x data parallel)."""
        return int(self._request("GET", "get_world_size")["world_size"])

    def model_name(self) -> str:
        """The name the server serves its model under (``--served-model-name``)."""
        return str(self._request("GET", "v1/models")["data"][0]["id"])

    def reset_prefix_cache(self) -> None:
        self._request("POST", "reset_prefix_cache")

    def pause(self, mode: str = "keep") -> None:
        """Stop scheduling generation: ``"keep"`` freezes running requests where they are (they
        continue after :meth:`resume`, e.g. with new weights), ``"wait"`` lets them finish,
        ``"abort"`` ends them."""
        if mode not in ("keep", "wait", "abort"):
            raise ValueError(f"pause mode must be 'keep', 'wait' or 'abort'; got {mode!r}.")
        self._request("POST", f"pause?mode={mode}")

    def resume(self) -> None:
        self._request("POST", "resume")

    # -- weights ----------------------------------------------------------------------------
    def init_weight_transfer(self, backend: str = "auto", **options: Any) -> str:
        """Set up the weight-transfer channel with the server; returns the transport chosen.

        ``backend``: ``"auto"`` (``vf_shm`` when the server shares this machine's shared
        memory, else ``nccl``), ``"vf_shm"`` or ``"nccl"``; the server must offer it
        (vf-vllm's ``vf_auto`` engine offers ``vf_shm``, and ``nccl`` with CUDA).
        ``options`` go to :class:`~verifiers_trainer.inference.weight_push.WeightPush`:
        ``group_address``/``group_port`` (the nccl rendezvous on this machine, which the
        server must reach), ``chunk_bytes`` (vf_shm file size).
        """
        from verifiers_trainer.inference.weight_push import WeightPush

        self.close()
        push = WeightPush([self], backend, **options)
        self.backend = push.init()[self.base_url]
        self._engine = push
        return self.backend

    def update_weights(self, weights: Any = None) -> float:
        """Push new weights; returns the seconds it took.

        ``weights``: a ``torch.nn.Module`` (its named parameters), a state dict, or
        ``(name, tensor)`` pairs with Hugging Face names (LoRA already merged), whole
        tensors (under FSDP / ZeRO-3, gathered first).
        """
        if self._engine is None:
            self.init_weight_transfer()
        start = time.perf_counter()
        self._engine.send(named_tensors(weights))
        elapsed = time.perf_counter() - start
        logger.info("updated vf-vllm weights (%s) in %.3f s", self.backend, elapsed)
        return elapsed

    def close(self) -> None:
        """Release the weight-transfer channel (NCCL communicators, ...)."""
        if self._engine is not None:
            self._engine.close()
            self._engine = None

    # -- generation -------------------------------------------------------------------------
    def openai(self, api_key: str = "EMPTY") -> Any:
        """An ``AsyncOpenAI`` client for this server (on the fast transport)."""
        from verifiers.clients import make_async_client

        return make_async_client(self.openai_base_url, api_key)


def named_tensors(weights: Any) -> list[tuple[str, Any]]:
    """``(name, tensor)`` pairs of a module, a state dict or pairs."""
    if weights is None:
        raise ValueError("update_weights() needs the weights: a module, a state dict or pairs.")
    if hasattr(weights, "named_parameters"):
        return list(weights.named_parameters())
    if isinstance(weights, Mapping):
        return list(weights.items())
    return list(weights)


def free_port() -> int:
    """A TCP port that is free on 127.0.0.1 now."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
