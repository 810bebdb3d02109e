"""The training and evaluation guide, "Using Environments as Reward Functions": generate scored rollouts
with an environment, turn them into token-level samples with ``process_env_results``, and
train on them in your own loop (here: a plain policy-gradient step with a group-mean
baseline, about 20 lines of torch). Also the training guide's "Offline Generation": the rollouts are
saved as a dataset (``make_dataset``) for later use.

The guide generates with ``model="gpt-4.1-mini"``; a loop that trains must generate with the
model it trains, so the client here is the in-process engine over that model
(``verifiers_trainer.InProcessEngine``, an OpenAI-compatible client). With a vf-vllm server
you would push the new weights after each step (``VLLMClient.update_weights``, see
docs/inference.md); ``vf.GRPOTrainer`` does all of this for you.

    python examples/own_training_loop.py --tiny          # tiny offline model, 2 iterations
    python examples/own_training_loop.py                 # SmolLM2-135M-Instruct, 5 iterations
"""

from __future__ import annotations

import argparse
import statistics
from collections import defaultdict

import _stand_ins
import torch

import verifiers as vf
from verifiers_trainer import InProcessEngine


def policy_gradient_loss(model, processed, advantages):
    """-(advantage x log-probability of the sampled completion tokens), averaged over tokens."""
    total, tokens = 0.0, 0
    for sample, advantage in zip(processed, advantages, strict=True):
        ids = torch.tensor([sample["prompt_ids"] + sample["completion_ids"]])
        mask = torch.tensor(sample["completion_mask"], dtype=torch.float32)
        logits = model(input_ids=ids).logits[0, len(sample["prompt_ids"]) - 1:-1].float()
        logps = torch.log_softmax(logits, dim=-1).gather(
            -1, torch.tensor(sample["completion_ids"]).unsqueeze(-1)).squeeze(-1)
        total = total - advantage * (logps * mask).sum()
        tokens += int(mask.sum())
    return total / max(1, tokens)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tiny", action="store_true", help="a tiny offline model, 2 iterations")
    parser.add_argument("--model", default=None, help="a local folder or Hub id (default SmolLM2)")
    parser.add_argument("--iterations", type=int, default=None)
    options = parser.parse_args()
    model_name = options.model or _stand_ins.model_path(options.tiny)
    iterations = options.iterations or (2 if options.tiny else 5)
    prompts_per_step, group_size = 4, 4

    model, tokenizer = vf.get_model_and_tokenizer(model_name)
    client = InProcessEngine(model, tokenizer, model_name="policy")
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5)
    vf_env = vf.load_environment("math-python", use_tools=False, difficulty="easy")
    rows = vf_env.get_dataset(prompts_per_step * iterations, seed=0)
    sampling_args = {"temperature": 1.0, "max_tokens": 16 if options.tiny else 128,
                     "logprobs": True, "return_token_ids": True}  # the sampler's own tokens

    for iteration in range(iterations):
        batch_rows = rows.select(range(iteration * prompts_per_step,
                                       (iteration + 1) * prompts_per_step))
        model.eval()
        # Generate training data with rewards
        results = vf_env.generate(
            batch_rows,
            client=client,
            model="policy",
            rollouts_per_example=group_size,
            sampling_args=sampling_args,
        )

        # Process for training
        processed = vf_env.process_env_results(
            prompts=results["prompts"],
            completions=results["completions"],
            states=results["states"],
            rewards=results["rewards"],
            processing_class=tokenizer,
        )

        # Use in your own training loop: advantage = reward - mean reward of its prompt
        by_example = defaultdict(list)
        for example_id, reward in zip(results["example_ids"], results["rewards"], strict=True):
            by_example[example_id].append(reward)
        advantages = []
        for sample in processed:
            example_id = results["example_ids"][sample["rollout_indices"]]
            advantages.append(sample["rewards"] - statistics.fmean(by_example[example_id]))
        model.train()
        loss = policy_gradient_loss(model, processed, advantages)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        print(f"iteration {iteration}: {len(processed)} samples "
              f"({sum(processed['from_text'])} re-tokenized from text), "
              f"mean reward {statistics.fmean(results['rewards']):.3f}, loss {loss.item():.4f}")

    # Save for training (the training guide, "Offline Generation")
    dataset = vf_env.make_dataset(results)
    dataset.to_json("training_data.jsonl")
    print(f"saved {len(dataset)} rollouts to training_data.jsonl")


if __name__ == "__main__":
    main()
