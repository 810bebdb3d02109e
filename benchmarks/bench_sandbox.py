"""The python tool's sandbox: a fresh sandboxed call against a warm persistent call, and a
bare ``python -c pass`` as the floor, all measured in the same run.

    python benchmarks/bench_sandbox.py [--json] [--before DIR]

``--before DIR``: also measure the ``vf_math_python`` package found in DIR (e.g. an older
revision: ``git archive <rev> environments/vf_math_python | tar -x -C /tmp/old`` then
``--before /tmp/old/environments/vf_math_python``), side by side with this one, in
interleaved rounds (``--rounds``). Medians; these machines are shared and noisy, so compare
columns of one run, not runs.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
PACKAGE = HERE.parent / "environments" / "vf_math_python"


def measure(fresh_calls: int, warm_calls: int) -> dict[str, float]:
    """Runs in the interpreter whose ``vf_math_python`` is being measured."""
    import warnings

    from vf_math_python.sandbox import PythonSandbox, SandboxLimits

    limits = SandboxLimits(timeout=10)
    options = {}
    try:
        PythonSandbox(limits)
    except Exception as exc:  # e.g. no cgroup for this user: the explicit weaker mode
        if type(exc).__name__ != "SandboxSetupError":
            raise
        options = {"resource_limits": "rlimit"}
        warnings.simplefilter("ignore", RuntimeWarning)

    def fresh(code: str) -> float:
        start = time.perf_counter()
        with PythonSandbox(limits, **options) as box:
            result = box.run(code)
        assert result.ok, result.error
        return time.perf_counter() - start

    fresh("x = 1")  # first start: probes, filter compilation, page cache
    fresh_s = [fresh("x = 1") for _ in range(fresh_calls)]
    sympy_s = [fresh("import sympy") for _ in range(max(3, fresh_calls // 4))]
    with PythonSandbox(limits, persistent=True, **options) as box:
        box.run("x = 0")
        warm_s = []
        for _ in range(warm_calls):
            start = time.perf_counter()
            result = box.run("x += 1")
            warm_s.append(time.perf_counter() - start)
            assert result.ok, result.error
    return {"fresh_call_ms": 1000 * statistics.median(fresh_s),
            "fresh_sympy_call_ms": 1000 * statistics.median(sympy_s),
            "warm_call_ms": 1000 * statistics.median(warm_s)}


def run_for(package_dir: Path, fresh_calls: int, warm_calls: int) -> dict[str, float]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(package_dir), env.get("PYTHONPATH", "")])
    code = (f"import json, sys; sys.path.insert(0, {str(HERE)!r}); import bench_sandbox; "
            f"print(json.dumps(bench_sandbox.measure({fresh_calls}, {warm_calls})))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         check=False)
    if out.returncode != 0:
        raise SystemExit(f"measuring {package_dir} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def bare_python_ms(repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-I", "-c", "pass"], check=True)
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON line only")
    parser.add_argument("--before", type=Path, help="folder holding an older vf_math_python")
    parser.add_argument("--fresh-calls", type=int, default=20)
    parser.add_argument("--warm-calls", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    row: dict[str, object] = {"bench": "sandbox",
                              "bare_python_ms": round(bare_python_ms(args.fresh_calls), 2)}
    columns = [("now", PACKAGE)] + ([("before", args.before)] if args.before else [])
    rounds: dict[str, list[dict[str, float]]] = {name: [] for name, _ in columns}
    for i in range(args.rounds):
        for name, folder in columns if i % 2 == 0 else columns[::-1]:
            rounds[name].append(run_for(folder, args.fresh_calls, args.warm_calls))
    for name, results in rounds.items():
        row[name] = {k: round(statistics.median(r[k] for r in results), 3) for k in results[0]}
    row["fresh_over_bare_python"] = round(
        row["now"]["fresh_call_ms"] / row["bare_python_ms"], 2)  # type: ignore[index]
    if args.json:
        print(json.dumps(row))
        return
    print(f"bare `python -I -c pass`: {row['bare_python_ms']} ms")
    print(f"{'':<10} {'fresh call':>12} {'fresh + import sympy':>22} {'warm call':>12}")
    for name, _ in columns:
        n = row[name]
        print(f"{name:<10} {n['fresh_call_ms']:>9.1f} ms {n['fresh_sympy_call_ms']:>19.1f} ms "  # type: ignore[index]
              f"{n['warm_call_ms']:>9.3f} ms")  # type: ignore[index]
    print(json.dumps(row))


if __name__ == "__main__":
    main()
