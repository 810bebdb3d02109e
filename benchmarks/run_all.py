"""Run every benchmark and print one table: each measure next to its peer and its limit.

    python benchmarks/run_all.py            (or: nox -s bench)
    python benchmarks/run_all.py rollouts trainer      (only these)

Each benchmark measures its contestants side by side in one run (interleaved rounds,
medians) and is reported as ratios, because these machines are shared and noisy: absolute
times from different runs do not compare. The load average is printed with each.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent
BENCHES = {
    "import": [str(HERE / "bench_import.py")],
    "rollouts": [str(HERE / "bench_rollouts.py"), "--json"],
    "inference": [str(HERE / "bench_inference.py"), "--model", "tiny", "--json"],
    "trainer": [str(HERE / "bench_trainer.py"), "--json"],
    "sandbox": [str(HERE / "bench_sandbox.py"), "--json"],
    "scoring": [str(HERE / "bench_scoring.py"), "--json"],
}
NEEDS = {"inference": ("verifiers_trainer", "torch"), "trainer": ("verifiers_trainer", "trl"),
         "sandbox": ("vf_math_python",)}


def missing(name: str) -> list[str]:
    return [m for m in NEEDS.get(name, ()) if importlib.util.find_spec(m) is None]


def line(measure: str, value: str, peer: str, ratio: float | None, goal: str = "") -> str:
    shown = "-" if ratio is None else f"{ratio:.2f}x" if ratio >= 0.01 else f"{ratio:.0e}x"
    return f"{measure:<34} {value:>13}   {peer:<34} {shown:>7}   {goal}"


def verdict(ratio: float, limit: float, at_most: bool = True) -> str:
    ok = ratio <= limit if at_most else ratio >= limit
    return f"goal {'<=' if at_most else '>='} {limit:g}x: {'met' if ok else 'not met'}"


def rows_for(row: dict) -> list[str]:
    bench = row["bench"]
    if bench == "import":
        return [line("import verifiers", f"{row['import_verifiers_s']:.3f} s", "import openai",
                     row["ratio_to_openai"], f"goal <= {row['goal_s']} s: "
                     f"{'met' if row['import_verifiers_s'] <= row['goal_s'] else 'not met'}")]
    if bench == "rollouts":
        ideal = row["ideal_s"]
        head = (f"  {row['rollouts']} rollouts @ {row['concurrency']}, {row['latency_ms']:g} ms "
                f"server: ideal {ideal} s; {row['rounds']} rounds; load "
                f"{row['load_before'][0]} -> {row['load_after'][0]} on {row['cpus']} CPUs")
        out = [head]
        for name, label in (("ours_built", "rollouts, client we build"),
                            ("ours_user", "rollouts, user's AsyncOpenAI")):
            if f"{name}_s" in row:
                out.append(line(label, f"{row[f'{name}_s']:.3f} s", "ideal (latency only)",
                                row[f"{name}_vs_ideal"], verdict(row[f"{name}_vs_ideal"], 2.0)))
                if "floor_s" in row:
                    out.append(line("", "", "raw aiohttp floor (wall)", row[f"{name}_vs_floor"]))
                    out.append(line("", "", "raw aiohttp floor (client CPU)",
                                    row[f"{name}_cpu_vs_floor"]))
        if "user_vs_built" in row:
            out.append(line("user's AsyncOpenAI", "", "client we build (wall)",
                            row["user_vs_built"]))
        for name, label in (("openai", "openai client, default transport"),
                            ("openai_aiohttp", "openai client, aiohttp transport"),
                            ("floor", "raw aiohttp floor")):
            if f"{name}_s" in row:
                out.append(line(label, f"{row[f'{name}_s']:.3f} s", "ideal (latency only)",
                                round(row[f"{name}_s"] / ideal, 2)))
        return out
    if bench == "inference":
        out = [line("in-process engine", f"{row['engine_tok_s']:.0f} tok/s",
                    "model.generate, batched", row["engine_vs_generate"],
                    verdict(row["engine_vs_generate"], 1.0, at_most=False))]
        if "engine_vs_plain" in row:
            out.append(line("", "", "same engine, F.linear only", row["engine_vs_plain"]))
        if "engine_vs_vf_vllm" in row:
            out.append(line("", "", "vf-vllm", row["engine_vs_vf_vllm"]))
            out.append(line("vf-vllm", f"{row['vf_vllm_tok_s']:.0f} tok/s", "plain vLLM",
                            round(row["vf_vllm_tok_s"] / row["vllm_tok_s"], 2),
                            f"weight update {row['update_s']:.2f} s"))
        out.append(f"  ({row['model']} model, load {row['load_average'][0]})")
        return out
    if bench == "trainer":
        same = {k: (v, row["trl_settings"].get(k)) for k, v in row["ours_settings"].items()
                if k != "trainable_params" and str(v) != str(row["trl_settings"].get(k))}
        return [
            f"  {row['model']}{' + LoRA' if row['lora'] else ''}, {row['precision']}, gradient "
            f"checkpointing {'on' if row['gradient_checkpointing'] else 'off'}, "
            f"{row['prompts_per_step']} x {row['generations']} completions of "
            f"{row['completion_tokens']} tokens (mean lengths: ours {row['ours_mean_length']}, "
            f"TRL {row['trl_mean_length']}); {row['rounds']} rounds; load "
            f"{row['load_before'][0]} -> {row['load_after'][0]}",
            f"  settings that differ: {same or 'none'}",
            line("GRPO step time", f"{row['ours_s_per_step']:.3f} s", "TRL GRPOTrainer",
                 row["step_time_ratio"], verdict(row["step_time_ratio"], row["step_time_goal"])),
            line("GRPO peak memory", f"{row['ours_peak_rss_gb']:.2f} GB", "TRL GRPOTrainer",
                 row["memory_ratio"], verdict(row["memory_ratio"], row["memory_goal"])),
        ]
    if bench == "sandbox":
        now = row["now"]
        out = [line("python tool, fresh sandbox call", f"{now['fresh_call_ms']:.1f} ms",
                    "bare `python -I -c pass`", row["fresh_over_bare_python"]),
               line("python tool, warm persistent call", f"{now['warm_call_ms']:.3f} ms", "", None),
               line("fresh call + import sympy", f"{now['fresh_sympy_call_ms']:.1f} ms", "", None)]
        if "before" in row:
            out.append(line("", "", "older package (--before)",
                            round(now["fresh_call_ms"] / row["before"]["fresh_call_ms"], 2)))
        return out
    if bench == "scoring":
        return [
            line("sync reward call (worker thread)", f"{row['sync_us_per_call']:.1f} us",
                 "async reward call (event loop)", row["thread_overhead_ratio"]),
            line("XMLParser, 1 MB adversarial", f"{row['xmlparser_1mb_ms']:.2f} ms",
                 "0.1.x pattern on 500 chars", row["xmlparser_1mb_ms"]
                 / max(row["pattern_500_chars_ms"], 1e-3)),
            line("0.1.x pattern, 2x the input", "", "the same pattern, 1x", row["pattern_growth_2x_input"],
                 "(grows much faster than linear)"),
        ]
    return [json.dumps(row)]


def main(argv: list[str] | None = None) -> int:
    chosen = (argv if argv is not None else sys.argv[1:]) or list(BENCHES)
    unknown = [name for name in chosen if name not in BENCHES]
    if unknown:
        print(f"unknown benchmark(s) {unknown}; choose from {list(BENCHES)}", file=sys.stderr)
        return 2
    rows = []
    for name in chosen:
        lacking = missing(name)
        if lacking:
            print(f"skipping {name}: {', '.join(lacking)} not installed", file=sys.stderr)
            continue
        command = [sys.executable, *BENCHES[name]]
        if name == "inference" and importlib.util.find_spec("vllm") is None:
            command.append("--skip-vllm")
        print(f"running {name} (load average {os.getloadavg()[0]:.2f}) ...", file=sys.stderr,
              flush=True)
        out = subprocess.run(command, capture_output=True, text=True)
        if out.returncode != 0:
            print(out.stderr[-3000:], file=sys.stderr)
            rows.append({"bench": name, "error": f"exit {out.returncode}"})
            continue
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    print()
    print(f"{'measure':<34} {'value':>13}   {'peer':<34} {'ratio':>7}   limit")
    print("-" * 110)
    for row in rows:
        if "error" in row:
            print(f"{row['bench']}: FAILED ({row['error']})")
            continue
        print(f"[{row['bench']}]")
        for text in rows_for(row):
            print(text)
    out_dir = Path("outputs") / "bench"
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "latest.json").write_text(json.dumps(rows, indent=2))
    return 0 if all("error" not in r for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
