"""Inference: vf-vllm against plain vLLM, the in-process engine against vf-vllm and against
``model.generate`` batched, and the time to push new weights into vf-vllm.

    python benchmarks/bench_inference.py                 # SmolLM2-135M-Instruct (offline default)
    python benchmarks/bench_inference.py --model tiny    # a 0.3M-parameter test model

Same model, same requests (greedy, ``ignore_eos`` so every request generates exactly
``--tokens`` tokens), side by side in one run:
  vllm        vLLM's own OpenAI server
  vf-vllm     the same server started by vf-vllm (development endpoints, weight transfer)
  engine      the in-process transformers engine (verifiers_trainer.InProcessEngine)
  engine-plain  the same engine with ``cpu_decode_linears=False`` (every linear layer through
              ``F.linear``): what the blocked CPU decoding products gain
  generate    transformers' model.generate on all prompts as one left-padded batch (greedy,
              min_new_tokens = max_new_tokens): the engine's floor on the same model
  update      seconds for VLLMClient.update_weights(model) (vf_shm backend), median of 5
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import time

try:  # vLLM's launcher; --skip-vllm runs without it
    from verifiers_trainer.inference.vllm_launcher import VLLMServer, free_port
except ImportError:  # pragma: no cover - the trainer package is not installed
    VLLMServer = object  # type: ignore[assignment,misc]

PROMPTS = [f"Write a short story about a robot named Unit {i}." for i in range(16)]


async def generate(client, model: str, tokens: int, concurrency: int) -> tuple[float, int]:
    gate = asyncio.Semaphore(concurrency)

    async def one(prompt: str) -> int:
        async with gate:
            response = await client.chat.completions.create(
                model=model, messages=[{"role": "user", "content": prompt}], max_tokens=tokens,
                temperature=0.0, extra_body={"ignore_eos": True},
            )
            return response.usage.completion_tokens

    start = time.perf_counter()
    counts = await asyncio.gather(*(one(p) for p in PROMPTS))
    return time.perf_counter() - start, sum(counts)


def tokens_per_s(client, model: str, tokens: int, concurrency: int) -> float:
    async def both() -> tuple[float, int]:  # one event loop: the client's connections live in it
        await generate(client, model, 4, concurrency)  # warm-up
        return await generate(client, model, tokens, concurrency)

    elapsed, count = asyncio.run(both())
    return count / elapsed


def generate_tok_s(model, tokenizer, tokens: int, batch_size: int) -> float:
    """Generated tokens per second of ``model.generate`` over PROMPTS in left-padded batches
    of ``batch_size`` (greedy, exactly ``tokens`` new tokens each)."""
    import torch

    texts = [tokenizer.apply_chat_template([{"role": "user", "content": p}], tokenize=False,
                                           add_generation_prompt=True) for p in PROMPTS]
    side = tokenizer.padding_side
    tokenizer.padding_side = "left"
    batches = [tokenizer(texts[i:i + batch_size], return_tensors="pt", padding=True,
                         add_special_tokens=False) for i in range(0, len(texts), batch_size)]
    tokenizer.padding_side = side
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id

    def run(n: int) -> float:
        generated = 0
        start = time.perf_counter()
        with torch.inference_mode():
            for batch in batches:
                out = model.generate(**batch, max_new_tokens=n, min_new_tokens=n,
                                     do_sample=False, pad_token_id=pad)
                generated += (out.shape[1] - batch["input_ids"].shape[1]) * out.shape[0]
        return generated / (time.perf_counter() - start)

    run(4)  # warm-up
    return run(tokens)


class PlainVLLM(VLLMServer):
    """vLLM's own server entry, without vf-vllm's additions."""

    entry_module = "vllm.entrypoints.launchers.api_server.entry"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="default", help="'default' (SmolLM2), 'tiny', or a path")
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--concurrency", type=int, default=len(PROMPTS),
                        help="requests in flight; model.generate gets batches of this size")
    parser.add_argument("--rounds", type=int, default=2, help="interleaved engine/generate rounds")
    parser.add_argument("--skip-vllm", action="store_true",
                        help="only the engine against model.generate (no vLLM needed)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

    from verifiers_trainer.inference.engine import InProcessEngine
    from verifiers_trainer.models.loading import get_model_and_tokenizer
    from verifiers_trainer.models.smollm2 import default_model_path
    from verifiers_trainer.models.tiny import build_tiny_model

    path = str(default_model_path() if args.model == "default" else
               build_tiny_model() if args.model == "tiny" else args.model)
    vllm_args = ["--dtype", "bfloat16" if args.model == "default" else "float32",
                 "--max-model-len", "1024", "--served-model-name", "m"]
    row: dict = {"bench": "inference", "model": args.model, "requests": len(PROMPTS),
                 "tokens_per_request": args.tokens, "concurrency": args.concurrency}

    if not args.skip_vllm:
        vllm_rows(args, path, vllm_args, row)
    model, tokenizer = get_model_and_tokenizer(path)
    engine = InProcessEngine(model, tokenizer, model_name="m")
    plain = InProcessEngine(model, tokenizer, model_name="m", cpu_decode_linears=False)
    engine_runs, plain_runs, generate_runs = [], [], []
    for _ in range(args.rounds):  # interleaved: engine, plain, generate, engine, plain, ...
        engine_runs.append(tokens_per_s(engine, "m", args.tokens, args.concurrency))
        plain_runs.append(tokens_per_s(plain, "m", args.tokens, args.concurrency))
        generate_runs.append(generate_tok_s(model, tokenizer, args.tokens, args.concurrency))
    row["engine_tok_s"] = statistics.median(engine_runs)
    row["engine_plain_tok_s"] = statistics.median(plain_runs)
    row["generate_tok_s"] = statistics.median(generate_runs)
    row["engine_vs_generate"] = round(row["engine_tok_s"] / row["generate_tok_s"], 3)
    row["engine_vs_plain"] = round(row["engine_tok_s"] / row["engine_plain_tok_s"], 3)
    if "vf_vllm_tok_s" in row:
        row["vf_vllm_overhead"] = round(row["vllm_tok_s"] / row["vf_vllm_tok_s"] - 1, 4)
        row["engine_vs_vf_vllm"] = round(row["engine_tok_s"] / row["vf_vllm_tok_s"], 3)
    row["load_average"] = [round(x, 2) for x in os.getloadavg()]
    for key in ("vllm_tok_s", "vf_vllm_tok_s", "engine_tok_s", "engine_plain_tok_s",
                "generate_tok_s", "update_s",
                "params_m"):
        if key in row:
            row[key] = round(row[key], 3)
    if args.json:
        print(json.dumps(row))
    else:
        for key, value in row.items():
            print(f"{key:>22}: {value}")


def vllm_rows(args: argparse.Namespace, path: str, vllm_args: list[str], row: dict) -> None:
    import torch

    from verifiers.clients import make_async_client
    from verifiers_trainer.models.loading import get_model_and_tokenizer

    with PlainVLLM(path, args=vllm_args, port=free_port()) as plain:
        row["vllm_tok_s"] = tokens_per_s(make_async_client(plain.base_url, "x"), "m", args.tokens,
                                         args.concurrency)
    with VLLMServer(path, args=vllm_args) as server:
        row["vf_vllm_tok_s"] = tokens_per_s(server.client.openai(), "m", args.tokens, args.concurrency)
        model, _ = get_model_and_tokenizer(path)
        model = model.to(torch.bfloat16 if args.model == "default" else torch.float32)
        server.client.init_weight_transfer("vf_shm")
        times = [server.client.update_weights(model) for _ in range(5)]
        row["update_s"] = statistics.median(times)
        row["params_m"] = sum(p.numel() for p in model.parameters()) / 1e6


if __name__ == "__main__":
    main()
