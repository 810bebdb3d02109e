"""FSDP 2 on CPU, without accelerate (which enables FSDP only on GPUs), run by
test_distributed.py:

    torchrun --nproc_per_node 2 fsdp2_whole_weights.py OUT_DIR MODEL_PATH

The tiny model is sharded as accelerate's TRANSFORMER_BASED_WRAP shards it (each decoder
layer, then the root). Under ``full_weights`` each rank generates greedily with the
in-process engine, the two ranks for different numbers of tokens, and reads the weights the
vf-vllm push would send; then the model trains one step sharded, and generates again.
Each rank writes OUT_DIR/rank<N>.json with what it saw.
"""

import json
import os
import sys

import torch
import torch.distributed as dist
from torch.distributed.fsdp import fully_shard
from torch.distributed.tensor import DTensor
from transformers import AutoModelForCausalLM, AutoTokenizer

from verifiers_trainer.grpo.sharding import full_weights, sharding_of
from verifiers_trainer.grpo.trainer import merged_named_weights
from verifiers_trainer.inference.engine import InProcessEngine, SamplingParams


def main() -> None:
    out, path = sys.argv[1], sys.argv[2]
    dist.init_process_group("gloo")
    rank = dist.get_rank()
    tokenizer = AutoTokenizer.from_pretrained(path)
    plain = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    for layer in model.model.layers:
        fully_shard(layer)
    fully_shard(model)

    # processes generate different lengths: 3 tokens on rank 0, 12 on rank 1
    prompts = [tokenizer.encode(f"def rank{rank}_{i}():") for i in range(3)]
    params = [SamplingParams(max_tokens=3 + 9 * rank, temperature=0.0, ignore_eos=True)] * 3
    engine = InProcessEngine(model, tokenizer)
    with full_weights(model) as policy:
        sharded_output = [g.token_ids for g in engine.generate_batch(prompts, params)]
        pushed = {name: t.clone() for name, t in merged_named_weights(policy)}
    plain_output = [g.token_ids for g in InProcessEngine(plain, tokenizer).generate_batch(prompts, params)]
    expected = dict(plain.named_parameters())

    sharded_after = all(isinstance(p, DTensor) for p in model.parameters())
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    ids = torch.tensor([prompts[0] + sharded_output[0]])
    loss = model(input_ids=ids, labels=ids).loss
    loss.backward()
    optimizer.step()
    with full_weights(model) as policy:
        again = [g.token_ids for g in engine.generate_batch(prompts, params)]
        trained = sum(p.double().sum().item() for p in policy.parameters())
    checksums = [None, None]
    dist.all_gather_object(checksums, trained)

    result = {
        "rank": rank,
        "sharding": sharding_of(model),
        "lengths": [len(ids) for ids in sharded_output],
        "same_as_unsharded": sharded_output == plain_output,
        "pushed_names_match": sorted(pushed) == sorted(expected),
        "pushed_equal": all(torch.equal(pushed[n], expected[n].detach()) for n in expected if n in pushed),
        "sharded_after": sharded_after,
        "loss": loss.item(),
        "lengths_after_step": [len(ids) for ids in again],
        "checksums_after_step": checksums,
        "weights_moved": trained != sum(p.double().sum().item() for p in plain.parameters()),
    }
    with open(os.path.join(out, f"rank{rank}.json"), "w") as handle:
        json.dump(result, handle)
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
