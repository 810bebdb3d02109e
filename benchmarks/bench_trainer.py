"""GRPOTrainer against TRL's GRPOTrainer: the same model, data, batch, lengths, and in-process
generation, each in its own process (so peak memory is its own), side by side in one run.

    python benchmarks/bench_trainer.py                  # hidden 256, 4 layers (~4.5M params)
    python benchmarks/bench_trainer.py --steps 10 --completion-tokens 32

Reports seconds per optimizer step (mean after a warm-up step), peak RSS, their ratios
(ours / TRL), and where our step time goes (generation vs the rest).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

PROMPTS = [f"Write a function named task_{i} that" for i in range(64)]


def reward_share(token_lists: list[list[int]], vocab: int) -> list[float]:
    return [sum(t % 10 == 3 for t in ids) / max(1, len(ids)) for ids in token_lists]


def run_ours(args: argparse.Namespace, model_path: str) -> dict:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    import verifiers as vf
    from verifiers_trainer import GRPOConfig, GRPOTrainer

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(model_path, torch_dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(model_path)

    def share(state):
        ids = [t for turn in state["turns"] for t in turn["completion_token_ids"]]
        return reward_share([ids], len(tokenizer))[0]

    env = vf.SingleTurnEnv(dataset=[{"question": p} for p in PROMPTS], rubric=vf.Rubric(funcs=[share]))
    config = GRPOConfig(
        output_dir="outputs/bench-trainer-ours", per_device_train_batch_size=args.generations,
        num_generations=args.generations, gradient_accumulation_steps=1,
        max_completion_length=args.completion_tokens, learning_rate=1e-5, max_steps=args.steps,
        warmup_steps=0, beta=0.0, temperature=1.0, logging_steps=1, save_strategy="no",
        report_to="none", use_cpu=True, seed=0, loss_type="dr_grpo",
    )
    trainer = GRPOTrainer(model=model, processing_class=tokenizer, env=env, args=config)
    return timed(trainer, args.steps)


def run_trl(args: argparse.Namespace, model_path: str) -> dict:
    import torch
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import GRPOConfig, GRPOTrainer

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(model_path, torch_dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(model_path)

    def share(prompts, completions, completion_ids, **kwargs):
        return reward_share(completion_ids, len(tokenizer))

    dataset = Dataset.from_list([{"prompt": [{"role": "user", "content": p}]} for p in PROMPTS])
    config = GRPOConfig(
        output_dir="outputs/bench-trainer-trl", per_device_train_batch_size=args.generations,
        num_generations=args.generations, gradient_accumulation_steps=1,
        max_completion_length=args.completion_tokens, learning_rate=1e-5, max_steps=args.steps,
        warmup_steps=0, beta=0.0, temperature=1.0, logging_steps=1, save_strategy="no",
        report_to="none", use_cpu=True, seed=0, loss_type="dr_grpo", use_vllm=False,
    )
    trainer = GRPOTrainer(model=model, reward_funcs=[share], args=config, train_dataset=dataset,
                          processing_class=tokenizer)
    return timed(trainer, args.steps)


def timed(trainer, steps: int) -> dict:
    stamps: list[float] = []

    from transformers import TrainerCallback

    class Clock(TrainerCallback):
        def on_step_end(self, *a, **k):
            stamps.append(time.perf_counter())

    trainer.add_callback(Clock())
    start = time.perf_counter()
    trainer.train()
    steps_s = [b - a for a, b in zip([start, *stamps[:-1]], stamps, strict=True)]
    generation = [e["timing/generation_s"] for e in trainer.state.log_history if "timing/generation_s" in e]
    return {
        "s_per_step": sum(steps_s[1:]) / max(1, len(steps_s) - 1),
        "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6,
        "generation_s_per_step": sum(generation[1:]) / max(1, len(generation) - 1) if generation else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--generations", type=int, default=4)
    parser.add_argument("--completion-tokens", type=int, default=64)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--which", choices=["ours", "trl"], default=None, help=argparse.SUPPRESS)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    from verifiers_trainer.models.tiny import build_tiny_model

    path = str(build_tiny_model(hidden_size=args.hidden, num_layers=args.layers, num_heads=args.hidden // 64))
    if args.which:
        result = (run_ours if args.which == "ours" else run_trl)(args, path)
        print("RESULT " + json.dumps(result))
        return
    results = {}
    for which in ("trl", "ours"):
        command = [sys.executable, __file__, "--which", which, "--steps", str(args.steps),
                   "--generations", str(args.generations), "--completion-tokens",
                   str(args.completion_tokens), "--hidden", str(args.hidden), "--layers", str(args.layers)]
        out = subprocess.run(command, capture_output=True, text=True)
        lines = [line for line in out.stdout.splitlines() if line.startswith("RESULT ")]
        if out.returncode != 0 or not lines:
            raise SystemExit(f"{which} failed:\n{out.stderr[-3000:]}")
        results[which] = json.loads(lines[-1].removeprefix("RESULT "))
    ours, trl = results["ours"], results["trl"]
    row = {
        "bench": "trainer", "hidden": args.hidden, "layers": args.layers, "steps": args.steps,
        "generations": args.generations, "completion_tokens": args.completion_tokens,
        "ours_s_per_step": round(ours["s_per_step"], 3), "trl_s_per_step": round(trl["s_per_step"], 3),
        "step_time_ratio": round(ours["s_per_step"] / trl["s_per_step"], 2),
        "ours_peak_rss_gb": round(ours["peak_rss_gb"], 2), "trl_peak_rss_gb": round(trl["peak_rss_gb"], 2),
        "memory_ratio": round(ours["peak_rss_gb"] / trl["peak_rss_gb"], 2),
        "ours_generation_share": round((ours["generation_s_per_step"] or 0) / ours["s_per_step"], 2),
    }
    if args.json:
        print(json.dumps(row))
    else:
        for key, value in row.items():
            print(f"{key:>24}: {value}")


if __name__ == "__main__":
    main()
