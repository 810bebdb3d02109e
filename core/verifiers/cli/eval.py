"""vf-eval: evaluate a model on an installed environment through an OpenAI-compatible API.

    vf-eval vf-math-python -m gpt-4.1-mini -n 20 -r 3 -s
    vf-eval wordle -b http://127.0.0.1:8000/v1 -m my-model -a '{"use_think": true}'
    vf-eval --resume outputs/evals/vf-wordle--my-model/20261123-101500-ab12

Heavy modules are imported only after the arguments are parsed, so ``--help`` is instant.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from verifiers.cli.eval_settings import DEFAULT_BASE_URL, DEFAULTS, UsageError


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="vf-eval",
        description="Evaluate a model on an environment through any OpenAI-compatible endpoint. "
                    "Exit codes: 0 done, 1 more rollouts failed than --max-failed-share allows "
                    "(or the run itself failed), 2 bad input.",
    )
    p.add_argument("env", nargs="?", help="environment id, e.g. vf-math-python (or math-python)")
    p.add_argument("-m", "--model", default=None,
                   help=f"model name the server knows, or a name in the endpoints registry (-e) "
                        f"(default {DEFAULTS['model']})")
    p.add_argument("-b", "--api-base-url", default=None,
                   help=f"server URL (default: $OPENAI_BASE_URL or {DEFAULT_BASE_URL}); several "
                        "servers of one model: URLs separated by commas (rollouts are spread "
                        "over them and moved off a server that fails)")
    p.add_argument("-k", "--api-key-var", default=None,
                   help="name of the environment variable holding the API key (default OPENAI_API_KEY)")
    p.add_argument("-e", "--endpoints-path", default=None,
                   help="Python file (or folder with endpoints.py) defining ENDPOINTS = {name: "
                        "{'model', 'url', 'key'}} as in verifiers 0.1.x (default "
                        "./configs/endpoints.py when it exists)")
    p.add_argument("-n", "--num-examples", type=int, default=None,
                   help=f"examples to evaluate, -1 for all (default {DEFAULTS['num_examples']})")
    p.add_argument("-r", "--rollouts-per-example", type=int, default=None,
                   help=f"samples per example (default {DEFAULTS['rollouts_per_example']})")
    p.add_argument("-c", "--max-concurrent", "--max-concurrent-requests", type=int, default=None,
                   dest="max_concurrent",
                   help=f"rollouts in flight (default {DEFAULTS['max_concurrent']})")
    p.add_argument("-t", "--max-tokens", type=int, default=None, help="max tokens per model turn")
    p.add_argument("-T", "--temperature", type=float, default=None, help="sampling temperature")
    p.add_argument("-a", "--env-args", default=None, help="JSON object of load_environment arguments")
    p.add_argument("-S", "--sampling-args", default=None,
                   help='JSON object of sampling arguments, e.g. \'{"top_p": 0.9}\'; its keys '
                        "override -t and -T (verifiers 0.1.x's precedence)")
    p.add_argument("-s", "--save-results", "--save-dataset", action="store_true",
                   dest="save_results", help="save results (JSONL) and metadata under --output-dir")
    p.add_argument("-o", "--output-dir", default=os.path.join("outputs", "evals"),
                   help="where -s saves runs (default outputs/evals)")
    p.add_argument("-H", "--save-to-hf-hub", action="store_true",
                   help="push the results (env.make_dataset) to the Hugging Face Hub")
    p.add_argument("-D", "--hf-hub-dataset-name", default="",
                   help="Hub dataset for -H (default <env>_<model>_n<N>_r<R>); a local path "
                        "(absolute, or starting with . or ~) saves it there with save_to_disk")
    p.add_argument("-R", "--resume", metavar="RUN_DIR", default=None,
                   help="continue a saved run: finished rollouts are skipped, failed ones retried")
    p.add_argument("--seed", type=int, default=None, help="shuffle the eval set with this seed")
    p.add_argument("--timeout", type=float, default=None,
                   help=f"seconds per model request (default {DEFAULTS['timeout']:g})")
    p.add_argument("--max-retries", type=int, default=None,
                   help=f"retries of transient failures (default {DEFAULTS['max_retries']})")
    p.add_argument("--max-failed-share", type=float, default=0.0,
                   help="share of rollouts allowed to fail before the exit code is 1 (default 0)")
    p.add_argument("--num-samples-shown", type=int, default=2, help="example rollouts printed")
    local = p.add_argument_group("local models (no API key; needs the vf-trainer package)")
    local.add_argument("--model-path", default=None,
                       help="serve this local model for the evaluation: a folder written by "
                            "save_pretrained (vf-train's <run>/final), a LoRA adapter folder "
                            "(adapter_config.json; its base model is loaded and the adapter "
                            "merged), or a hub name")
    local.add_argument("--local", action="store_true",
                       help="serve the default small model (SmolLM2-135M-Instruct)")
    local.add_argument("--backend", choices=["vllm", "engine"], default=None,
                       help="vllm: a vf-vllm server; engine: the in-process transformers engine "
                            "(default: vllm when installed)")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging and tracebacks")
    return p


def _api_key(var: str, base_url: str) -> str:
    key = os.environ.get(var)
    if key:
        return key
    if var == "EMPTY":  # verifiers 0.1.x registries name "EMPTY" for servers that need no key
        return "EMPTY"
    if base_url.startswith(("http://127.", "http://localhost", "http://0.0.0.0", "http://[::1]")):
        return "EMPTY"  # local servers (vLLM, vf-vllm) accept any key
    raise UsageError(
        f"the environment variable {var} is not set. Export your API key "
        f"(`export {var}=...`), name another variable with -k, or point -b at a local server."
    )


def _settings(args: argparse.Namespace) -> dict[str, Any]:
    from verifiers.cli import eval_settings as es

    es.check_ranges(args)
    if args.resume:
        from verifiers.cli.eval_store import read_metadata

        settings = es.resume_settings(args, read_metadata(args.resume)["settings"])
    else:
        settings = es.new_settings(args, es.load_endpoints(args.endpoints_path))
    for note in es.sampling_args(args)[1]:
        print(f"vf-eval: {note}", file=sys.stderr)
    if args.model_path or args.local:
        settings["model_path"] = args.model_path or "default"
        settings["backend"] = args.backend
        if args.model is None and not args.resume:  # the default name means nothing locally
            settings["model"] = "local"
    return settings


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if not args.resume and not args.env:
        build_parser().print_usage(sys.stderr)
        print("vf-eval: give an environment id (see `vf-eval --help`), or --resume RUN_DIR.",
              file=sys.stderr)
        return 2
    try:
        settings = _settings(args)
        if settings.get("model_path"):
            return _run_local(args, settings)
        from verifiers.cli.eval_run import run_eval

        api_key = _api_key(settings["api_key_var"], settings["base_url"])
        client = _multi_server_client(settings["base_url"], api_key)
        return run_eval(settings, api_key=api_key, options=args, client=client,
                        close_client=client is not None)
    except UsageError as exc:
        print(f"vf-eval: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("vf-eval: interrupted; saved rollouts are kept (--resume RUN_DIR continues).",
              file=sys.stderr)
        return 130
    except Exception as exc:
        if args.verbose:
            raise
        print(f"vf-eval: the run failed: {type(exc).__name__}: {exc} (-v shows the traceback)",
              file=sys.stderr)
        return 1


def _multi_server_client(base_url: str, api_key: str) -> Any:
    """A client over several servers when -b lists URLs separated by commas, else None."""
    if "," not in base_url:
        return None
    from verifiers.multi_client import MultiServerClient

    try:
        return MultiServerClient(base_url, api_key)
    except ValueError as exc:
        raise UsageError(f"-b/--api-base-url: {exc}") from None


def _run_local(args: argparse.Namespace, settings: dict[str, Any]) -> int:
    from verifiers.cli.eval_run import run_eval

    try:
        from verifiers_trainer.inference.local import serve_locally
    except ImportError:
        raise UsageError(
            "--model-path/--local serve the model with the trainer package, which is "
            "not installed: pip install -e trainer, or vf-core[trainer] (with torch; see the README)."
        ) from None
    with serve_locally(settings["model_path"], settings.get("backend"), settings["model"]) as endpoint:
        settings["base_url"] = endpoint.base_url or f"in-process:{endpoint.backend}"
        return run_eval(settings, api_key="EMPTY", options=args, client=endpoint.client,
                        close_client=True)


if __name__ == "__main__":
    raise SystemExit(main())
