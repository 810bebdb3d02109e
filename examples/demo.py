"""The evaluation demo (``nox -s demo_eval``), end to end, on any machine: evaluate a
policy on an environment.

Without arguments, the policy is the Wordle reference solver (an entropy-greedy algorithm)
served by a local OpenAI-compatible server on 127.0.0.1, so the whole path runs offline:
environment loading, the multi-turn game loop over HTTP, scoring, the summary and saved
results. With a model, the same evaluation runs against a real endpoint:

    python examples/demo.py                                   # reference solver, offline
    python examples/demo.py --model gpt-4.1-mini              # needs $OPENAI_API_KEY
    python examples/demo.py --model my-model --base-url http://127.0.0.1:8000/v1
"""

from __future__ import annotations

import argparse
import sys


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", default="vf-wordle")
    parser.add_argument("--model", default=None, help="evaluate this model instead of the solver")
    parser.add_argument("--base-url", default=None)
    parser.add_argument("-n", "--num-examples", type=int, default=20)
    parser.add_argument("-r", "--rollouts-per-example", type=int, default=2)
    args = parser.parse_args()

    from verifiers.cli.eval import main as vf_eval

    common = ["-n", str(args.num_examples), "-r", str(args.rollouts_per_example), "-s"]
    if args.model:
        extra = ["-b", args.base_url] if args.base_url else []
        return vf_eval([args.env, "-m", args.model, *extra, *common])

    if args.env not in ("vf-wordle", "wordle"):
        print("demo: without --model only vf-wordle has a built-in reference policy.", file=sys.stderr)
        return 2
    from verifiers.testing import ScriptedServer
    from vf_wordle.solver import make_solver_handler

    print("Serving the Wordle reference solver as an OpenAI-compatible model on 127.0.0.1 ...",
          file=sys.stderr)
    with ScriptedServer(handler=make_solver_handler(), model_name="wordle-solver",
                        record_requests=False) as server:
        return vf_eval([args.env, "-m", "wordle-solver", "-b", server.base_url, *common])


if __name__ == "__main__":
    raise SystemExit(main())
