"""vf-eval: evaluate a model on an installed environment through an OpenAI-compatible API.

    vf-eval vf-math-python -m gpt-4.1-mini -n 20 -r 3 -s
    vf-eval wordle -b http://127.0.0.1:8000/v1 -m my-model -a '{"use_think": true}'
    vf-eval --resume outputs/evals/vf-wordle--my-model/20261123-101500-ab12

Heavy modules are imported only after the arguments are parsed, so ``--help`` is instant.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

DEFAULT_BASE_URL = "https://api.openai.com/v1"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="vf-eval",
        description="Evaluate a model on an environment through any OpenAI-compatible endpoint.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("env", nargs="?", help="environment id, e.g. vf-math-python (or math-python)")
    p.add_argument("-m", "--model", default="gpt-4.1-mini", help="model name the server knows")
    p.add_argument("-b", "--api-base-url", default=None,
                   help=f"server URL (default: $OPENAI_BASE_URL or {DEFAULT_BASE_URL}); several "
                        "servers of one model: URLs separated by commas (rollouts are spread "
                        "over them and moved off a server that fails)")
    p.add_argument("-k", "--api-key-var", default="OPENAI_API_KEY",
                   help="name of the environment variable holding the API key")
    p.add_argument("-n", "--num-examples", type=int, default=5, help="examples to evaluate (-1: all)")
    p.add_argument("-r", "--rollouts-per-example", type=int, default=3, help="samples per example")
    p.add_argument("-c", "--max-concurrent", type=int, default=32, help="rollouts in flight")
    p.add_argument("-t", "--max-tokens", type=int, default=None, help="max tokens per model turn")
    p.add_argument("-T", "--temperature", type=float, default=None, help="sampling temperature")
    p.add_argument("-a", "--env-args", default="{}", help="JSON object of load_environment arguments")
    p.add_argument("-S", "--sampling-args", default="{}",
                   help='JSON object of extra sampling arguments, e.g. \'{"top_p": 0.9}\'')
    p.add_argument("-s", "--save-results", action="store_true",
                   help="save results (JSONL) and metadata under --output-dir")
    p.add_argument("-o", "--output-dir", default=os.path.join("outputs", "evals"),
                   help="where -s saves runs")
    p.add_argument("--resume", metavar="RUN_DIR", default=None,
                   help="continue a saved run: finished rollouts are skipped")
    p.add_argument("--seed", type=int, default=None, help="shuffle the eval set with this seed")
    p.add_argument("--timeout", type=float, default=600.0, help="seconds per model request")
    p.add_argument("--max-retries", type=int, default=3, help="retries of transient failures")
    p.add_argument("--num-samples-shown", type=int, default=2, help="example rollouts printed")
    local = p.add_argument_group("local models (no API key; needs the vf-trainer package)")
    local.add_argument("--model-path", default=None,
                       help="serve this local model (a path or hub name) for the evaluation")
    local.add_argument("--local", action="store_true",
                       help="serve the default small model (SmolLM2-135M-Instruct)")
    local.add_argument("--backend", choices=["vllm", "engine"], default=None,
                       help="vllm: a vf-vllm server; engine: the in-process transformers engine "
                            "(default: vllm when installed)")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    return p


def _json_arg(text: str, flag: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SystemExit(f"vf-eval: {flag} must be a JSON object: {exc} in {text!r}") from None
    if not isinstance(value, dict):
        raise SystemExit(f"vf-eval: {flag} must be a JSON object, got {text!r}")
    return value


def _api_key(var: str, base_url: str) -> str:
    key = os.environ.get(var)
    if key:
        return key
    if base_url.startswith(("http://127.", "http://localhost", "http://0.0.0.0", "http://[::1]")):
        return "EMPTY"  # local servers (vLLM, vf-vllm) accept any key
    raise SystemExit(
        f"vf-eval: the environment variable {var} is not set. Export your API key "
        f"(`export {var}=...`), name another variable with -k, or point -b at a local server."
    )


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from verifiers.cli.eval_run import run_eval

    settings: dict[str, Any] = {}
    if args.resume:
        from verifiers.cli.eval_run import load_run_settings

        settings = load_run_settings(args.resume)
    elif not args.env:
        build_parser().print_usage(sys.stderr)
        print("vf-eval: give an environment id (see `vf-eval --help`), or --resume RUN_DIR.",
              file=sys.stderr)
        return 2
    else:
        base_url = args.api_base_url or os.environ.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL
        sampling = _json_arg(args.sampling_args, "--sampling-args")
        if args.max_tokens is not None:
            sampling["max_tokens"] = args.max_tokens
        if args.temperature is not None:
            sampling["temperature"] = args.temperature
        settings = {
            "env_id": args.env,
            "env_args": _json_arg(args.env_args, "--env-args"),
            "model": args.model,
            "base_url": base_url,
            "api_key_var": args.api_key_var,
            "num_examples": args.num_examples,
            "rollouts_per_example": args.rollouts_per_example,
            "max_concurrent": args.max_concurrent,
            "sampling_args": sampling,
            "seed": args.seed,
            "timeout": args.timeout,
            "max_retries": args.max_retries,
        }
    if args.model_path or args.local:
        settings["model_path"] = args.model_path or "default"
        settings["backend"] = args.backend
        if args.model == "gpt-4.1-mini":  # the default name means nothing for a local model
            settings["model"] = "local"
    if settings.get("model_path"):
        return _run_local(args, settings)
    api_key = _api_key(settings["api_key_var"], settings["base_url"])
    client = None
    if "," in settings["base_url"]:
        from verifiers.multi_client import MultiServerClient

        try:
            client = MultiServerClient(settings["base_url"], api_key)
        except ValueError as exc:
            raise SystemExit(f"vf-eval: -b: {exc}") from None
    return run_eval(
        settings,
        api_key=api_key,
        save=args.save_results or bool(args.resume),
        output_dir=args.output_dir,
        resume_dir=args.resume,
        num_samples_shown=args.num_samples_shown,
        verbose=args.verbose,
        client=client,
        close_client=client is not None,
    )


def _run_local(args: argparse.Namespace, settings: dict[str, Any]) -> int:
    from verifiers.cli.eval_run import run_eval

    try:
        from verifiers_trainer.inference.local import serve_locally
    except ImportError:
        raise SystemExit(
            "vf-eval: --model-path/--local serve the model with the trainer package, which is "
            "not installed: pip install -e trainer (with torch; see the README)."
        ) from None
    with serve_locally(settings["model_path"], settings.get("backend"), settings["model"]) as endpoint:
        settings["base_url"] = endpoint.base_url or f"in-process:{endpoint.backend}"
        return run_eval(
            settings, api_key="EMPTY", save=args.save_results or bool(args.resume),
            output_dir=args.output_dir, resume_dir=args.resume,
            num_samples_shown=args.num_samples_shown, verbose=args.verbose,
            client=endpoint.client, close_client=True,
        )


if __name__ == "__main__":
    raise SystemExit(main())
