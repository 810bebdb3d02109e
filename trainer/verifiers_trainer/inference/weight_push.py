"""Pushing a trainer's weights into one or several vf-vllm servers, on vLLM's protocol.

vLLM's weight-transfer protocol (0.31): the trainer builds a trainer-side engine with
``WeightTransferTrainerFactory.trainer_init(init_info, client=..., source=...)``, where
``client`` drives the server's ``/init_weight_transfer_engine``, ``/start_weight_update``,
``/update_weights`` and ``/finish_weight_update``; each push is one ``send_weights()``. This
module chooses the transport per server and drives that protocol:

1. read each server's offer (``GET /vf/weight_transfer``: its engine, the transports it
   offers, its dtype and worker count) and test whether it shares this machine's shared
   memory (a probe file it must read back);
2. choose (:func:`choose_transport`): ``vf_shm`` for a server on this machine (no NCCL
   group; tensors are copied from the GPU to host memory), else ``nccl``;
3. one trainer engine per transport, over every server that uses it: for ``nccl``, vLLM's
   own engine with one process group holding this trainer (rank 0) and every worker of
   every server, each server's workers at their rank offset (1, then after the previous
   server's workers), the rendezvous at ``group_address:group_port``.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

logger = logging.getLogger(__name__)

TRANSPORT_CHOICES = ("auto", "vf_shm", "nccl")


class WeightTransferSetupError(RuntimeError):
    """The weights cannot reach a server the way it was asked; the message says what to set."""


@dataclass
class ServerOffer:
    """What one server accepts (from ``GET /vf/weight_transfer``, or vLLM's own
    ``/server_info`` for a server that is not vf-vllm)."""

    base_url: str
    backend: str | None
    transports: list[str]
    world_size: int
    dtype: str | None = None
    local: bool = False  #: the server read back a probe file written by this process
    shm_dir: str | None = None
    notes: list[str] = field(default_factory=list)


def choose_transport(offer: ServerOffer, requested: str = "auto", trainer_cuda: bool = False) -> str:
    """The transport for ``offer``: ``requested`` when the server and this trainer can use it,
    with ``"auto"`` ``vf_shm`` for a server on this machine, else ``nccl``. Raises
    :class:`WeightTransferSetupError` saying what to change when none fits."""
    if requested not in TRANSPORT_CHOICES:
        raise ValueError(f"weight transfer must be one of {TRANSPORT_CHOICES}; got {requested!r}.")
    where = f"The vf-vllm server at {offer.base_url}"
    offered = f"offers {offer.transports or 'no weight transfer'} (engine {offer.backend!r})"
    restart = ("start it with vf-vllm, whose default engine vf_auto offers vf_shm and, with "
               "CUDA, nccl (or pass --weight-transfer-config '{\"backend\": \"vf_auto\"}')")
    not_local = (f"{where} cannot read files this trainer writes in its shared-memory folder, "
                 "so it is not on this machine (or does not share /dev/shm with it, e.g. another "
                 "container)")
    if requested == "vf_shm" or (requested == "auto" and "vf_shm" in offer.transports and offer.local):
        if "vf_shm" not in offer.transports:
            raise WeightTransferSetupError(f"{where} {offered}, not vf_shm: {restart}.")
        if not offer.local:
            raise WeightTransferSetupError(
                f"{not_local}. Use the nccl transport (weight transfer 'nccl' or 'auto'), or run "
                "the trainer on the server's machine with /dev/shm shared.")
        return "vf_shm"
    # nccl, asked for or the only way left
    if "nccl" not in offer.transports:
        reasons = [] if requested == "nccl" else [not_local if "vf_shm" in offer.transports
                                                  else f"{where} {offered}"]
        reasons.append(f"{where} offers no nccl transport ({offered}): nccl needs CUDA on the "
                       f"server and an engine that offers it; {restart}")
        raise WeightTransferSetupError(". ".join(reasons) + ".")
    if not trainer_cuda:
        raise WeightTransferSetupError(
            f"{where} is reached over nccl, which needs CUDA in the trainer process (none here). "
            "Train on a GPU, or run the trainer on the server's machine (vf_shm works without GPUs).")
    return "nccl"


def route_address(base_url: str) -> str:
    """This machine's address on the route to the server at ``base_url`` (what the server's
    workers can use to reach the NCCL rendezvous here). Sends nothing."""
    host = urlparse(base_url).hostname or "127.0.0.1"
    if host in ("localhost", "127.0.0.1", "::1"):
        return "127.0.0.1"
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.connect((host, 9))
            return str(sock.getsockname()[0])
    except OSError as exc:
        raise WeightTransferSetupError(
            f"Cannot find this machine's address on the route to {host} ({exc}): set the NCCL "
            "rendezvous address yourself (GRPOConfig.vllm_group_address, or group_address=...)."
        ) from exc


def free_port_on(address: str) -> int:
    with socket.socket() as sock:
        sock.bind((address, 0))
        return int(sock.getsockname()[1])


# -- the control plane: vLLM's four-method client protocol, per server and fanned out -----
class ServerControl:
    """vLLM's ``VLLMWeightSyncClient`` protocol for one server, over ``request`` (a
    :class:`~verifiers_trainer.inference.vllm_client.VLLMClient`'s). Adds the ``transport``
    key that a ``vf_auto`` server expects, and this server's ``rank_offset`` in a shared
    NCCL group."""

    def __init__(self, base_url: str, request: Callable[..., Any], transport: str | None = None,
                 rank_offset: int | None = None) -> None:
        self.base_url = base_url
        self._request = request
        self.transport = transport
        self.rank_offset = rank_offset

    def init_weight_transfer_engine(self, init_info: dict[str, Any]) -> None:
        payload = dict(init_info)
        if self.transport is not None:
            payload["transport"] = self.transport
        if self.rank_offset is not None and "rank_offset" in payload:
            payload["rank_offset"] = self.rank_offset
        self._request("POST", "init_weight_transfer_engine", {"init_info": payload})

    def start_weight_update(self) -> None:
        self._request("POST", "start_weight_update")

    def update_weights(self, update_info: Any) -> None:
        self._request("POST", "update_weights", {"update_info": update_info})

    def finish_weight_update(self, weight_version: str | None = None) -> None:
        body = {"weight_version": weight_version} if weight_version is not None else None
        self._request("POST", "finish_weight_update", body)


class FanOut:
    """vLLM's client protocol over several servers: every call goes to all of them at once
    (NCCL needs every worker inside the same collective), and fails if any fails."""

    def __init__(self, controls: Sequence[ServerControl]) -> None:
        self.controls = list(controls)

    def _all(self, method: str, *args: Any) -> None:
        if len(self.controls) == 1:
            getattr(self.controls[0], method)(*args)
            return
        with ThreadPoolExecutor(max_workers=len(self.controls)) as pool:
            futures = [pool.submit(getattr(c, method), *args) for c in self.controls]
            errors = [f.exception() for f in futures]
        failed = [(c, e) for c, e in zip(self.controls, errors, strict=True) if e is not None]
        if failed:
            control, error = failed[0]
            raise RuntimeError(f"{method} failed on {control.base_url}: {error}") from error

    def init_weight_transfer_engine(self, init_info: dict[str, Any]) -> None:
        self._all("init_weight_transfer_engine", init_info)

    def start_weight_update(self) -> None:
        self._all("start_weight_update")

    def update_weights(self, update_info: Any) -> None:
        self._all("update_weights", update_info)

    def finish_weight_update(self, weight_version: str | None = None) -> None:
        self._all("finish_weight_update", weight_version)


# -- reading offers -------------------------------------------------------------------------
def read_offer(client: Any, probe_dir: str | None = None) -> ServerOffer:
    """Ask ``client``'s server what it accepts, and whether it shares this machine."""
    from verifiers_trainer.inference.vllm_client import VLLMServerError
    from verifiers_trainer.inference.weight_transfer import default_transfer_dir

    try:
        info = client._request("GET", "vf/weight_transfer")
    except VLLMServerError as exc:
        if "HTTP 404" not in str(exc):
            raise
        return _offer_from_server_info(client)
    offer = ServerOffer(client.base_url, info.get("backend"), list(info.get("transports") or []),
                        int(info.get("world_size") or client.world_size()), info.get("dtype"),
                        shm_dir=info.get("shm_dir"))
    if "vf_shm" in offer.transports:
        offer.local = _probe(client, probe_dir or default_transfer_dir())
    return offer


