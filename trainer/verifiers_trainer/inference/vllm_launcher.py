"""Start and stop a vf-vllm server from Python (tests, vf-eval --model-path, trainers).

    with VLLMServer("path/to/model", args=["--dtype", "float32"]) as server:
        client = server.client.openai()
        ...

The server runs in its own process group on 127.0.0.1 and a free port; ``stop()`` ends that
process group through the handle it started (never by name). Its output goes to a log
file whose tail is shown when it fails to start.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from verifiers_trainer.inference.vllm_client import VLLMClient, VLLMServerError, free_port

__all__ = ["VLLMServer", "free_port"]


class VLLMServer:
    """A vf-vllm server process owned by this object."""

    def __init__(
        self,
        model: str | os.PathLike[str],
        args: Sequence[str] = (),
        port: int | None = None,
        host: str = "127.0.0.1",
        env: dict[str, str] | None = None,
        log_path: str | os.PathLike[str] | None = None,
        startup_timeout: float = 600.0,
    ) -> None:
        self.model = str(model)
        self.args = list(args)
        self.host = host
        self.port = port or free_port()
        self.env = {**os.environ, **(env or {})}
        self.env.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")  # GiB; vLLM's CPU default is large
        self.env.setdefault("TOKENIZERS_PARALLELISM", "false")
        self.log_path = Path(log_path) if log_path else Path(
            tempfile.mkstemp(prefix="vf-vllm-", suffix=".log")[1])
        self.startup_timeout = startup_timeout
        self.process: subprocess.Popen[bytes] | None = None
        self.client = VLLMClient(f"http://{host}:{self.port}")

    @property
    def base_url(self) -> str:
        return self.client.openai_base_url

    #: the module run as the server (``python -m ...``)
    entry_module = "verifiers_trainer.inference.vllm_server"

    def start(self) -> VLLMServer:
        command = [sys.executable, "-m", self.entry_module,
                   "--model", self.model, "--host", self.host, "--port", str(self.port),
                   *self.args]
        log = self.log_path.open("wb")
        self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                                        env=self.env, start_new_session=True)
        log.close()
        try:
            self.client.wait_until_ready(self.startup_timeout, self.process)
        except VLLMServerError as exc:
            self.stop()
            raise VLLMServerError(f"{exc}\n--- vf-vllm log ({self.log_path}) ---\n{self.log_tail()}") from exc
        return self

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self, timeout: float = 30.0) -> None:
        """End the server's process group (SIGTERM, then SIGKILL after ``timeout``)."""
        if self.process is None:
            return
        self.client.close()
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGTERM)
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)
            except ProcessLookupError:
                pass
        self.process = None

    def __enter__(self) -> VLLMServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
