"""Wall time of `harness compare` cold (empty model cache: includes the GGUF conversion) and warm
(an identical re-run, which must reuse every cell), side by side in one run.

    python benchmarks/compare_cold_warm.py [--suite legal-qa] [--strategies a,b] [--out DIR]
                                           [--name compare_cold_warm] [--example reports/example]

Writes DIR/<name>.json and .md (default DIR: benchmarks/results). With --example, the cold run's
folder (report.html, report.md, report.json, charts, records) replaces that folder: the README's
example report is the default compare measured here (`make example`).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def timed(cmd: list[str], env: dict[str, str], cwd: Path) -> tuple[float, subprocess.CompletedProcess[str]]:
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True)
    return time.perf_counter() - t0, proc


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--suite", default="legal-qa")
    ap.add_argument("--strategies", default=None, help="Comma-separated; default: compare's own default set.")
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    ap.add_argument("--name", default="compare_cold_warm", help="Result file stem.")
    ap.add_argument("--example", type=Path, default=None, help="Copy the cold run's folder here.")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="harness-bench-"))
    env = {**os.environ, "HARNESS_CACHE": str(work / "cache"), "COLUMNS": "160"}
    cmd = [sys.executable, "-m", "harness", "compare", "--suite", args.suite, "--out", str(work / "reports")]
    if args.strategies:
        cmd += ["--strategies", args.strategies]
    if args.limit:
        cmd += ["--limit", str(args.limit)]
    cold_s, cold = timed(cmd, env, work)
    warm_s, warm = timed(cmd, env, work)
    for p in (cold, warm):
        if p.returncode != 0:
            sys.exit(f"compare failed ({p.returncode}):\n{p.stdout}\n{p.stderr}")
    result = {
        "suite": args.suite, "strategies": args.strategies or "default", "limit": args.limit,
        "cold_s": round(cold_s, 1), "warm_s": round(warm_s, 1),
        "warm_cells_reused": warm.stdout.count("reused"),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs",
        "cold_summary": cold.stdout[-3000:],
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{args.name}.json").write_text(json.dumps(result, indent=1))
    md = (f"| run | wall s |\n|---|---|\n| cold (converts the model) | {result['cold_s']} |\n"
          f"| warm (identical re-run, {result['warm_cells_reused']} cells reused) | {result['warm_s']} |\n")
    (args.out / f"{args.name}.md").write_text(md)
    print(md)
    print(cold.stdout[-3000:])
    if args.example:
        keep_example(work / "reports" / args.suite, args.example)
    shutil.rmtree(work, ignore_errors=True)  # the cells and converted model: a GB or more


def keep_example(runs: Path, dest: Path) -> None:
    """The first (cold) run folder under `runs` becomes `dest`, replacing what was there."""
    cold = sorted(p.parent for p in runs.glob("*/report.json"))[0]  # run ids start with their start time
    shutil.rmtree(dest, ignore_errors=True)
    shutil.copytree(cold, dest)
    print(f"example report: {dest}")


if __name__ == "__main__":
    main()
