"""Rollout-engine throughput: N single-turn rollouts at concurrency C against the scripted
server (its own process) answering after a fixed latency.

Compares, side by side in one run:
  ideal      N / C x latency (the server's latency is the only cost)
  openai     the bare openai AsyncOpenAI client (default transport) sending the same
             requests under the same semaphore: what any Python client pays
  openai+aiohttp  the same on the aiohttp transport, which verifiers uses: the difference
             to verifiers is the engine's own overhead
  verifiers  env.a_generate: datasets rows -> rollouts -> scoring -> results

    python benchmarks/bench_rollouts.py --rollouts 2000 --concurrency 256 --latency-ms 20
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time

import openai

import verifiers as vf
from verifiers.clients import make_async_client
from verifiers.testing import ScriptedServer


async def bare_openai(base_url: str, n: int, concurrency: int, fast: bool = False) -> float:
    client = (make_async_client(base_url, "x") if fast
              else openai.AsyncOpenAI(base_url=base_url, api_key="x", max_retries=0))
    gate = asyncio.Semaphore(concurrency)

    async def one(i: int) -> None:
        async with gate:
            await client.chat.completions.create(
                model="m", messages=[{"role": "user", "content": f"{i}+{i}"}])

    start = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(n)))
    elapsed = time.perf_counter() - start
    await client.close()
    return elapsed


def correct(parser: vf.Parser, completion: list, answer: str) -> float:
    return float(parser.parse_answer(completion) == answer)


async def ours(base_url: str, n: int, concurrency: int) -> tuple[float, int]:
    parser = vf.XMLParser(["answer"])
    env = vf.SingleTurnEnv(
        dataset=[{"question": f"{i}+{i}", "answer": str(2 * i)} for i in range(n)],
        parser=parser, rubric=vf.Rubric(funcs=[correct], parser=parser),
    )
    client = make_async_client(base_url, "x")
    start = time.perf_counter()
    results = await env.a_generate(env.get_dataset(), client, "m", max_concurrent=concurrency,
                                   progress=False)
    elapsed = time.perf_counter() - start
    await client.close()
    return elapsed, results.num_failed


def handler_rules() -> list:
    return [(r"^(\d+)\+\1$", "<answer>ok</answer>")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rollouts", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=256)
    parser.add_argument("--latency-ms", type=float, default=20.0)
    parser.add_argument("--json", action="store_true", help="print one JSON line")
    args = parser.parse_args()
    server = ScriptedServer.spawn(latency_ms=args.latency_ms, default_reply="<answer>0</answer>")
    try:
        async def run() -> dict:
            await bare_openai(server.base_url, 200, args.concurrency)  # warm up both paths
            await ours(server.base_url, 200, args.concurrency)
            t_openai = await bare_openai(server.base_url, args.rollouts, args.concurrency)
            t_fast = await bare_openai(server.base_url, args.rollouts, args.concurrency, fast=True)
            t_ours, failed = await ours(server.base_url, args.rollouts, args.concurrency)
            return {"openai_s": t_openai, "fast_s": t_fast, "verifiers_s": t_ours, "failed": failed}

        times = asyncio.run(run())
    finally:
        server.stop()
    ideal = args.rollouts / args.concurrency * args.latency_ms / 1000
    row = {
        "bench": "rollouts",
        "rollouts": args.rollouts, "concurrency": args.concurrency, "latency_ms": args.latency_ms,
        "ideal_s": round(ideal, 3),
        "openai_client_s": round(times["openai_s"], 3),
        "openai_aiohttp_s": round(times["fast_s"], 3),
        "verifiers_s": round(times["verifiers_s"], 3),
        "ratio_to_ideal": round(times["verifiers_s"] / ideal, 2),
        "ratio_to_openai_client": round(times["verifiers_s"] / times["openai_s"], 2),
        "engine_overhead": round(times["verifiers_s"] / times["fast_s"], 2),
        "rollouts_per_s": round(args.rollouts / times["verifiers_s"], 1),
        "failed": times["failed"],
    }
    if args.json:
        print(json.dumps(row))
    else:
        for key, value in row.items():
            print(f"{key:>24}: {value}")


if __name__ == "__main__":
    main()
