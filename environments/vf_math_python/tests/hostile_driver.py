"""Runs the hostile programs as whoever starts it (the unprivileged half of the suite).

Usage: ``python hostile_driver.py '<json: {"values": {...}}>'``; prints one JSON object:
``refusal`` (the message of the default sandbox, which needs a cgroup, when it refuses;
``null`` when it runs), ``resource_limits`` (the mode the programs then ran under) and
``results`` (see :func:`hostile_programs.run_all`).
"""

from __future__ import annotations

import json
import sys
import warnings

from hostile_programs import run_all

from vf_math_python.errors import SandboxSetupError
from vf_math_python.sandbox import PythonSandbox


def main() -> int:
    request = json.loads(sys.argv[1])
    refusal = None
    mode = "cgroup"
    try:
        PythonSandbox()
    except SandboxSetupError as exc:
        refusal, mode = str(exc), "rlimit"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        results = run_all(request["values"], (False, True), mode)
    json.dump({"refusal": refusal, "resource_limits": mode, "results": results}, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
