"""The main job's config over several training seeds, one after the other, and a table.

Each seed is a full ``vf-train`` run (greedy evaluation on the held-out problems, GRPO,
evaluation again) in its own run folder; the table has, per seed, the accuracy before and
after, the gain in points, the wall-clock minutes of the ``vf-train`` process, the reward of
the last training step and its mean over the last five steps, with the machine's load
average at the start and end of the run (these machines are shared: a loaded machine is
slower). The held-out problems are the same for every seed; the seed changes sampling,
LoRA initialisation and data order.

    python benchmarks/demo_seeds.py                                   # seeds 0 1 2
    python benchmarks/demo_seeds.py --seeds 3 4 --output-dir outputs/experiments
    python benchmarks/demo_seeds.py -- --trainer.learning_rate 2e-4   # overrides for vf-train

Exit status 1 when a run fails or a gain is below ``--min-gain`` points.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def accuracy(path: Path) -> float:
    rows = read_jsonl(path)
    if not rows:
        raise RuntimeError(f"{path} has no evaluated problems.")
    return 100.0 * sum(float(row["score"]) for row in rows) / len(rows)


def run_seed(config: Path, seed: int, output_dir: Path, name: str, extra: list[str]) -> dict:
    run_name = f"{name}-seed{seed}"
    command = [sys.executable, "-m", "verifiers_trainer.cli.train", str(config),
               "--run.output_dir", str(output_dir), "--run.name", run_name,
               "--run.seed", str(seed), "--run.overwrite", "true", *extra]
    load_start = os.getloadavg()[0]
    start = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, check=False)
    minutes = (time.perf_counter() - start) / 60
    folder = output_dir / run_name
    row = {"seed": seed, "minutes": minutes, "load": (load_start, os.getloadavg()[0]),
           "folder": str(folder), "returncode": done.returncode}
    if done.returncode != 0:
        return row
    steps = read_jsonl(folder / "metrics.jsonl")
    rewards = [s["reward"] for s in steps if "reward" in s]
    row.update(before=accuracy(folder / "eval_before.jsonl"),
               after=accuracy(folder / "eval_after.jsonl"),
               final_reward=rewards[-1] if rewards else float("nan"),
               last5_reward=statistics.fmean(rewards[-5:]) if rewards else float("nan"),
               steps=len(rewards))
    row["gain"] = row["after"] - row["before"]
    return row


def table(rows: list[dict]) -> str:
    lines = ["| seed | before | after | gain (points) | minutes | steps | final reward "
             "| reward, last 5 steps | load avg (start, end) |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        load = f"{r['load'][0]:.1f}, {r['load'][1]:.1f}"
        if r["returncode"] != 0:
            lines.append(f"| {r['seed']} | failed (exit {r['returncode']}) | | | "
                         f"{r['minutes']:.1f} | | | | {load} |")
            continue
        lines.append(f"| {r['seed']} | {r['before']:.1f}% | {r['after']:.1f}% | "
                     f"{r['gain']:+.1f} | {r['minutes']:.1f} | {r['steps']} | "
                     f"{r['final_reward']:.3f} | {r['last5_reward']:.3f} | {load} |")
    return "\n".join(lines)


def main() -> int:
    argv = sys.argv[1:]
    extra: list[str] = []
    if "--" in argv:
        cut = argv.index("--")
        argv, extra = argv[:cut], argv[cut + 1:]
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", type=Path, default=ROOT / "configs" / "smollm2-arithmetic.toml")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--output-dir", type=Path, default=ROOT / "outputs" / "demo-seeds")
    p.add_argument("--min-gain", type=float, default=40.0,
                   help="gain in points each seed must reach (default 40)")
    args = p.parse_args(argv)
    if not args.config.is_file():
        p.error(f"--config {args.config} is not a file.")
    rows = []
    for seed in args.seeds:
        rows.append(run_seed(args.config.resolve(), seed, args.output_dir.resolve(),
                             args.config.stem, extra))
        print(table(rows[-1:]), flush=True)
    extras = f" with {' '.join(extra)}" if extra else ""
    print(f"\n{args.config} over seeds {' '.join(map(str, args.seeds))}{extras}:\n")
    print(table(rows))
    ok = [r for r in rows if r["returncode"] == 0 and r["gain"] >= args.min_gain]
    print(f"\n{len(ok)} of {len(rows)} seeds gained at least {args.min_gain:g} points; "
          f"longest run {max(r['minutes'] for r in rows):.1f} min.")
    return 0 if len(ok) == len(rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
