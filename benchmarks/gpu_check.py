"""GPU check: GRPO steps in process on a 0.39B Qwen2 model built on the spot, bf16, LoRA and
full fine-tuning; speed and correctness in one run, nothing downloaded.

    python benchmarks/gpu_check.py --out OUT_DIR                    # CUDA, the 0.39B model
    python benchmarks/gpu_check.py --device cpu --tiny --out OUT    # the same, tiny, on CPU
    nox -s gpu_check -- --out OUT_DIR                               # the first, in a venv

Needs torch, transformers, peft and tokenizers only (no vLLM, no openai, no datasets, no
network; the repository's ``core`` and ``trainer`` are put on ``sys.path``). The model has
Qwen2.5-0.5B's layer shapes (24 layers, hidden 896, 14 query / 2 key-value heads, MLP 4864)
with random weights and a byte-level BPE tokenizer trained on the standard library's
sources (``verifiers_trainer.models.tiny.build_tiny_tokenizer``). It checks, in order:

1. the in-process engine on the device: greedy tokens (one prompt at a time, fp32) equal
   ``model.generate``'s; a batch of prompts gives the same tokens as one at a time; the peak
   memory of a batched generation; bf16 greedy agreement with fp32 (reported);
2. loss and gradients on one fixed tiny batch: the device in fp32, in bf16 autocast and
   with bf16 weights, against a CPU fp32 run of the same weights, for full fine-tuning and
   for LoRA;
3. GRPO steps as ``GRPOTrainer`` runs them in process (generate ``num_generations``
   completions per prompt with the engine, score, group-relative advantages, the trainer's
   ``collate`` and ``grpo_loss``, one AdamW step), bf16 weights (the default load on a GPU)
   with bf16 autocast (``bf16=True``), for LoRA and full: seconds per step, generated tokens/s, trainer tokens/s
   and MFU (model FLOPs: 2N per generated token, 6N per trained token in full fine-tuning,
   4N under LoRA, against the GPU's dense bf16 peak).

4. when ``openai`` is installed (``nox -s gpu_check`` installs it): two steps of
   ``vf.GRPOTrainer`` itself on an environment, generating in process, LoRA and full.

Writes ``OUT_DIR/gpu_check.json`` and prints a summary; exits 1 when a check fails.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
for _package in ("core", "trainer"):
    if str(ROOT / _package) not in sys.path:
        sys.path.insert(0, str(ROOT / _package))

import torch  # noqa: E402

#: dense bf16 peak FLOP/s by device name (tensor cores, no sparsity)
PEAK_BF16 = {"H200": 989e12, "H100": 989e12, "A100": 312e12, "L40S": 362e12, "A10": 125e12}

QWEN25_05B = dict(hidden_size=896, num_hidden_layers=24, num_attention_heads=14,
                  num_key_value_heads=2, intermediate_size=4864)
TINY = dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=1,
            intermediate_size=256)


# -- setup ----------------------------------------------------------------------------------
def build(tiny: bool, seed: int) -> tuple[Any, Any]:
    """(fp32 model on CPU, tokenizer), both built offline."""
    from transformers import GenerationConfig, Qwen2Config, Qwen2ForCausalLM

    from verifiers_trainer.models.tiny import IM_END, PAD_TOKEN, build_tiny_tokenizer

    tokenizer = build_tiny_tokenizer(vocab_size=1000 if tiny else 32000)
    eos, pad = tokenizer.convert_tokens_to_ids(IM_END), tokenizer.convert_tokens_to_ids(PAD_TOKEN)
    config = Qwen2Config(
        vocab_size=len(tokenizer), max_position_embeddings=4096, rms_norm_eps=1e-6,
        # wider than the usual 0.02: a random model then writes varied text, and its top
        # logits are rarely near ties (greedy comparisons are meaningful)
        initializer_range=0.2, tie_word_embeddings=True, use_sliding_window=False,
        eos_token_id=eos, pad_token_id=pad, bos_token_id=None, **(TINY if tiny else QWEN25_05B))
    torch.manual_seed(seed)
    model = Qwen2ForCausalLM(config).float().eval()
    model.generation_config = GenerationConfig(eos_token_id=eos, pad_token_id=pad, bos_token_id=None)
    return model, tokenizer


def prompts_for(tokenizer: Any, count: int, length: int, seed: int) -> list[list[int]]:
    """``count`` chat prompts of about ``length`` tokens (numbered snippets of code)."""
    out = []
    for i in range(count):
        text = f"Continue this program, number {seed}-{i}:\n" + f"def f(x):\n    return x * {i}\n" * 8
        chat = tokenizer.apply_chat_template([{"role": "user", "content": text}],
                                             add_generation_prompt=True, tokenize=False)
        out.append(tokenizer.encode(chat, add_special_tokens=False)[-length:])
    return out


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def autocast(device: torch.device, enabled: bool) -> Any:
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=enabled)


def count_params(model: Any, trainable_only: bool = False) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def peak_flops(device: torch.device, override: float | None) -> tuple[float | None, str]:
    if override:
        return override * 1e12, "given"
    if device.type != "cuda":
        return None, "no peak known for CPU"
    name = torch.cuda.get_device_name(device)
    for key, value in PEAK_BF16.items():
        if key in name:
            return value, name
    return None, f"unknown GPU {name!r}: pass --peak-tflops"


def with_lora(model: Any) -> Any:
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(r=16, lora_alpha=32, lora_dropout=0.0, target_modules="all-linear",
                        task_type="CAUSAL_LM")
    torch.manual_seed(0)
    lora = get_peft_model(model, config)
    with torch.no_grad():  # B starts at 0 in peft: give it values so every gradient is non-zero
        for name, parameter in lora.named_parameters():
            if "lora_B" in name:
                parameter.normal_(0.0, 0.01)
    return lora


# -- 1. the engine --------------------------------------------------------------------------
def check_engine(model: Any, tokenizer: Any, device: torch.device, tiny: bool) -> dict[str, Any]:
    from verifiers_trainer.inference.engine import InProcessEngine, SamplingParams

    max_tokens = 16 if tiny else 64
    prompts = prompts_for(tokenizer, 4 if tiny else 8, 48 if tiny else 128, seed=1)
    greedy = SamplingParams(max_tokens=max_tokens, temperature=0.0)
    fp32 = copy.deepcopy(model).to(device)
    engine = InProcessEngine(fp32, tokenizer)
    single = [engine.generate_batch([p], [greedy])[0].token_ids for p in prompts]
    reference = []
    with torch.inference_mode():
        for p in prompts:
            ids = torch.tensor([p], device=device)
            out = fp32.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=max_tokens,
                                do_sample=False)
            reference.append(out[0, len(p):].tolist())
    batched = [g.token_ids for g in engine.generate_batch(prompts, [greedy] * len(prompts))]

    # memory and speed of one larger batched generation (bf16)
    bf16 = copy.deepcopy(model).to(device=device, dtype=torch.bfloat16)
    bf16_engine = InProcessEngine(bf16, tokenizer, max_batch_size=256)
    bf16_single = [bf16_engine.generate_batch([p], [greedy])[0].token_ids for p in prompts]
    big = prompts_for(tokenizer, 8 if tiny else 128, 48 if tiny else 128, seed=2)
    params = [SamplingParams(max_tokens=max_tokens * 2, temperature=1.0, ignore_eos=True)] * len(big)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
    synchronize(device)
    start = time.perf_counter()
    generated = bf16_engine.generate_batch(big, params)
    synchronize(device)
    seconds = time.perf_counter() - start
    tokens = sum(len(g.token_ids) for g in generated)
    result: dict[str, Any] = {
        "greedy_equals_model_generate": single == reference,
        "greedy_mismatches": [i for i, (a, b) in enumerate(zip(single, reference, strict=True)) if a != b],
        "batched_equals_one_at_a_time": batched == single,
        "batched_identical_fraction": sum(a == b for a, b in zip(batched, single, strict=True)) / len(single),
        "distinct_tokens_in_greedy_output": len({t for s in single for t in s}),
        "bf16_greedy_same_as_fp32_fraction": sum(a == b for a, b in zip(bf16_single, single, strict=True)) / len(single),
        "batch_generation": {"sequences": len(big), "tokens": tokens, "seconds": seconds,
                             "tokens_per_s": tokens / seconds},
    }
    if device.type == "cuda":
        result["batch_generation"]["peak_extra_memory_gb"] = (
            torch.cuda.max_memory_allocated(device) - before) / 1e9
        result["batch_generation"]["kv_cache_estimate_gb"] = kv_cache_bytes(
            bf16.config, len(big), len(big[0]) + max_tokens * 2) / 1e9
    del fp32, bf16, engine, bf16_engine
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return result


def kv_cache_bytes(config: Any, sequences: int, length: int, bytes_per: int = 2) -> int:
    head_dim = config.hidden_size // config.num_attention_heads
    return (2 * config.num_hidden_layers * config.num_key_value_heads * head_dim
            * sequences * length * bytes_per)


# -- 2. loss and gradients against CPU -------------------------------------------------------
def policy_logps(model: Any, batch: dict[str, torch.Tensor], device: torch.device,
                 temperature: float = 1.0) -> torch.Tensor:
    """Completion-token log-probs, as ``GRPOTrainer._policy_logps`` computes them."""
    from verifiers_trainer.grpo.math import selective_log_softmax

    completion_len = batch["completion_ids"].shape[1]
    input_ids = torch.cat([batch["prompt_ids"], batch["completion_ids"]], dim=1).to(device)
    attention = torch.cat([batch["prompt_mask"], batch["completion_attention"]], dim=1).to(device)
    positions = (attention.cumsum(dim=1) - 1).clamp(min=0)
    logits = model(input_ids=input_ids, attention_mask=attention, position_ids=positions,
                   use_cache=False, logits_to_keep=completion_len + 1).logits
    logits = logits[:, :-1, :].float() / temperature
    return selective_log_softmax(logits, batch["completion_ids"].to(device))


def loss_of(model: Any, batch: dict[str, torch.Tensor], device: torch.device,
            max_completion_length: int) -> tuple[torch.Tensor, dict[str, Any]]:
    from verifiers_trainer.grpo.math import grpo_loss

    logps = policy_logps(model, batch, device)
    old = batch["old_logps"].to(device) if "old_logps" in batch else logps.detach()
    return grpo_loss(logps, old, None, batch["advantages"].to(device),
                     batch["completion_mask"].to(device), beta=0.0, epsilon_low=0.2,
                     epsilon_high=0.28, loss_type="dr_grpo",
                     max_completion_length=max_completion_length)


def fixed_batch(tokenizer: Any, vocab: int, tiny: bool) -> dict[str, torch.Tensor]:
    from verifiers_trainer.grpo.batching import Sample, collate

    generator = torch.Generator().manual_seed(7)
    prompts = prompts_for(tokenizer, 4, 24 if tiny else 64, seed=3)
    samples = []
    for i, prompt in enumerate(prompts):
        n = (12 if tiny else 48) - 2 * i
        completion = torch.randint(3, vocab, (n,), generator=generator).tolist()
        samples.append(Sample(prompt[: len(prompt) - i], completion, [1] * n, None,
                              [1.0, -0.5, 0.25, -0.75][i], 0.0))
    batch = collate(samples, tokenizer.pad_token_id)
    batch["old_shift"] = torch.randn(batch["completion_ids"].shape, generator=generator)
    return batch


def gradients(model: Any, batch: dict[str, torch.Tensor], device: torch.device, bf16: bool,
              max_completion_length: int) -> tuple[float, torch.Tensor]:
    model.zero_grad(set_to_none=True)
    with autocast(device, bf16 and device.type == "cuda"):
        loss, _ = loss_of(model, batch, device, max_completion_length)
    loss.backward()
    grads = [p.grad.detach().float().flatten().cpu() for p in model.parameters() if p.requires_grad]
    return loss.item(), torch.cat(grads)


def check_gradients(model: Any, tokenizer: Any, device: torch.device, tiny: bool) -> dict[str, Any]:
    """The same batch and weights through CPU fp32 (the reference) and the device in fp32,
    in bf16 autocast over fp32 weights (GRPOConfig(bf16=True) on an fp32 model) and with
    bf16 weights (the default load on a GPU, as the GRPO steps below run)."""
    cpu_device = torch.device("cpu")
    batch = fixed_batch(tokenizer, model.config.vocab_size, tiny)
    max_len = batch["completion_ids"].shape[1]
    limits = {"fp32": (1e-3, 0.999), "bf16_autocast": (1e-1, 0.98), "bf16_weights": (2e-1, 0.95)}
    out: dict[str, Any] = {}
    for mode in ("full", "lora"):
        cpu = copy.deepcopy(model).float().train()
        if mode == "lora":
            cpu = with_lora(cpu)
        with torch.no_grad():  # fixed old log-probs, a little off the current ones: ratios
            old = policy_logps(cpu, batch, cpu_device)  # != 1, some of them clipped
        batch["old_logps"] = old + 0.05 * batch["old_shift"]
        reference_loss, reference = gradients(cpu, batch, cpu_device, False, max_len)
        rows = {}
        for label in limits:
            on_device = copy.deepcopy(cpu).to(device)
            if label == "bf16_weights":
                on_device = on_device.to(torch.bfloat16)
            loss, grads = gradients(on_device, batch, device, label != "fp32", max_len)
            loss_tol, cos_min = limits[label]
            error = abs(loss - reference_loss) / max(abs(reference_loss), 1e-8)
            cosine = torch.nn.functional.cosine_similarity(grads, reference, dim=0).item()
            rows[label] = {
                "loss": loss, "loss_relative_error": error, "grad_cosine": cosine,
                "grad_norm_ratio": (grads.norm() / reference.norm().clamp(min=1e-12)).item(),
                "ok": error <= loss_tol and cosine >= cos_min,
                "limits": {"loss_relative_error_max": loss_tol, "grad_cosine_min": cos_min},
            }
            del on_device
        out[mode] = {"cpu_fp32_loss": reference_loss, "gradient_values": int(reference.numel()), **rows}
        del cpu
    batch.pop("old_logps")
    return out


# -- 3. GRPO steps ---------------------------------------------------------------------------
def reward(completion: list[int]) -> float:
    """A learnable score with spread inside a group: the share of even token ids."""
    return sum(t % 2 == 0 for t in completion) / max(1, len(completion))


def grpo_steps(model: Any, tokenizer: Any, device: torch.device, mode: str, tiny: bool,
               steps: int, peak: float | None) -> dict[str, Any]:
    from verifiers_trainer.grpo.batching import (
        Sample,
        advantages_for,
        collate,
        groups_by_id,
        split,
    )
    from verifiers_trainer.inference.engine import InProcessEngine, SamplingParams

    prompts_per_step, group = (2, 4) if tiny else (8, 8)
    max_tokens = 8 if tiny else 256
    micro_batches = 1 if tiny else 4
    policy = copy.deepcopy(model).to(torch.bfloat16)  # as loaded on a GPU by default
    if mode == "lora":
        policy = with_lora(policy)  # peft keeps the adapters in fp32
    policy = policy.to(device).train()
    engine = InProcessEngine(policy, tokenizer, max_batch_size=prompts_per_step * group)
    optimizer = torch.optim.AdamW([p for p in policy.parameters() if p.requires_grad],
                                  lr=1e-5 if mode == "full" else 1e-4)
    n_total, n_trainable = count_params(policy), count_params(policy, trainable_only=True)
    if mode == "lora":
        n_model = n_total - n_trainable
        train_flops_per_token = 4 * n_model  # forward 2N + activation gradients 2N
    else:
        n_model = n_total
        train_flops_per_token = 6 * n_model
    records = []
    for step in range(steps + 1):  # step 0 warms up (kernels, allocator): not counted
        prompts = prompts_for(tokenizer, prompts_per_step, 48 if tiny else 160, seed=100 + step)
        rows = [p for p in prompts for _ in range(group)]
        params = [SamplingParams(max_tokens=max_tokens, temperature=1.0)] * len(rows)
        synchronize(device)
        t0 = time.perf_counter()
        generations = engine.generate_batch(rows, params)
        synchronize(device)
        t1 = time.perf_counter()
        rewards = [reward(g.token_ids) for g in generations]
        groups, _ = groups_by_id([i // group for i in range(len(rows))], [False] * len(rows))
        advantages = advantages_for(rewards, groups, "group")
        samples = [Sample(rows[i], g.token_ids or [tokenizer.pad_token_id], [1] * max(1, len(g.token_ids)),
                          g.logprobs or None, advantages.get(i, 0.0), rewards[i])
                   for i, g in enumerate(generations)]
        policy.train()
        trained_tokens = 0
        losses = []
        for part in split(samples, micro_batches):
            batch = collate(part, tokenizer.pad_token_id, max_tokens)
            trained_tokens += int(batch["prompt_mask"].sum() + batch["completion_attention"].sum())
            with autocast(device, True):
                loss, _ = loss_of(policy, batch, device, max_tokens)
            (loss / micro_batches).backward()
            losses.append(loss.item())
        torch.nn.utils.clip_grad_norm_([p for p in policy.parameters() if p.requires_grad], 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        synchronize(device)
        t2 = time.perf_counter()
        generated = sum(len(g.token_ids) for g in generations)
        records.append({"step": step, "generate_s": t1 - t0, "train_s": t2 - t1, "step_s": t2 - t0,
                        "generated_tokens": generated, "trained_tokens": trained_tokens,
                        "reward": sum(rewards) / len(rewards), "loss": sum(losses) / len(losses)})
    measured = records[1:] or records
    gen_s = sum(r["generate_s"] for r in measured)
    train_s = sum(r["train_s"] for r in measured)
    generated = sum(r["generated_tokens"] for r in measured)
    trained = sum(r["trained_tokens"] for r in measured)
    result: dict[str, Any] = {
        "mode": mode, "parameters": n_total, "trainable_parameters": n_trainable,
        "prompts_per_step": prompts_per_step, "completions_per_prompt": group,
        "max_completion_tokens": max_tokens, "measured_steps": len(measured),
        "step_s": (gen_s + train_s) / len(measured),
        "generate_s_per_step": gen_s / len(measured), "train_s_per_step": train_s / len(measured),
        "generated_tokens_per_s": generated / gen_s,
        "trainer_tokens_per_s": trained / train_s,
        "finite_losses": all(math.isfinite(r["loss"]) for r in records),
        "steps": records,
    }
    if peak:
        result["mfu_generation"] = 2 * n_model * generated / gen_s / peak
        result["mfu_training"] = train_flops_per_token * trained / train_s / peak
        result["mfu_step"] = (2 * n_model * generated + train_flops_per_token * trained) / (gen_s + train_s) / peak
    if device.type == "cuda":
        result["peak_memory_gb"] = torch.cuda.max_memory_allocated(device) / 1e9
    del policy, engine, optimizer
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return result


# -- 4. GRPOTrainer itself (when openai is installed) ----------------------------------------
def trainer_steps(model: Any, tokenizer: Any, device: torch.device, mode: str, tiny: bool,
                  out: Path) -> dict[str, Any]:
    """Two steps of ``vf.GRPOTrainer`` generating in process, bf16 weights, as a user runs it."""
    import verifiers as vf
    from verifiers_trainer import GRPOConfig, GRPOTrainer, lora_defaults

    def varied(completion: Any, **kwargs: Any) -> float:
        text = completion[-1]["content"] if isinstance(completion, list) else str(completion)
        return (len(text or "") % 5) / 4

    rows = [{"question": f"Write function number {i}:", "answer": ""} for i in range(32)]
    env = vf.SingleTurnEnv(dataset=rows, rubric=vf.Rubric(funcs=[varied]))
    group = 4 if tiny else 8
    args = GRPOConfig(
        output_dir=str(out / f"trainer-{mode}"), per_device_train_batch_size=2 * group,
        num_generations=group, gradient_accumulation_steps=1, max_steps=2,
        max_completion_length=8 if tiny else 128, max_prompt_length=256, learning_rate=1e-5,
        warmup_steps=0, lr_scheduler_type="constant", beta=0.0, logging_steps=1,
        save_strategy="no", report_to="none", seed=0, bf16=device.type == "cuda",
        use_cpu=device.type == "cpu")
    policy = copy.deepcopy(model).to(torch.bfloat16 if device.type == "cuda" else torch.float32)
    trainer = GRPOTrainer(model=policy, processing_class=tokenizer, env=env, args=args,
                          peft_config=lora_defaults(r=16, alpha=32) if mode == "lora" else None)
    start = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - start
    logs = [entry for entry in trainer.state.log_history if "reward" in entry]
    result = {"steps": len(logs), "seconds": seconds, "seconds_per_step": seconds / max(1, len(logs)),
              "rewards": [entry["reward"] for entry in logs],
              "generation_s": [entry.get("timing/generation_s") for entry in logs],
              "losses_finite": all(math.isfinite(entry.get("loss", 0.0)) for entry in logs),
              "device": str(next(trainer.model.parameters()).device)}
    del trainer, policy
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return result


# -- main -----------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda", help="cuda (default) or cpu")
    parser.add_argument("--tiny", action="store_true", help="a tiny model (checks the script)")
    parser.add_argument("--steps", type=int, default=3, help="measured GRPO steps per mode")
    parser.add_argument("--modes", default="lora,full", help="comma-separated: lora, full")
    parser.add_argument("--peak-tflops", type=float, default=None,
                        help="the device's dense bf16 peak, when its name is not known")
    parser.add_argument("--out", default=os.environ.get("OUT", "outputs/gpu_check"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-trainer", action="store_true",
                        help="skip the GRPOTrainer section (it runs when openai is installed)")
    args = parser.parse_args(argv)
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    if not modes or set(modes) - {"lora", "full"}:
        parser.error(f"--modes takes lora and/or full, got {args.modes!r}")
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda but torch sees no CUDA device; use --device cpu --tiny")
    device = torch.device(args.device)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = False  # fp32 comparisons mean fp32
        torch.backends.cudnn.allow_tf32 = False
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    report: dict[str, Any] = {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu",
        "torch": torch.__version__, "cuda": torch.version.cuda, "python": platform.python_version(),
        "tiny": args.tiny,
    }
    import transformers

    report["transformers"] = transformers.__version__
    peak, peak_source = peak_flops(device, args.peak_tflops)
    report["peak_bf16_flops"], report["peak_source"] = peak, peak_source

    t = time.perf_counter()
    model, tokenizer = build(args.tiny, args.seed)
    report["model"] = {"parameters": count_params(model), "vocab": len(tokenizer),
                       "config": {k: getattr(model.config, k) for k in (TINY if args.tiny else QWEN25_05B)},
                       "build_s": time.perf_counter() - t}
    print(f"model: {report['model']['parameters'] / 1e6:.1f} M parameters, vocab {len(tokenizer)}", flush=True)

    report["engine"] = check_engine(model, tokenizer, device, args.tiny)
    print("engine:", json.dumps({k: v for k, v in report["engine"].items() if k != "batch_generation"}), flush=True)
    report["gradients"] = check_gradients(model, tokenizer, device, args.tiny)
    print("gradients:", json.dumps(report["gradients"]), flush=True)
    report["grpo"] = {}
    for mode in modes:
        report["grpo"][mode] = grpo_steps(model, tokenizer, device, mode, args.tiny, args.steps, peak)
        summary = {k: v for k, v in report["grpo"][mode].items() if k != "steps"}
        print(f"grpo {mode}:", json.dumps(summary), flush=True)

    import importlib.util

    report["trainer"] = {}
    if args.no_trainer:
        report["trainer"]["skipped"] = "--no-trainer"
    elif importlib.util.find_spec("openai") is None:
        report["trainer"]["skipped"] = "openai is not installed (vf.GRPOTrainer's rollouts need it)"
    else:
        for mode in modes:
            report["trainer"][mode] = trainer_steps(model, tokenizer, device, mode, args.tiny, out)
            print(f"GRPOTrainer {mode}:", json.dumps(report["trainer"][mode]), flush=True)

    failures = []
    if not report["engine"]["greedy_equals_model_generate"]:
        failures.append("engine greedy != model.generate")
    if report["engine"]["batched_identical_fraction"] < 0.75:
        failures.append("batched greedy differs from one-at-a-time in more than a quarter of prompts")
    for mode, rows in report["gradients"].items():
        for label in ("fp32", "bf16_autocast", "bf16_weights"):
            if not rows[label]["ok"]:
                failures.append(f"{mode} {label} loss/gradients off the CPU run")
    for mode, result in report["grpo"].items():
        if not result["finite_losses"]:
            failures.append(f"grpo {mode}: a loss was not finite")
    for mode, result in report["trainer"].items():
        if isinstance(result, dict) and not (result["steps"] == 2 and result["losses_finite"]):
            failures.append(f"GRPOTrainer {mode}: {result['steps']} logged steps, finite losses "
                            f"{result['losses_finite']}")
    report["failures"] = failures
    report["total_s"] = time.perf_counter() - started
    (out / "gpu_check.json").write_text(json.dumps(report, indent=2))
    print(f"\n{'FAILED: ' + '; '.join(failures) if failures else 'all checks passed'} "
          f"({report['total_s']:.0f} s); report in {out / 'gpu_check.json'}")
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
