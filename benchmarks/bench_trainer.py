"""GRPOTrainer against TRL's GRPOTrainer on the same config, like for like.

Both get the same model, prompts, batch, learning rate, constant schedule, optimizer,
gradient clipping, precision and gradient checkpointing (set explicitly on both, and printed
as each trainer resolved them), and generate in-process exactly ``--completion-tokens``
tokens per completion (end of text suppressed until then: ``min_tokens`` for ours,
``min_new_tokens`` for TRL), so both train on equal lengths. Each trainer runs in its own
process (its peak memory is its own), in interleaved rounds (TRL, ours, TRL, ours, ...);
each round's step time is the median of its steps after the first, and the reported figure
is the median over rounds, with the machine's load average.

    python benchmarks/bench_trainer.py                       # hidden 256, 4 layers (~4.5M)
    python benchmarks/bench_trainer.py --model smollm2 --lora --prompts-per-step 4
    python benchmarks/bench_trainer.py --precision bf16 --gradient-checkpointing
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

PROMPTS = [f"Write a function named task_{i} that" for i in range(64)]
SETTINGS = ("bf16", "fp16", "gradient_checkpointing", "lr_scheduler_type", "optim",
            "max_grad_norm", "learning_rate", "loss_type", "beta", "num_generations",
            "per_device_train_batch_size", "gradient_accumulation_steps",
            "max_completion_length")


def reward_share(token_lists: list[list[int]]) -> list[float]:
    return [sum(t % 10 == 3 for t in ids) / max(1, len(ids)) for ids in token_lists]


def common_config(args: argparse.Namespace, name: str) -> dict:
    batch = args.generations * args.prompts_per_step
    return dict(
        output_dir=f"outputs/bench-trainer-{name}", per_device_train_batch_size=batch,
        num_generations=args.generations, gradient_accumulation_steps=1,
        max_completion_length=args.completion_tokens, learning_rate=1e-5,
        max_steps=args.steps, warmup_steps=0, lr_scheduler_type="constant",
        optim="adamw_torch", max_grad_norm=1.0, beta=0.0, temperature=1.0, logging_steps=1,
        save_strategy="no", report_to="none", use_cpu=True, seed=0, loss_type="dr_grpo",
        bf16=args.precision == "bf16", gradient_checkpointing=args.gradient_checkpointing,
    )


def load(args: argparse.Namespace, path: str):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(path)
    peft_config = None
    if args.lora:
        from verifiers_trainer import lora_defaults

        peft_config = lora_defaults()
    return model, tokenizer, peft_config


def run_ours(args: argparse.Namespace, path: str) -> dict:
    import verifiers as vf
    from verifiers_trainer import GRPOConfig, GRPOTrainer

    model, tokenizer, peft_config = load(args, path)

    def share(state):
        ids = [t for turn in state["turns"] for t in turn["completion_token_ids"]]
        return reward_share([ids])[0]

    env = vf.SingleTurnEnv(dataset=[{"question": p} for p in PROMPTS], rubric=vf.Rubric(funcs=[share]),
                           sampling_args={"min_tokens": args.completion_tokens})
    trainer = GRPOTrainer(model=model, processing_class=tokenizer, env=env,
                          args=GRPOConfig(**common_config(args, "ours")), peft_config=peft_config)
    return timed(trainer, "completions/mean_length")


def run_trl(args: argparse.Namespace, path: str) -> dict:
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    model, tokenizer, peft_config = load(args, path)

    def share(prompts, completions, completion_ids, **kwargs):
        return reward_share(completion_ids)

    dataset = Dataset.from_list([{"prompt": [{"role": "user", "content": p}]} for p in PROMPTS])
    config = GRPOConfig(**common_config(args, "trl"), use_vllm=False,
                        generation_kwargs={"min_new_tokens": args.completion_tokens})
    trainer = GRPOTrainer(model=model, reward_funcs=[share], args=config, train_dataset=dataset,
                          processing_class=tokenizer, peft_config=peft_config)
    return timed(trainer, "completions/mean_length")


def timed(trainer, length_key: str) -> dict:
    from transformers import TrainerCallback

    stamps: list[float] = []

    class Clock(TrainerCallback):
        def on_step_end(self, *a, **k):
            stamps.append(time.perf_counter())

    settings = {key: str(getattr(trainer.args, key, None)) for key in SETTINGS}
    settings["model_dtype"] = str(next(trainer.model.parameters()).dtype)
    settings["trainable_params"] = sum(p.numel() for p in trainer.model.parameters() if p.requires_grad)
    trainer.add_callback(Clock())
    start = time.perf_counter()
    trainer.train()
    steps = [b - a for a, b in zip([start, *stamps[:-1]], stamps, strict=True)][1:]  # warm-up out
    history = trainer.state.log_history
    lengths = [e[length_key] for e in history if length_key in e]
    generation = [e["timing/generation_s"] for e in history if "timing/generation_s" in e][1:]
    return {
        "s_per_step": statistics.median(steps) if steps else float("nan"),
        "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6,
        "mean_completion_length": statistics.fmean(lengths) if lengths else None,
        "generation_s_per_step": statistics.median(generation) if generation else None,
        "settings": settings,
    }


def model_path(args: argparse.Namespace) -> str:
    if args.model == "smollm2":
        from verifiers_trainer.models.smollm2 import default_model_path

        return str(default_model_path())
    from verifiers_trainer.models.tiny import build_tiny_model

    return str(build_tiny_model(hidden_size=args.hidden, num_layers=args.layers,
                                num_heads=max(1, args.hidden // 64)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", choices=["tiny", "smollm2"], default="tiny")
    parser.add_argument("--lora", action="store_true", help="LoRA (r=8, all linear) on both")
    parser.add_argument("--steps", type=int, default=5, help="optimizer steps per round")
    parser.add_argument("--rounds", type=int, default=2, help="interleaved rounds per trainer")
    parser.add_argument("--generations", type=int, default=4)
    parser.add_argument("--prompts-per-step", type=int, default=1)
    parser.add_argument("--completion-tokens", type=int, default=64)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--precision", choices=["fp32", "bf16"], default="fp32",
                        help="bf16 autocast on both, or fp32 on both")
    parser.add_argument("--gradient-checkpointing", action="store_true", help="on both")
    parser.add_argument("--which", choices=["ours", "trl"], default=None, help=argparse.SUPPRESS)
    parser.add_argument("--path", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.steps < 2 or args.rounds < 1:
        parser.error("--steps must be >= 2 (the first is a warm-up) and --rounds >= 1")
    if args.which:
        result = (run_ours if args.which == "ours" else run_trl)(args, args.path)
        print("RESULT " + json.dumps(result))
        return
    path = model_path(args)
    passed = [a for a in sys.argv[1:] if a != "--json"]
    load_before = os.getloadavg()
    runs: dict[str, list[dict]] = {"trl": [], "ours": []}
    for _ in range(args.rounds):
        for which in ("trl", "ours"):
            command = [sys.executable, __file__, *passed, "--which", which, "--path", path]
            out = subprocess.run(command, capture_output=True, text=True)
            lines = [line for line in out.stdout.splitlines() if line.startswith("RESULT ")]
            if out.returncode != 0 or not lines:
                raise SystemExit(f"{which} failed:\n{out.stderr[-3000:]}")
            runs[which].append(json.loads(lines[-1].removeprefix("RESULT ")))
    load_after = os.getloadavg()

    def median(which: str, key: str) -> float:
        values = [r[key] for r in runs[which] if r[key] is not None]
        return statistics.median(values) if values else float("nan")

    ours_s, trl_s = median("ours", "s_per_step"), median("trl", "s_per_step")
    ours_mem, trl_mem = median("ours", "peak_rss_gb"), median("trl", "peak_rss_gb")
    row = {
        "bench": "trainer", "model": args.model, "lora": args.lora, "precision": args.precision,
        "gradient_checkpointing": args.gradient_checkpointing, "hidden": args.hidden,
        "layers": args.layers, "steps": args.steps, "rounds": args.rounds,
        "generations": args.generations, "prompts_per_step": args.prompts_per_step,
        "completion_tokens": args.completion_tokens,
        "ours_s_per_step": round(ours_s, 3), "trl_s_per_step": round(trl_s, 3),
        "ours_rounds_s": [round(r["s_per_step"], 3) for r in runs["ours"]],
        "trl_rounds_s": [round(r["s_per_step"], 3) for r in runs["trl"]],
        "step_time_ratio": round(ours_s / trl_s, 2), "step_time_goal": 0.6,
        "ours_peak_rss_gb": round(ours_mem, 2), "trl_peak_rss_gb": round(trl_mem, 2),
        "memory_ratio": round(ours_mem / trl_mem, 2), "memory_goal": 0.7,
        "ours_mean_length": median("ours", "mean_completion_length"),
        "trl_mean_length": median("trl", "mean_completion_length"),
        "ours_generation_share": round(median("ours", "generation_s_per_step") / ours_s, 2),
        "ours_settings": runs["ours"][0]["settings"], "trl_settings": runs["trl"][0]["settings"],
        "load_before": [round(x, 2) for x in load_before],
        "load_after": [round(x, 2) for x in load_after],
    }
    if args.json:
        print(json.dumps(row))
        return
    print(f"{'setting':<30} {'ours':<28} {'TRL':<28}")
    for key in row["ours_settings"]:
        print(f"{key:<30} {row['ours_settings'][key]!s:<28} {row['trl_settings'].get(key)!s:<28}")
    print()
    for key, value in row.items():
        if not key.endswith("_settings"):
            print(f"{key:>24}: {value}")


if __name__ == "__main__":
    main()
