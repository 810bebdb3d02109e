"""vf-vllm's own HTTP routes, added to vLLM's server: what weight transfers it offers.

    GET  /vf/weight_transfer        {"backend", "transports", "hostname", "dtype",
                                     "world_size", "shm_dir"}
    POST /vf/weight_transfer/probe  {"path": ..., "token": ...} -> {"readable": bool}

A trainer reads the first to choose a transport (``vf_shm`` when it shares the server's
machine, ``nccl`` otherwise). "Shares the machine" is tested, not guessed from host
names: the trainer writes a probe file with a random token into its shared-memory folder
and asks the server whether it reads the same token at that path (containers on one host
may or may not share ``/dev/shm``).

(No ``from __future__ import annotations`` here: FastAPI reads the routes' annotations.)
"""

import re
import socket
from pathlib import Path
from typing import Any

PROBE_NAME = re.compile(r"^vf-probe-[0-9a-f]{32}\.txt$")


def advertisement(vllm_config: Any) -> dict[str, Any]:
    """The weight transfers a server with ``vllm_config`` offers."""
    from verifiers_trainer.inference.weight_transfer import (
        default_transfer_dir,
        offered_transports,
    )

    config = vllm_config.weight_transfer_config
    backend = getattr(config, "backend", None)
    return {
        "backend": backend,
        "transports": offered_transports(backend) if backend else [],
        "hostname": socket.gethostname(),
        "dtype": str(vllm_config.model_config.dtype).removeprefix("torch."),
        "world_size": int(vllm_config.parallel_config.world_size_across_dp),
        "shm_dir": default_transfer_dir(),
    }


def probe_readable(path: str, token: str) -> bool:
    """Whether the probe file at ``path`` holds ``token`` (only probe files are read)."""
    file = Path(path)
    if not PROBE_NAME.match(file.name):
        raise ValueError(f"not a weight-transfer probe file: {file.name!r}")
    try:
        return file.read_text().strip() == token
    except OSError:
        return False


def attach(app: Any) -> None:
    """Add the routes to vLLM's FastAPI ``app``."""
    from fastapi import APIRouter, Request
    from fastapi.responses import JSONResponse

    router = APIRouter()

    @router.get("/vf/weight_transfer")
    async def weight_transfer(raw_request: Request) -> JSONResponse:
        return JSONResponse(advertisement(raw_request.app.state.vllm_config))

    @router.post("/vf/weight_transfer/probe")
    async def probe(raw_request: Request) -> JSONResponse:
        body = await raw_request.json()
        try:
            readable = probe_readable(str(body.get("path", "")), str(body.get("token", "")))
        except ValueError as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        return JSONResponse({"readable": readable})

    app.include_router(router)
