"""Run benchmarks of two checkouts alternately on this machine and compare their headline medians.

    python bench/compare.py OLD_CHECKOUT NEW_CHECKOUT [--runs 5] [--bench engine service study]

Each run executes ``bench/NAME.py`` of one checkout (old, new, old, new, ...) with that checkout's
source folders first on ``PYTHONPATH``, under that checkout's ``.venv/bin/python`` where it has one
(an older checkout's code can fail on a newer install's entry points) or else this interpreter,
reads its ``RESULT {json}`` line and, at the end, prints per headline figure the median of each
side and new/old (for figures where lower is better, old/new, so that a ratio >= 1 always means the
new checkout is at least as good).  Both checkouts are byte-compiled first, as an install is (so
that neither compiles its sources at each start, even with PYTHONDONTWRITEBYTECODE set), and the
service benchmark takes 20,000 latency calls (its p99 is the 200th slowest).  Ends with ``RESULT {json}``.
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import platform
import statistics
import subprocess
import sys
from pathlib import Path

SOURCE_FOLDERS = ["engine", "providers", "apps", "server", "clients/python"]
HEADLINES: dict[str, dict[str, bool]] = {  # figure -> higher is better
    "engine": {"predictions_per_s": True, "per_model_predictions_per_s": True, "batch_predictions_per_s": True},
    "service": {"unary_predictions_per_s": True, "stream_predictions_per_s": True, "p99_ms": False,
                "cold_start_s": False},
    "study": {"single_predictions_per_s": True, "compare_s": False},
}
# p99 over 20,000 calls (the 200th slowest): over 5,000 it swung by +-30% run to run on a 2-core VM
ARGS = {"engine": [], "service": ["--latency-calls", "20000"], "study": ["--no-ray"]}


def run_once(checkout: Path, bench: str) -> dict[str, float]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(str(checkout / f) for f in SOURCE_FOLDERS if (checkout / f).is_dir())
    own = checkout / ".venv" / "bin" / "python"  # its own installed entry points (providers), when it has them
    python = str(own) if own.is_file() else sys.executable
    done = subprocess.run([python, str(checkout / "bench" / f"{bench}.py"), *ARGS[bench]], cwd=checkout,
                          env=env, capture_output=True, text=True, check=False)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if done.returncode != 0 or not lines:
        raise SystemExit(f"compare: bench/{bench}.py in {checkout} failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    result: dict[str, float] = json.loads(lines[-1][len("RESULT "):])
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("old", type=Path)
    parser.add_argument("new", type=Path)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--bench", nargs="+", default=list(HEADLINES), choices=list(HEADLINES))
    args = parser.parse_args()
    for checkout in (args.old, args.new):
        for folder in [*SOURCE_FOLDERS, "bench"]:
            if (checkout / folder).is_dir():
                compileall.compile_dir(checkout / folder, quiet=1)
    summary: dict[str, dict[str, dict[str, float]]] = {}
    for bench in args.bench:
        seen: dict[str, list[dict[str, float]]] = {"old": [], "new": []}
        for i in range(args.runs):
            for side in ("old", "new"):
                seen[side].append(run_once(getattr(args, side), bench))
                print(f"{bench} run {i + 1}/{args.runs} {side}: "
                      + ", ".join(f"{k}={seen[side][-1].get(k)}" for k in HEADLINES[bench]), flush=True)
        figures = {}
        for figure, higher_better in HEADLINES[bench].items():
            if any(figure not in r for side in seen.values() for r in side):
                continue
            old = statistics.median(r[figure] for r in seen["old"])
            new = statistics.median(r[figure] for r in seen["new"])
            ratio = (new / old) if higher_better else (old / new)
            figures[figure] = {"old_median": old, "new_median": new, "ratio": round(ratio, 3)}
            print(f"{bench}.{figure}: old {old:,.3f}  new {new:,.3f}  ratio {ratio:.3f}")
        summary[bench] = figures
    machine = {"cpus": os.cpu_count(), "python": platform.python_version(), "machine": platform.machine()}
    print("RESULT " + json.dumps({"runs": args.runs, "machine": machine, "benchmarks": summary}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
