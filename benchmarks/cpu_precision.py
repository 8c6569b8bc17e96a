"""The default compare computed in fp32 and in bf16 (harness.core.precision) on this CPU, side by side in
one run: wall time, and what the precision changes in what the card reads: each strategy's score with
its interval, the paired difference bf16 - fp32 on the same items with its interval, the share of items
whose output is the same, forgetting, and the decision.

    python benchmarks/cpu_precision.py [--suite legal-qa] [--strategies a,b] [--out DIR]

Each run is `harness compare` in its own process from an empty cache (`HARNESS_PRECISION=fp32`, then
`bf16`), fp32 first. Writes DIR/cpu_precision.json and .md (default DIR: benchmarks/results).
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
from typing import Any

PRECISIONS = ("fp32", "bf16")


def run_compare(precision: str, suite: str, strategies: str | None, limit: int | None, work: Path) -> dict[str, Any]:
    env = {**os.environ, "HARNESS_CACHE": str(work / precision / "cache"), "HARNESS_PRECISION": precision,
           "COLUMNS": "160"}
    out = work / precision / "reports"
    cmd = [sys.executable, "-m", "harness", "compare", "--suite", suite, "--out", str(out)]
    cmd += ["--strategies", strategies] if strategies else []
    cmd += ["--limit", str(limit)] if limit else []
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.exit(f"compare ({precision}) failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    run_dir = next(p.parent for p in out.glob(f"{suite}/*/report.json"))
    report = json.loads((run_dir / "report.json").read_text())
    records = {c["strategy"]: json.loads((run_dir / c["record"]).read_text()) for c in report["cells"]}
    return {"wall_s": round(wall, 1), "report": report, "records": records}


def items(record: dict[str, Any], metrics: dict[str, str]) -> dict[str, tuple[float, str]]:
    """Per item: its task's main score and the output."""
    return {f"{p['task']}/{p['example_id']}": (float(p["scores"][metrics[p["task"]]]), p["output"])
            for p in record["predictions"]}


def compare_strategy(name: str, runs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    from harness.core.stats import bootstrap_ci

    arms = {p: next(a["s"] for a in runs[p]["report"]["results"]["arms"] if a["s"]["strategy"] == name)
            for p in PRECISIONS}
    metrics = runs["fp32"]["report"]["results"]["task_metrics"]
    a, b = (items(runs[p]["records"][name], metrics) for p in PRECISIONS)
    common = sorted(set(a) & set(b))
    diff = bootstrap_ci([b[k][0] - a[k][0] for k in common])
    row: dict[str, Any] = {"strategy": name, "n_items": len(common),
                           "same_output": round(sum(a[k][1] == b[k][1] for k in common) / max(1, len(common)), 3),
                           "diff": {"mean": diff.mean, "low": diff.low, "high": diff.high}}
    for p in PRECISIONS:
        s = arms[p]
        row[p] = {"score": s["score"], "forgetting_pt": s.get("forgetting_pt"), "p50_ms": s.get("p50_ms"),
                  "adapt_s": s.get("adapt_s")}
    return row


def markdown(result: dict[str, Any]) -> str:
    def ci(s: dict[str, float]) -> str:
        return f"{s['mean']:.3f} [{s['low']:.3f}, {s['high']:.3f}]"

    def pt(x: float | None) -> str:
        return "n/a" if x is None else f"{x:+.1f}"

    runs = result["runs"]
    out = ["# The default compare in fp32 and in bf16 on this CPU", "",
           f"Written by `{result['command']}` on {result['machine']} (suite {result['suite']}, strategies: "
           f"{result['strategies']}, each run from an empty cache in its own process, fp32 first).", "",
           "| | fp32 | bf16 |", "|---|---|---|",
           f"| wall (cold, GGUF conversion included) | {runs['fp32']['wall_s']:.0f} s | "
           f"{runs['bf16']['wall_s']:.0f} s |",
           f"| decision | {runs['fp32']['pick']} | {runs['bf16']['pick']} |", "",
           "| strategy | score fp32 | score bf16 | bf16 - fp32, paired [95% CI] | same output | forgetting pt fp32 | "
           "forgetting pt bf16 | adapt s fp32 | adapt s bf16 |", "|---|---|---|---|---|---|---|---|---|"]
    for r in result["rows"]:
        f, b = r["fp32"], r["bf16"]
        out.append(f"| {r['strategy']} | {ci(f['score'])} | {ci(b['score'])} | {r['diff']['mean']:+.3f} "
                   f"[{r['diff']['low']:+.3f}, {r['diff']['high']:+.3f}] | {r['same_output']:.0%} | "
                   f"{pt(f['forgetting_pt'])} | {pt(b['forgetting_pt'])} | {f['adapt_s']:.0f} | {b['adapt_s']:.0f} |")
    return "\n".join(out) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--suite", default="legal-qa")
    ap.add_argument("--strategies", default=None)
    ap.add_argument("--limit", type=int, default=None, help="Items per task (a quick check; not for results).")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="harness-precision-"))
    try:
        runs = {p: run_compare(p, args.suite, args.strategies, args.limit, work) for p in PRECISIONS}
    finally:
        shutil.rmtree(work, ignore_errors=True)
    names = [c["strategy"] for c in runs["fp32"]["report"]["cells"] if c["status"] == "ok"]
    result = {
        "suite": args.suite, "strategies": args.strategies or "default",
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs",
        "command": " ".join(["python", "benchmarks/cpu_precision.py", *sys.argv[1:]]),
        "runs": {p: {"wall_s": r["wall_s"], "pick": r["report"]["results"]["decision"]["pick"],
                     "rationale": r["report"]["results"]["decision"]["rationale"],
                     "compute_dtype": next(iter(r["records"].values()))["provenance"].get("compute_dtype")}
                 for p, r in runs.items()},
        "rows": [compare_strategy(n, runs) for n in names],
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "cpu_precision.json").write_text(json.dumps(result, indent=1) + "\n")
    (args.out / "cpu_precision.md").write_text(markdown(result))
    print(markdown(result))


if __name__ == "__main__":
    main()
