"""The training and evaluation guide, "Environment Evaluation" (and its "OpenAI-Compatible
Client Integration"): evaluate a model on vf-math-python, generate training data, make a dataset.

The snippet's code is below as written, with two substitutions the machine forces:
``OpenAI()`` becomes a client of a local OpenAI-compatible server whose "model" solves the
arithmetic questions with the environment's sandboxed ``python`` tool (a tool call, then a
boxed answer), and ``dataset_name="math"`` (competition MATH from the Hub) becomes the
offline ``"arithmetic"`` set. ``push_to_hub`` only happens with ``--push-to-hub``.

    python examples/evaluate_math_python.py                          # scripted solver, offline
    python examples/evaluate_math_python.py -n 5 -r 1 --n-samples 10 # a quick run
    python examples/evaluate_math_python.py --model gpt-4.1-mini     # OpenAI, $OPENAI_API_KEY
    python examples/evaluate_math_python.py --model my-model --base-url http://127.0.0.1:8000/v1
    python examples/evaluate_math_python.py --local -n 5             # SmolLM2 served locally
"""

from __future__ import annotations

import argparse
import contextlib

import _stand_ins

import verifiers as vf


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    _stand_ins.add_endpoint_flags(parser)
    parser.add_argument("--local", action="store_true",
                        help="serve SmolLM2-135M-Instruct locally (vf-vllm, else in process)")
    parser.add_argument("--dataset", default="arithmetic", help="arithmetic, gsm8k or math")
    parser.add_argument("-n", "--num-examples", type=int, default=100)
    parser.add_argument("-r", "--rollouts-per-example", type=int, default=3)
    parser.add_argument("--n-samples", type=int, default=1000)
    parser.add_argument("--push-to-hub", action="store_true")
    parser.add_argument("--hub-name", default="my-training-data")
    options = parser.parse_args()

    with contextlib.ExitStack() as stack:
        if options.local:
            from verifiers_trainer import serve_locally

            # tool calls need vLLM's parser (ignored by the in-process engine)
            tool_flags = ["--enable-auto-tool-choice", "--tool-call-parser", "hermes"]
            endpoint = stack.enter_context(serve_locally("default", vllm_args=tool_flags))
            client, model = endpoint.client, endpoint.model_name
        else:
            client, model = stack.enter_context(
                _stand_ins.policy_client(options, _stand_ins.arithmetic_solver))

        # -- the training and evaluation guide -------------------------------------------------
        # Create or load environment
        vf_env = vf.load_environment("math-python", dataset_name=options.dataset,
                                     num_train_examples=1000)

        # Evaluate model performance
        results = vf_env.evaluate(
            client=client,
            model=model,
            num_examples=options.num_examples,
            rollouts_per_example=options.rollouts_per_example,
        )

        print(f"Average reward: {sum(results['rewards']) / len(results['rewards'])}")
        print(f"Correct answers: {sum(1 for r in results['rewards'] if r > 0.8)}")

        # Generate training data
        results = vf_env.generate(
            client=client,
            model=model,
            n_samples=options.n_samples,
        )

        # Save results for future use
        dataset = vf_env.make_dataset(results, push_to_hub=options.push_to_hub,
                                      hub_name=options.hub_name)
        # -------------------------------------------------------------------------------------

        summary = results.summary()
        print(f"Generated {len(dataset)} rollouts: mean reward {summary['reward']['mean']:.3f}, "
              f"{summary['num_failed']} failed; columns {dataset.column_names}")
        tool_calls = summary["metrics"].get("total_tool_calls", {}).get("mean")
        if tool_calls is not None:
            print(f"Tool calls per rollout: {tool_calls:.2f}")


if __name__ == "__main__":
    main()