def _offer_from_server_info(client: Any) -> ServerOffer:
    """A plain ``vllm serve`` (no vf-vllm routes): its engine from vLLM's ``/server_info``."""
    from verifiers_trainer.inference.vllm_client import VLLMServerError

    try:
        info = client._request("GET", "server_info?config_format=json")
        backend = info["vllm_config"]["weight_transfer_config"]["backend"]
    except (VLLMServerError, KeyError, TypeError) as exc:
        raise WeightTransferSetupError(
            f"The server at {client.base_url} does not say how it receives weights (no "
            "/vf/weight_transfer, and /server_info has no weight_transfer_config). Start it with "
            "vf-vllm, or with `vllm serve --weight-transfer-config '{\"backend\": \"nccl\"}'` and "
            f"VLLM_SERVER_DEV_MODE=1. ({exc})") from exc
    return ServerOffer(client.base_url, backend, [backend], client.world_size(),
                       notes=["not vf-vllm: its engine is taken from /server_info"])


def _probe(client: Any, directory: str) -> bool:
    token = uuid.uuid4().hex
    path = Path(directory) / f"vf-probe-{uuid.uuid4().hex}.txt"
    try:
        path.write_text(token)
        answer = client._request("POST", "vf/weight_transfer/probe",
                                 {"path": str(path), "token": token})
    except OSError:
        return False
    finally:
        path.unlink(missing_ok=True)
    return bool(answer.get("readable")) if isinstance(answer, dict) else False


