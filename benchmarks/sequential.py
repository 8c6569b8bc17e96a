"""Sequential fine-tuning on legal-qa's two tasks: the continual-learning forgetting matrix (rows: the
model before training and after each stage; columns: each task's dev score with its main metric),
each entry with a 95% bootstrap interval over the dev items, and per task what its own stage taught
(after its stage minus before) and what the later stage took away (final minus after its stage), with
paired 95% intervals (the same items in every row).

    python benchmarks/sequential.py [--method full-ft] [--steps 64] [--out /tmp/bench-seq]

Runs `harness.compare` from Python (one cell: `method` with schedule = "sequential", seed 0, `steps`
optimizer steps of 8 rows shared by the stages in proportion to their train rows, early stopping off,
each stage's best dev checkpoint kept), reads the matrix from the record and writes
benchmarks/results/sequential.json and .md.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

RESULTS = Path(__file__).parent / "results"


def ci(items: list[float], seed: int = 0) -> dict[str, float]:
    from harness.core.stats import bootstrap_ci

    c = bootstrap_ci(items, seed=seed)
    return {"mean": c.mean, "low": c.low, "high": c.high, "n": c.n}


def paired(a: list[float], b: list[float], task: str) -> dict[str, float]:
    """a minus b on the same items, with its paired 95% interval."""
    from harness.core.inference import compare

    c = compare("a", {task: np.asarray([a], dtype=float)}, "b", {task: np.asarray([b], dtype=float)}, margin=0.0)
    return {"mean": c.diff, "low": c.low, "high": c.high, "p": c.p_value}


def analyse(m: Any) -> dict[str, Any]:
    """The matrix with intervals, and each task's gain from its stage and loss after it."""
    cells = [[ci(list(m.items[i][j])) for j in range(len(m.tasks))] for i in range(len(m.stages))]
    per_task = []
    for j, task in enumerate(m.tasks):
        own = m.stages.index(task) if task in m.stages else None
        if own is None:
            continue
        entry: dict[str, Any] = {"task": task, "metric": m.metrics[j], "split": m.splits[j],
                                 "learned": paired(list(m.items[own][j]), list(m.items[0][j]), task)}
        if own < len(m.stages) - 1:
            entry["forgotten"] = paired(list(m.items[-1][j]), list(m.items[own][j]), task)
        per_task.append(entry)
    return {"stages": list(m.stages), "tasks": list(m.tasks), "metrics": list(m.metrics), "splits": list(m.splits),
            "scores": [list(r) for r in m.scores], "cells": cells, "per_task": per_task}


def fmt(e: dict[str, float], signed: bool = False) -> str:
    f = "+.3f" if signed else ".3f"
    return f"{e['mean']:{f}} [{e['low']:{f}}, {e['high']:{f}}]"


def markdown(result: dict[str, Any]) -> str:
    a = result["matrix"]
    head = [f"{t} ({m}, {s}, n={c['n']})" for t, m, s, c in zip(a["tasks"], a["metrics"], a["splits"], a["cells"][0],
                                                                   strict=True)]
    lines = [f"# Sequential fine-tuning: the forgetting matrix (legal-qa, {result['model']}, CPU)", "",
             f"Command: `{result['command']}` ({result['wall_s'] / 60:.0f} min on the shared 2-core CPU).", "",
             f"`{result['method']}` with `schedule = \"sequential\"`: {result['steps']} optimizer steps of 8 rows "
             f"shared by the stages in proportion to their train rows ({result['stage_steps']}), early stopping "
             "off, each stage's best dev checkpoint kept; seed 0. Rows: the model before training and after each "
             "stage; columns: each task on its dev split with its main metric, mean [95% bootstrap interval over "
             "the items].", "",
             "| after | " + " | ".join(head) + " |", "|---|" + "---|" * len(head)]
    for stage, row in zip(a["stages"], a["cells"], strict=True):
        lines.append(f"| {stage} | " + " | ".join(fmt(c) for c in row) + " |")
    lines += ["", "Per task, paired on the same items: what its own stage taught (after it minus before) and what "
              "the later stage took away (final minus after its own stage; negative: forgotten).", "",
              "| task | learned [95% CI] | p | forgotten by later stages [95% CI] | p |", "|---|---|---|---|---|"]
    for t in a["per_task"]:
        later = t.get("forgotten")
        lines.append(f"| {t['task']} | {fmt(t['learned'], True)} | {t['learned']['p']:.3f} | "
                     + (f"{fmt(later, True)} | {later['p']:.3f} |" if later else "– (last stage) | – |"))
    final = result["test"]
    lines += ["", "The final model on the test split (the cell's record): "
              + ", ".join(f"{t} {v['mean']:.3f} [{v['low']:.3f}, {v['high']:.3f}] (n={v['n']})"
                          for t, v in final.items()) + ".",
              "", *result["verdict"]]
    return "\n".join(lines) + "\n"


def verdict(result: dict[str, Any]) -> list[str]:
    out = []
    for t in result["matrix"]["per_task"]:
        later = t.get("forgotten")
        if later is None:
            continue
        shown = later["high"] < 0
        out.append(f"{t['task']}: {later['mean']:+.3f} {t['metric']} after the later stage "
                   + ("(an interval below 0: forgotten)" if shown else "(an interval that includes 0: no forgetting "
                      "shown at this sample size)") + f", against {t['learned']['mean']:+.3f} learned in its stage.")
    out.append("Dev splits are small (tens of items): one item moves a column by several points, so only large "
               "changes clear their intervals. One seed.")
    return out


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--method", choices=["lora", "full-ft"], default="full-ft")
    parser.add_argument("--steps", type=int, default=64)
    parser.add_argument("--out", type=Path, default=Path("/tmp/bench-seq"))
    args = parser.parse_args(argv)
    from harness_strategies.schedules import split_steps, trained_tasks

    import harness
    from harness.data.catalog import load_suite

    options = {"schedule": "sequential", "max_steps": args.steps, "cpu_max_steps": args.steps, "eval_every": 10,
               "patience": args.steps}
    t0 = time.perf_counter()
    run = harness.compare({"suite": "legal-qa", "strategies": [args.method], "seeds": [0], "out": str(args.out),
                           "options": {args.method: options}})
    rec = next((r for r in run.records if r.status == "ok" and r.adapt.continual), None)
    if rec is None:
        raise SystemExit(f"error: the cell did not finish: {[(r.status, r.error) for r in run.records]}")
    m = rec.adapt.continual
    rows = [len(t.train) for t in trained_tasks(load_suite("legal-qa"))]
    test = {t.task: ci([p.scores[str(t.main_metric)] for p in rec.predictions if p.task == t.task])
            for t in rec.tasks if t.main_metric}
    result: dict[str, Any] = {
        "command": f"python benchmarks/sequential.py --method {args.method} --steps {args.steps}",
        "method": args.method, "steps": args.steps, "stage_steps": dict(zip(m.stages[1:], split_steps(args.steps, rows),
                                                                            strict=True)),
        "model": rec.model, "run": str(run.folder), "wall_s": time.perf_counter() - t0,
        "train_steps": rec.adapt.extras.get("train_steps"), "stage_eval_s": rec.adapt.extras.get("stage_eval_s"),
        "matrix": analyse(m), "test": test}
    result["verdict"] = verdict(result)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "sequential.json").write_text(json.dumps(result, indent=2) + "\n")
    (RESULTS / "sequential.md").write_text(markdown(result))
    print((RESULTS / "sequential.md").read_text())


if __name__ == "__main__":
    main(sys.argv[1:])
