"""Two-process data-parallel GRPO on a tiny model, run by test_distributed.py under torchrun:

    torchrun --nproc_per_node 2 train_toy_dp.py OUT_DIR MODEL_PATH

Each rank writes its parameter checksum and logged rewards to OUT_DIR/rank<N>.json.
"""

import json
import os
import sys

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

import verifiers as vf
from verifiers_trainer import GRPOConfig, GRPOTrainer


def main() -> None:
    out, path = sys.argv[1], sys.argv[2]
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(path, torch_dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(path)
    targets = set(range(3, len(tokenizer), 10))

    def share(state):
        ids = [t for turn in state["turns"] for t in turn["completion_token_ids"]]
        return sum(t in targets for t in ids) / max(1, len(ids))

    env = vf.SingleTurnEnv(dataset=[{"question": f"def t{i}():"} for i in range(32)],
                           rubric=vf.Rubric(funcs=[share]))
    args = GRPOConfig(
        output_dir=out, per_device_train_batch_size=8, num_generations=4,
        gradient_accumulation_steps=1, max_completion_length=8, learning_rate=3e-3, max_steps=3,
        warmup_steps=0, lr_scheduler_type="constant", beta=0.0, logging_steps=1,
        save_strategy="no", report_to="none", use_cpu=True, seed=0,
    )
    trainer = GRPOTrainer(model=model, processing_class=tokenizer, env=env, args=args)
    trainer.train()
    rank = trainer.accelerator.process_index
    policy = trainer.accelerator.unwrap_model(trainer.model)
    result = {
        "rank": rank,
        "world": trainer.accelerator.num_processes,
        "checksum": sum(p.double().sum().item() for p in policy.parameters()),
        "rewards": [e["reward"] for e in trainer.state.log_history if "reward" in e],
    }
    with open(os.path.join(out, f"rank{rank}.json"), "w") as handle:
        json.dump(result, handle)


if __name__ == "__main__":
    main()
