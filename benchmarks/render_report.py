"""Rendering the decision report from records: 20 cells x 1,000 items (synthetic, seeded), timed.

    python benchmarks/render_report.py [--cells 20] [--items 1000] [--out DIR]

Times `write_run` (records copied, analysis, decision, charts, markdown and HTML) and a re-render
from disk (`render_run`, what `harness report` does), and the size of report.html. Writes
DIR/render_report.json and .md (default DIR: benchmarks/results). Target: under 5 s and 5 MB.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

from harness.core.records import AdaptReport, CellRecord, LatencySummary, Prediction, Retention, TaskResult

TASKS = (("statute-qa", "short-answer", 0.4), ("clause-type", "classification", 0.4), ("mc", "multiple-choice", 0.2))
WORDS = ("the", "tenant", "shall", "pay", "deposit", "within", "days", "notice", "agreement", "party",
         "governing", "law", "of", "veloria")
COVERAGE = ("seen", "unseen")


def predictions(task: str, kind: str, n: int, skill: float, rng: np.random.Generator) -> list[Prediction]:
    out = []
    for i in range(n):
        right = rng.random() < skill
        text = " ".join(rng.choice(WORDS, size=int(rng.integers(3, 14))))
        scores = ({"exact_match": float(right), "f1": float(right) or float(rng.random() * 0.5)}
                  if kind == "short-answer" else {"accuracy": float(right)})
        out.append(Prediction(f"{task}-{i:04d}", task, text, "gold answer", scores, float(rng.gamma(2, 0.2)),
                              int(rng.integers(40, 400)), int(rng.integers(0, 24)), meta={"coverage": COVERAGE[i % 2]}))
    return out


def cell(strategy: str, seed: int, items: int, rng: np.random.Generator) -> CellRecord:
    skill = 0.3 + 0.5 * rng.random()
    preds, tasks = [], []
    for task, kind, share in TASKS:
        p = predictions(task, kind, int(items * share), skill, rng)
        metric = "f1" if kind == "short-answer" else "accuracy"
        preds += p
        tasks.append(TaskResult(task, kind, len(p), {metric: float(np.mean([x.scores[metric] for x in p]))}))
    curve = tuple({"step": float(s), "train_loss": float(3 - s / 20 + rng.random() * 0.1)} for s in range(0, 40, 2))
    base = (TaskResult("mc", "multiple-choice", 165, {"accuracy": 0.61}),
            TaskResult("text", "language-modeling", 55, {"cross_entropy": 2.87}))
    mine = (TaskResult("mc", "multiple-choice", 165, {"accuracy": 0.61 - rng.random() * 0.05}),
            TaskResult("text", "language-modeling", 55, {"cross_entropy": 2.87 + rng.random() * 0.2}))
    return CellRecord(
        cell_id=f"{strategy}-{seed}", suite="legal-qa", suite_hash="0" * 64, strategy=strategy, options={},
        seed=seed, model="smollm2", limit=None, status="ok", tasks=tuple(tasks), predictions=tuple(preds),
        adapt=AdaptReport(wall_s=float(rng.random() * 600), peak_mem_bytes=3 * 10**9, curve=curve),
        latency=LatencySummary(0.4, 0.9, 0.5, 3.0, 200.0, 10.0, 8), retention=Retention("general", mine, base),
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cells", type=int, default=20)
    ap.add_argument("--items", type=int, default=1000)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = ap.parse_args()
    from harness.report import render_run, write_run

    rng = np.random.default_rng(0)
    records = [cell(f"strategy-{i // 2:02d}", i % 2, args.items, rng) for i in range(args.cells)]
    run = Path(tempfile.mkdtemp(prefix="harness-render-"))
    t0 = time.perf_counter()
    write_run(run, "bench", records, {"max_latency_ms": 800})
    write_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    render_run(run)
    rerender_s = time.perf_counter() - t0
    result = {
        "cells": args.cells, "items_per_cell": args.items, "write_run_s": round(write_s, 2),
        "render_run_s": round(rerender_s, 2), "report_html_mb": round((run / "report.html").stat().st_size / 1e6, 2),
        "report_md_kb": round((run / "report.md").stat().st_size / 1e3, 1),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs",
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "render_report.json").write_text(json.dumps(result, indent=1))
    md = (f"| {args.cells} cells x {args.items} items | value |\n|---|---|\n"
          f"| write_run (records, analysis, decision, charts, md + html) | {result['write_run_s']} s |\n"
          f"| render_run from disk (`harness report`) | {result['render_run_s']} s |\n"
          f"| report.html | {result['report_html_mb']} MB |\n| report.md | {result['report_md_kb']} kB |\n")
    (args.out / "render_report.md").write_text(md)
    print(md)


if __name__ == "__main__":
    main()