# -- the push -------------------------------------------------------------------------------
class WeightPush:
    """Weight-transfer channels from this trainer process to ``clients`` (``VLLMClient``s
    serving one model). :meth:`init` reads the offers and sets up the engines;
    :meth:`send` pushes ``(name, tensor)`` pairs (whole tensors, served names) to every
    server; the transports chosen are in :attr:`transports` (base URL -> transport).

    ``transport``: ``"auto"``, ``"vf_shm"`` or ``"nccl"``. ``group_address`` /
    ``group_port``: the nccl rendezvous on this machine (default: the address on the route
    to the first nccl server, a free port). ``chunk_bytes``: vf_shm file size."""

    def __init__(self, clients: Sequence[Any], transport: str = "auto", *,
                 group_address: str | None = None, group_port: int | None = None,
                 chunk_bytes: int | None = None, directory: str | None = None,
                 packed: bool = True) -> None:
        if transport not in TRANSPORT_CHOICES:
            raise ValueError(f"weight transfer must be one of {TRANSPORT_CHOICES}; got {transport!r}.")
        self.clients = list(clients)
        self.transport = transport
        self.group_address = group_address
        self.group_port = group_port
        self.chunk_bytes = chunk_bytes
        self.directory = directory
        self.packed = packed
        self.transports: dict[str, str] = {}
        self._engines: list[tuple[str, Any, Any]] = []  # (transport, engine, source)

    def init(self) -> dict[str, str]:
        import torch

        from verifiers_trainer.inference.weight_transfer import register

        register()
        cuda = torch.cuda.is_available()
        offers = [read_offer(c, self.directory) for c in self.clients]
        chosen = [choose_transport(o, self.transport, cuda) for o in offers]
        self.close()
        self.transports = {o.base_url: t for o, t in zip(offers, chosen, strict=True)}
        shm = [(c, o) for c, o, t in zip(self.clients, offers, chosen, strict=True) if t == "vf_shm"]
        nccl = [(c, o) for c, o, t in zip(self.clients, offers, chosen, strict=True) if t == "nccl"]
        if shm:
            self._engines.append(self._init_shm(shm))
        if nccl:
            self._engines.append(self._init_nccl(nccl))
        logger.info("weight transfer: %s", self.transports)
        return self.transports

    @staticmethod
    def _control(client: Any, offer: ServerOffer, transport: str,
                 rank_offset: int | None = None) -> ServerControl:
        key = transport if offer.backend == "vf_auto" else None
        return ServerControl(client.base_url, client._request, key, rank_offset)

    @staticmethod
    def _common_dtype(offers: Sequence[ServerOffer]) -> str | None:
        dtypes = {o.dtype for o in offers}
        return dtypes.pop() if len(dtypes) == 1 else None

    def _init_shm(self, servers: list[tuple[Any, ServerOffer]]) -> tuple[str, Any, Any]:
        from verifiers_trainer.inference.weight_transfer import (
            SharedMemoryTrainerInitInfo,
            SharedMemoryTrainerWeightTransferEngine,
            default_transfer_dir,
        )

        options: dict[str, Any] = {"directory": self.directory or default_transfer_dir(),
                                   "dtype": self._common_dtype([o for _, o in servers])}
        if self.chunk_bytes is not None:
            options["chunk_bytes"] = self.chunk_bytes
        client = FanOut([self._control(c, o, "vf_shm") for c, o in servers])
        engine = SharedMemoryTrainerWeightTransferEngine.trainer_init(
            SharedMemoryTrainerInitInfo(rank=0, **options), client=client)
        return "vf_shm", engine, None

    def _init_nccl(self, servers: list[tuple[Any, ServerOffer]]) -> tuple[str, Any, Any]:
        import torch
        from vllm.distributed.weight_transfer.factory import WeightTransferTrainerFactory
        from vllm.distributed.weight_transfer.nccl_engine import NCCLTrainerInitInfo

        from verifiers_trainer.inference.weight_transfer import NamedTensorSource

        controls, offset = [], 1  # the trainer is rank 0
        for client, offer in servers:
            controls.append(self._control(client, offer, "nccl", rank_offset=offset))
            offset += offer.world_size
        address = self.group_address or os.environ.get("VF_GROUP_ADDRESS") or \
            route_address(servers[0][0].base_url)
        port = self.group_port or free_port_on(address)
        dtype = self._common_dtype([o for _, o in servers])
        source = NamedTensorSource(device=torch.device("cuda", torch.cuda.current_device()),
                                   dtype=getattr(torch, dtype) if dtype else None)
        info = NCCLTrainerInitInfo(rank=0, master_address=address, master_port=port,
                                   world_size=offset, packed=self.packed)
        try:
            engine = WeightTransferTrainerFactory.trainer_init(info, client=FanOut(controls),
                                                               source=source)
        except Exception as exc:
            raise WeightTransferSetupError(
                f"Setting up the nccl weight transfer failed: {exc}. The group is this trainer "
                f"(rank 0) and {offset - 1} vLLM workers of {[c.base_url for c, _ in servers]}, "
                f"meeting at {address}:{port}. Every server must reach that address and port: set "
                "GRPOConfig.vllm_group_address to an address of this machine the servers can "
                "reach (and vllm_group_port to a port open in the firewall); if NCCL picks the "
                "wrong network interface, set NCCL_SOCKET_IFNAME on both sides; if GPU peer "
                "access hangs, try NCCL_P2P_DISABLE=1.") from exc
        return "nccl", engine, source

    def send(self, pairs: Sequence[tuple[str, Any]]) -> None:
        if not self._engines:
            self.init()
        for transport, engine, source in self._engines:
            if transport == "nccl":
                source.set(pairs)
                try:
                    engine.send_weights()
                finally:
                    source.set([])
            else:
                engine.send_weights(pairs)

    def close(self) -> None:
        for _, engine, _ in self._engines:
            engine.shutdown()
        self._engines = []
