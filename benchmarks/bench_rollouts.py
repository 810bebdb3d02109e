"""Rollout throughput: N single-turn rollouts at concurrency C against the scripted server
(its own process) answering after a fixed latency.

Contestants, run in interleaved rounds (A B C D E, A B C D E, ...) so that a noisy machine
weighs on all of them alike; each is reported as the median of its rounds:
  ideal           N / C x latency: the server's latency is the only cost
  floor           raw aiohttp posting the same JSON and decoding the answer: what Python
                  can do here, with no client library
  ours_transport  the same with verifiers.http1 (the small HTTP/1.1 client the lean path
                  uses for http:// endpoints) in place of aiohttp
  openai          the openai AsyncOpenAI client on its default transport
  openai_aiohttp  the same client on its aiohttp transport
  ours_built      env.a_generate (rows -> rollouts -> scoring -> results) with the client
                  the project builds (make_async_client, as vf-eval does)
  ours_user       env.a_generate with a plain AsyncOpenAI(base_url=..., api_key=...) a
                  user passes

Wall time is what a user waits; the client's CPU seconds (this process only; the server
has its own) are far less sensitive to other load on the machine, so both are printed.

    python benchmarks/bench_rollouts.py --rollouts 2000 --concurrency 256 --latency-ms 20
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import time
from collections.abc import Awaitable, Callable

import openai

import verifiers as vf
from verifiers.clients import make_async_client
from verifiers.testing import ScriptedServer

Contestant = Callable[[str, int, int], Awaitable[int]]  # (base_url, n, concurrency) -> failed


async def floor(base_url: str, n: int, concurrency: int) -> int:
    import aiohttp

    gate = asyncio.Semaphore(concurrency)
    headers = {"Content-Type": "application/json", "Authorization": "Bearer x"}
    failed = 0
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1000)) as session:
        async def one(i: int) -> None:
            nonlocal failed
            body = json.dumps({"model": "m", "messages": [{"role": "user", "content": f"{i}+{i}"}]})
            async with gate, session.post(f"{base_url}/chat/completions", data=body,
                                          headers=headers) as response:
                answer = json.loads(await response.read())
                failed += response.status != 200 or not answer.get("choices")

        await asyncio.gather(*(one(i) for i in range(n)))
    return failed


async def ours_transport(base_url: str, n: int, concurrency: int) -> int:
    """The project's HTTP/1.1 client alone (what the lean path sends over), same JSON."""
    from verifiers import http1

    gate = asyncio.Semaphore(concurrency)
    headers = {"Authorization": "Bearer x"}
    failed = 0

    async def one(i: int) -> None:
        nonlocal failed
        body = json.dumps({"model": "m", "messages": [{"role": "user", "content": f"{i}+{i}"}]})
        async with gate:
            status, _, raw = await http1.post(f"{base_url}/chat/completions", headers,
                                              body.encode())
            answer = json.loads(raw)
            failed += status != 200 or not answer.get("choices")

    await asyncio.gather(*(one(i) for i in range(n)))
    return failed


def _openai(fast: bool) -> Contestant:
    async def run(base_url: str, n: int, concurrency: int) -> int:
        # one total limit per request, as ours has (openai's own default gives connecting
        # only 5 s, which a loaded machine opening 256 connections at once can exceed)
        options = {"base_url": base_url, "api_key": "x", "max_retries": 0, "timeout": 600.0}
        client = (openai.AsyncOpenAI(**options, http_client=openai.DefaultAioHttpClient())
                  if fast else openai.AsyncOpenAI(**options))
        gate = asyncio.Semaphore(concurrency)
        failed = 0

        async def one(i: int) -> None:
            nonlocal failed
            async with gate:
                try:
                    await client.chat.completions.create(
                        model="m", messages=[{"role": "user", "content": f"{i}+{i}"}])
                except openai.OpenAIError:
                    failed += 1

        await asyncio.gather(*(one(i) for i in range(n)))
        await client.close()
        return failed

    return run


def correct(parser: vf.Parser, completion: list, answer: str) -> float:
    return float(parser.parse_answer(completion) == answer)


def _ours(build: Callable[[str], openai.AsyncOpenAI]) -> Contestant:
    parser = vf.XMLParser(["answer"])
    envs: dict[int, vf.SingleTurnEnv] = {}

    async def run(base_url: str, n: int, concurrency: int) -> int:
        if n not in envs:
            envs[n] = vf.SingleTurnEnv(
                dataset=[{"question": f"{i}+{i}", "answer": str(2 * i)} for i in range(n)],
                parser=parser, rubric=vf.Rubric(funcs=[correct], parser=parser),
            )
        env = envs[n]
        client = build(base_url)
        results = await env.a_generate(env.get_dataset(), client, "m",
                                       max_concurrent=concurrency, progress=False)
        await client.close()
        return results.num_failed

    return run


