"""Run every benchmark and print one table.

    python benchmarks/run_all.py            (or: nox -s bench)

Each benchmark compares against its peer in the same run and reports ratios, because these
machines are shared and noisy: absolute times from different runs do not compare.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent
BENCHES = [
    ("import", [sys.executable, str(HERE / "bench_import.py")]),
    ("rollouts", [sys.executable, str(HERE / "bench_rollouts.py"), "--json"]),
    ("inference", [sys.executable, str(HERE / "bench_inference.py"), "--json"]),
    ("trainer", [sys.executable, str(HERE / "bench_trainer.py"), "--json"]),
]


def available(name: str) -> bool:
    """Benchmarks of the trainer package run where it (and vLLM) is installed."""
    import importlib.util

    needs = {"inference": ("verifiers_trainer", "vllm", "torch"), "trainer": ("verifiers_trainer", "trl")}
    return all(importlib.util.find_spec(m) for m in needs.get(name, ()))


def main() -> int:
    rows = []
    for name, command in BENCHES:
        if not available(name):
            print(f"skipping {name}: the trainer package with vLLM is not installed", file=sys.stderr)
            continue
        print(f"running {name} ...", file=sys.stderr, flush=True)
        out = subprocess.run(command, capture_output=True, text=True)
        if out.returncode != 0:
            print(out.stderr, file=sys.stderr)
            rows.append({"bench": name, "error": f"exit {out.returncode}"})
            continue
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    print()
    print(f"{'benchmark':<10} {'result':<60} {'ratio to peer / goal'}")
    print("-" * 100)
    for row in rows:
        if "error" in row:
            print(f"{row['bench']:<10} FAILED ({row['error']})")
        elif row["bench"] == "import":
            result = f"import verifiers: {row['import_verifiers_s']:.3f} s (goal <= {row['goal_s']} s)"
            print(f"{'import':<10} {result:<60} "
                  f"{row['ratio_to_openai']}x `import openai`")
        elif row["bench"] == "rollouts":
            result = (f"{row['rollouts']} rollouts @ {row['concurrency']}, {row['latency_ms']:.0f} ms: "
                      f"{row['verifiers_s']:.2f} s ({row['rollouts_per_s']:.0f}/s)")
            print(f"{'rollouts':<10} {result:<60} {row['ratio_to_ideal']}x ideal, "
                  f"{row['ratio_to_openai_client']}x bare openai client, "
                  f"{row['engine_overhead']}x same client")
        elif row["bench"] == "inference":
            result = (f"{row['model']}: vf-vllm {row['vf_vllm_tok_s']:.0f} tok/s, engine "
                      f"{row['engine_tok_s']:.0f} tok/s, weight update {row['update_s']:.2f} s")
            print(f"{'inference':<10} {result:<60} vf-vllm overhead {row['vf_vllm_overhead']:+.1%} "
                  f"vs vLLM; engine {row['engine_vs_vf_vllm']}x vf-vllm")
        elif row["bench"] == "trainer":
            result = (f"GRPO step, {row['hidden']}x{row['layers']} model, {row['generations']} x "
                      f"{row['completion_tokens']} tokens: {row['ours_s_per_step']:.2f} s, "
                      f"{row['ours_peak_rss_gb']:.2f} GB")
            print(f"{'trainer':<10} {result:<60} {row['step_time_ratio']}x TRL time, "
                  f"{row['memory_ratio']}x TRL memory; generation {row['ours_generation_share']:.0%}")
    out_dir = Path("outputs") / "bench"
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "latest.json").write_text(json.dumps(rows, indent=2))
    return 0 if all("error" not in r for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
