"""One GRPO optimizer step on two processes (gloo), against the same step on one process
over the whole batch, and against TRL 1.16's ``_compute_loss`` on two processes; run by
test_loss_vs_trl_dp.py:

    torchrun --nproc_per_node 2 loss_vs_trl_dp.py OUT_DIR MODEL_PATH --loss-type dapo --beta 0.04

Each process trains our GRPOTrainer one step (2 accumulation micro-batches of its own
prompts; data parallel averages the gradients), then:

- the single-process reference: every process's micro-batches, gathered, in one loss over
  the whole batch written out here (clipped surrogate on-policy, k3 KL times the ratio when
  ``--beta`` > 0, token sum over the batch's trained tokens for dapo), one backward pass;
- TRL: each process calls TRL's ``_compute_loss`` on its own micro-batches with
  ``num_items_in_batch`` as TRL computes it (trained tokens summed over processes), and the
  gradients are averaged over the processes as data parallel does.

Writes OUT_DIR/rank<N>.json: the token counts (local, global, and the normaliser our
trainer used per micro-step), and the relative gradient differences (whole gradient, largest
per weight tensor).
"""

import argparse
import json
import os
import sys

import torch
import torch.distributed as dist
from transformers import AutoModelForCausalLM, AutoTokenizer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import loss_reference as ref


def reference_gradient(model_path: str, start: dict, batches: list[dict], beta: float,
                       loss_type: str) -> dict:
    """The step's gradient on one process over all of ``batches`` (every process's)."""
    model = AutoModelForCausalLM.from_pretrained(model_path, dtype=ref.DTYPE)
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(start[name])
    model.train()
    total_tokens = sum(b["completion_mask"].sum() for b in batches)
    total = 0.0
    for b in batches:
        ids = torch.cat([b["prompt_ids"], b["completion_ids"]], 1)
        attention = torch.cat([b["prompt_mask"], b["completion_attention"]], 1)
        width = b["completion_ids"].shape[1]
        logits = model(input_ids=ids, attention_mask=attention).logits[:, -width - 1:-1]
        logps = torch.log_softmax(logits, -1).gather(-1, b["completion_ids"].unsqueeze(-1)).squeeze(-1)
        ratio = torch.exp(logps - logps.detach())
        per_token = -ratio * b["advantages"].to(ref.DTYPE).unsqueeze(1)
        if beta > 0:
            d = b["ref_logps"] - logps
            per_token = per_token + beta * (torch.exp(d) - d - 1) * ratio
        m = b["completion_mask"].to(ref.DTYPE)
        if loss_type == "dapo":
            total = total + (per_token * m).sum() / total_tokens
        else:
            raise ValueError(f"the reference is written for dapo; got {loss_type}")
    total.backward()
    return {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("model")
    parser.add_argument("--loss-type", default="dapo")
    parser.add_argument("--beta", type=float, default=0.0)
    options = parser.parse_args()

    tokenizer = AutoTokenizer.from_pretrained(options.model)
    questions = ref.equal_length_questions(tokenizer, 32)
    settings = dict(per_device_train_batch_size=4, num_generations=4, gradient_accumulation_steps=2,
                    loss_type=options.loss_type, beta=options.beta, use_bias_correction_kl=True)
    rank_dir = os.path.join(options.out, f"run{os.environ.get('RANK', '0')}")
    ours, start, our_grads = ref.our_step(options.model, rank_dir, settings, questions)
    world, rank = dist.get_world_size(), dist.get_rank()
    local = [{k: v for k, v in b.items()} for b in ours._buffer]
    everyone: list = [None] * world
    dist.all_gather_object(everyone, local)
    all_batches = [b for batches in everyone for b in batches]
    global_tokens = float(sum(b["completion_mask"].sum() for b in all_batches))

    full = reference_gradient(options.model, start, all_batches, options.beta, options.loss_type)

    trl = ref.trl_trainer(options.model, rank_dir + "-trl", settings, questions)
    num_items = trl.accelerator.gather(
        torch.tensor(sum(float(b["completion_mask"].sum()) for b in local), dtype=ref.DTYPE)).sum()
    _, trl_grads = ref.trl_step(trl, local, num_items)
    for grad in trl_grads.values():  # data parallel's averaging
        dist.all_reduce(grad)
        grad /= world

    result = {
        "rank": rank, "world": world,
        "distributed_type": ours.accelerator.distributed_type.value,
        "local_tokens": [float(b["completion_mask"].sum()) for b in local],
        "global_tokens": global_tokens,
        "trl_num_items_in_batch": float(num_items),
        "our_step_tokens": ours._step_tokens,
        "prompts": [tokenizer.decode(b["prompt_ids"][0]) for b in local],
        "vs_full_batch": ref.relative_differences(our_grads, full),
        "vs_trl": ref.relative_differences(our_grads, trl_grads),
        "trl_vs_full_batch": ref.relative_differences(trl_grads, full),
    }
    with open(os.path.join(options.out, f"rank{rank}.json"), "w") as handle:
        json.dump(result, handle)


if __name__ == "__main__":
    main()