CONTESTANTS: dict[str, Contestant] = {
    "floor": floor,
    "ours_transport": ours_transport,
    "openai": _openai(fast=False),
    "openai_aiohttp": _openai(fast=True),
    "ours_built": _ours(lambda url: make_async_client(url, "x")),
    "ours_user": _ours(lambda url: openai.AsyncOpenAI(base_url=url, api_key="x")),
}


def measure(contestant: Contestant, base_url: str, n: int, concurrency: int) -> dict[str, float]:
    """One timed run on a fresh event loop: wall seconds, client CPU seconds, failures."""
    wall, cpu = time.perf_counter(), time.process_time()
    failed = asyncio.run(contestant(base_url, n, concurrency))
    return {"wall": time.perf_counter() - wall, "cpu": time.process_time() - cpu,
            "failed": failed}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rollouts", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=256)
    parser.add_argument("--latency-ms", type=float, default=20.0)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (median)")
    parser.add_argument("--only", nargs="*", choices=sorted(CONTESTANTS), default=None)
    parser.add_argument("--json", action="store_true", help="print one JSON line")
    args = parser.parse_args()
    if args.rounds < 1 or args.rollouts < 1 or args.concurrency < 1:
        parser.error("--rounds, --rollouts and --concurrency must be >= 1")
    names = args.only or list(CONTESTANTS)
    load_before = os.getloadavg()
    server = ScriptedServer.spawn(latency_ms=args.latency_ms, default_reply="<answer>0</answer>",
                                  record_requests=False)
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in names}
    try:
        for name in names:  # warm up every path once at full size (imports, connections,
            # the environment's dataset), so that no round pays for set-up
            measure(CONTESTANTS[name], server.base_url, args.rollouts, args.concurrency)
        for _ in range(args.rounds):
            for name in names:
                runs[name].append(measure(CONTESTANTS[name], server.base_url, args.rollouts,
                                          args.concurrency))
    finally:
        server.stop()
    load_after = os.getloadavg()
    ideal = args.rollouts / args.concurrency * args.latency_ms / 1000
    row: dict[str, object] = {
        "bench": "rollouts", "rollouts": args.rollouts, "concurrency": args.concurrency,
        "latency_ms": args.latency_ms, "rounds": args.rounds, "ideal_s": round(ideal, 3),
        "load_before": [round(x, 2) for x in load_before],
        "load_after": [round(x, 2) for x in load_after], "cpus": os.cpu_count(),
    }
    for name, values in runs.items():
        row[f"{name}_s"] = round(statistics.median(v["wall"] for v in values), 3)
        row[f"{name}_cpu_s"] = round(statistics.median(v["cpu"] for v in values), 3)
        row[f"{name}_all_s"] = [round(v["wall"], 3) for v in values]
        row[f"{name}_failed"] = int(sum(v["failed"] for v in values))
    for name in ("ours_transport", "ours_built", "ours_user", "openai", "openai_aiohttp"):
        if name in runs:
            row[f"{name}_vs_ideal"] = round(row[f"{name}_s"] / ideal, 2)  # type: ignore[operator]
            if "floor" in runs:
                row[f"{name}_vs_floor"] = round(
                    row[f"{name}_s"] / row["floor_s"], 2)  # type: ignore[operator]
                row[f"{name}_cpu_vs_floor"] = round(
                    row[f"{name}_cpu_s"] / row["floor_cpu_s"], 2)  # type: ignore[operator]
    if "ours_user" in runs and "ours_built" in runs:
        row["user_vs_built"] = round(row["ours_user_s"] / row["ours_built_s"], 2)  # type: ignore[operator]
    if "floor" in runs:
        row["floor_vs_ideal"] = round(row["floor_s"] / ideal, 2)  # type: ignore[operator]
    if args.json:
        print(json.dumps(row))
        return
    print(f"{args.rollouts} rollouts, concurrency {args.concurrency}, server latency "
          f"{args.latency_ms:g} ms: ideal {ideal:.3f} s; {args.rounds} interleaved rounds; "
          f"load average {load_before[0]:.2f} -> {load_after[0]:.2f} on {os.cpu_count()} CPUs")
    print(f"{'contestant':<16} {'wall (median)':>14} {'x ideal':>8} {'x floor':>8} "
          f"{'client CPU':>11} {'CPU x floor':>12}  rounds")
    for name in names:
        print(f"{name:<16} {row[f'{name}_s']:>12.3f} s {row[f'{name}_s'] / ideal:>8.2f} "  # type: ignore[operator]
              f"{row.get(f'{name}_vs_floor', 1.0 if name == 'floor' else '-'):>8} "
              f"{row[f'{name}_cpu_s']:>9.3f} s "
              f"{row.get(f'{name}_cpu_vs_floor', 1.0 if name == 'floor' else '-'):>12}  "
              f"{row[f'{name}_all_s']}")


if __name__ == "__main__":
    main()
