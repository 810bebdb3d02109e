"""Cold import time of `import verifiers as vf` (and of the openai client, for scale),
best of several fresh interpreters.

    python benchmarks/bench_import.py
"""

from __future__ import annotations

import json
import subprocess
import sys
import time


def cold(statement: str, repeats: int = 7) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", statement], check=True)
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    empty = cold("pass")
    vf_s = cold("import verifiers") - empty
    openai_s = cold("import openai") - empty
    print(json.dumps({
        "bench": "import", "import_verifiers_s": round(vf_s, 3),
        "import_openai_s": round(openai_s, 3), "ratio_to_openai": round(vf_s / openai_s, 2),
        "goal_s": 0.3,
    }))


if __name__ == "__main__":
    main()
