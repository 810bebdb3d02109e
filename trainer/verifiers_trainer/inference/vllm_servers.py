"""The trainer's side of one or several vf-vllm servers serving the same model.

    servers = VLLMServers(["http://10.0.0.2:8000", "http://10.0.0.3:8000"])
    servers.wait_until_ready()
    client = servers.openai()          # rollouts spread over the servers (vf.MultiServerClient)
    servers.update_weights(pairs)      # pushed to every server that is still up

The same methods as :class:`~verifiers_trainer.inference.vllm_client.VLLMClient` (what
``GRPOTrainer`` calls). A server that stops answering is dropped: before each push every
server's ``/health`` is checked, the ones that fail are taken out of the rollout client and
the weight transfer is set up again among the others (a new NCCL group for ``nccl``), so the
run continues on the rest; their requests in flight fail over to the others. A server that
dies *during* an nccl push leaves the others inside the broadcast (vLLM's NCCL transfer
cannot recover from a missing peer): that push fails with the reason.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

from verifiers_trainer.inference.vllm_client import VLLMClient, VLLMServerError, named_tensors

logger = logging.getLogger(__name__)


def base_urls_of(args: Any) -> list[str]:
    """The servers a ``GRPOConfig`` names: ``vllm_server_base_url`` (one URL, a list, or
    URLs separated by commas), else ``http://vllm_server_host:vllm_server_port``."""
    from verifiers.multi_client import split_base_urls

    urls = args.vllm_server_base_url
    if urls is None:
        return [f"http://{args.vllm_server_host}:{args.vllm_server_port}"]
    return [u.removesuffix("/v1") for u in split_base_urls(urls)]


def check_server_settings(args: Any) -> None:
    """Raise ``ValueError`` for contradicting or malformed vf-vllm settings of a config."""
    from verifiers_trainer.inference.weight_push import TRANSPORT_CHOICES

    if args.vllm_server_base_url is not None:
        base_urls_of(args)
        if (args.vllm_server_host, args.vllm_server_port) != ("127.0.0.1", 8000):
            raise ValueError(
                "Give the vf-vllm servers once: vllm_server_base_url, or vllm_server_host and "
                f"vllm_server_port (got vllm_server_base_url={args.vllm_server_base_url!r} and "
                f"{args.vllm_server_host}:{args.vllm_server_port}).")
    if args.vllm_weight_transfer not in TRANSPORT_CHOICES:
        raise ValueError(f"vllm_weight_transfer must be one of {TRANSPORT_CHOICES}; got "
                         f"{args.vllm_weight_transfer!r}.")
    port = args.vllm_group_port
    if port is not None and not 1 <= port <= 65535:
        raise ValueError(f"vllm_group_port must be in [1, 65535], or None; got {port!r}.")


class VLLMServers:
    """Control plane of ``base_urls`` (without ``/v1``), all serving one model."""

    def __init__(self, base_urls: Sequence[str], timeout: float = 300.0, transport: str = "auto",
                 **push_options: Any) -> None:
        if not base_urls:
            raise ValueError("VLLMServers needs at least one base URL.")
        self.servers = [VLLMClient(url, timeout) for url in base_urls]
        self.alive = list(self.servers)
        self.transport = transport
        self.push_options = push_options
        self._push: Any = None
        self._client: Any = None

    @classmethod
    def from_config(cls, args: Any) -> VLLMServers:
        return cls(base_urls_of(args), args.vllm_server_timeout, args.vllm_weight_transfer,
                   group_address=args.vllm_group_address, group_port=args.vllm_group_port)

    @property
    def base_url(self) -> str:
        return ",".join(s.base_url for s in self.alive)

    # -- status -----------------------------------------------------------------------------
    def wait_until_ready(self, timeout: float = 600.0) -> None:
        deadline = time.monotonic() + timeout
        for server in self.servers:
            server.wait_until_ready(max(1.0, deadline - time.monotonic()))

    def model_name(self) -> str:
        names = {server.base_url: server.model_name() for server in self.alive}
        if len(set(names.values())) > 1:
            raise VLLMServerError(f"The vf-vllm servers serve different models: {names}. "
                                  "Start every server with the same --model (and --served-model-name).")
        return next(iter(names.values()))

    def world_size(self) -> int:
        return sum(server.world_size() for server in self.alive)

    def _each(self, action: str, *args: Any) -> None:
        """``action`` on every live server; one that cannot be reached is dropped."""
        for server in list(self.alive):
            try:
                getattr(server, action)(*args)
            except VLLMServerError as exc:
                if server.health():
                    raise
                self._drop(server, exc)
        self._check_alive()

    def pause(self, mode: str = "keep") -> None:
        self._each("pause", mode)

    def resume(self) -> None:
        self._each("resume")

    def reset_prefix_cache(self) -> None:
        self._each("reset_prefix_cache")

    # -- losing a server --------------------------------------------------------------------
    def _drop(self, server: VLLMClient, reason: Any) -> None:
        logger.warning("vf-vllm server %s went away (%s): continuing on %d other(s)",
                       server.base_url, reason, len(self.alive) - 1)
        self.alive.remove(server)
        if self._client is not None and hasattr(self._client, "remove"):
            self._client.remove(server.openai_base_url)
        if self._push is not None:
            self._push.close()
            self._push = None

    def _check_alive(self) -> None:
        if not self.alive:
            raise VLLMServerError(
                f"Every vf-vllm server has gone away ({', '.join(s.base_url for s in self.servers)}): "
                "restart them and resume the run from its last checkpoint.")

    def drop_unhealthy(self) -> list[str]:
        """Drop the servers whose ``/health`` fails now; returns their URLs."""
        gone = [s for s in self.alive if not s.health()]
        for server in gone:
            self._drop(server, "no answer on /health")
        self._check_alive()
        return [s.base_url for s in gone]

    # -- weights ----------------------------------------------------------------------------
    def init_weight_transfer(self) -> dict[str, str]:
        """Set up the transfer to every live server; returns base URL -> transport."""
        from verifiers_trainer.inference.weight_push import WeightPush

        if self._push is not None:
            self._push.close()
        self._push = WeightPush(self.alive, self.transport, **self.push_options)
        return self._push.init()

    def update_weights(self, weights: Any) -> float:
        """Push ``weights`` (a module, a state dict or pairs) to every live server; returns
        the seconds it took. Servers that went away since the last push are dropped first;
        one that fails during a vf_shm push is dropped and the push repeated on the others."""
        pairs = named_tensors(weights)
        start = time.perf_counter()
        self.drop_unhealthy()
        if self._push is None:
            self.init_weight_transfer()
        try:
            self._push.send(pairs)
        except Exception as exc:
            if not self.drop_unhealthy():
                raise
            logger.warning("weight push failed (%s); repeating it on the remaining servers", exc)
            self.init_weight_transfer()
            self._push.send(pairs)
        return time.perf_counter() - start

    def close(self) -> None:
        if self._push is not None:
            self._push.close()
            self._push = None

    # -- generation -------------------------------------------------------------------------
    def openai(self, api_key: str = "EMPTY") -> Any:
        """The rollout client: the server's ``AsyncOpenAI``, or with several servers a
        :class:`verifiers.MultiServerClient` over them (the trainer's drops apply to it)."""
        if len(self.servers) == 1:
            return self.servers[0].openai(api_key)
        from verifiers.multi_client import MultiServerClient

        self._client = MultiServerClient([s.openai_base_url for s in self.alive], api_key)
        return self._client
