"""EWC against lora and rehearsal on legal-qa, at an equal step budget: task scores and forgetting
(points lost on the retention suite with 95% intervals, knowledge lost and gained, general-text
cross-entropy change), and each pair's retention difference with a paired interval.

    python benchmarks/ewc.py [--steps 100] [--out /tmp/bench-ewc]

Runs `harness.compare` from Python (strategies lora, rehearsal, ewc, seed 0, default options except the
budget: `steps` optimizer steps of 8 rows each, early stopping off, the best dev checkpoint kept as
always), then reads the records. Writes benchmarks/results/ewc.json and .md. A finished cell is
reused by an identical re-run, so a killed benchmark resumes.
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
STRATEGIES = ("lora", "rehearsal", "ewc")


def budget(steps: int) -> dict[str, Any]:
    """The same budget for every strategy: `steps` steps, never stopped early (patience past the end)."""
    return {"max_steps": steps, "cpu_max_steps": steps, "eval_every": 10, "patience": steps}


def interval(e: Any, scale: float = 1.0) -> dict[str, float] | None:
    return None if e is None else {"mean": e.mean * scale, "low": e.low * scale, "high": e.high * scale}


def task_scores(rec: Any) -> dict[str, dict[str, float]]:
    """Each task's main metric with its 95% bootstrap interval over items."""
    from harness.core.stats import bootstrap_ci

    out = {}
    for t in rec.tasks:
        if t.main_metric is None:
            continue
        ci = bootstrap_ci([p.scores[t.main_metric] for p in rec.predictions if p.task == t.task], seed=rec.seed)
        out[t.task] = {"metric": t.main_metric, "mean": ci.mean, "low": ci.low, "high": ci.high, "n": t.n}
    return out


def row(rec: Any) -> dict[str, Any]:
    from harness.decide.forgetting import forgetting

    f = forgetting([rec])
    extras = rec.adapt.extras
    return {
        "strategy": rec.strategy, "seed": rec.seed, "options": rec.options, "tasks": task_scores(rec),
        "forgetting_pt": interval(f.accuracy_pt if f else None), "knowledge_lost": interval(f.lost if f else None),
        "knowledge_gained": interval(f.gained if f else None), "ce_delta": interval(f.ce_delta if f else None),
        "train_steps": extras.get("train_steps"), "best_dev_loss": extras.get("best_dev_loss"),
        "adapt_wall_s": rec.adapt.wall_s, "trainable_params": rec.adapt.trainable_params,
        "extras": {k: v for k, v in extras.items() if k.startswith(("fisher", "ewc", "replay", "task_rows"))},
        "notes": rec.adapt.notes,
    }


def retained(rec: Any, metric: str) -> dict[str, Any]:
    """task -> (1, items) retention scores of one kind (choices: 1/0 correct; text: cross-entropy)."""
    ret = rec.retention
    return {t.task: np.asarray([ret.items[t.task]], dtype=float) for t in ret.tasks if metric in t.metrics}


def pairs(records: list[Any]) -> list[dict[str, Any]]:
    """a minus b on the retention items (accuracy in points, cross-entropy in nats/token), paired."""
    from harness.core.inference import compare

    out = []
    by = {r.strategy: r for r in records}
    for a, b in (("ewc", "lora"), ("ewc", "rehearsal"), ("rehearsal", "lora")):
        if a not in by or b not in by:
            continue
        acc = compare(a, retained(by[a], "accuracy_norm"), b, retained(by[b], "accuracy_norm"), margin=0.0)
        ce = compare(a, retained(by[a], "cross_entropy"), b, retained(by[b], "cross_entropy"), margin=0.0)
        out.append({"a": a, "b": b, "accuracy_pt": {"mean": 100 * acc.diff, "low": 100 * acc.low,
                                                     "high": 100 * acc.high, "p": acc.p_value},
                    "ce": {"mean": ce.diff, "low": ce.low, "high": ce.high, "p": ce.p_value}})
    return out


def fmt(e: dict[str, float] | None, digits: int = 1) -> str:
    if e is None:
        return "–"
    return f"{e['mean']:+.{digits}f} [{e['low']:+.{digits}f}, {e['high']:+.{digits}f}]"


def lambda_of(rows: list[dict[str, Any]]) -> str:
    """The ewc row's penalty strength, as recorded."""
    return next((f"{r['extras']['ewc_lambda']:g}" for r in rows if "ewc_lambda" in r.get("extras", {})), "?")


def markdown(result: dict[str, Any]) -> str:
    rows, tasks = result["rows"], sorted({t for r in result["rows"] for t in r["tasks"]})
    lines = [f"# EWC vs lora vs rehearsal: forgetting at an equal step budget (legal-qa, {result['model']}, CPU)", "",
             f"Command: `{result['command']}` ({result['wall_s'] / 60:.0f} min on the shared 2-core CPU).", "",
             f"Every strategy: {result['steps']} optimizer steps of 8 rows (about "
             f"{result['steps'] * 8 / 184:.1f} epochs of legal-qa's 184 train rows), early stopping off, the best dev "
             f"checkpoint kept; seed 0; default options otherwise (ewc: LoRA, lambda {lambda_of(rows)}, Fisher from "
             "16 replay paragraphs; rehearsal: 25% replay rows). Forgetting is on the `general` retention suite "
             "(plain text, adapted vs base on the same items): points lost (positive: forgot), knowledge lost "
             "(share of the items the base knew now wrong), gained, and general-text cross-entropy change "
             "(nats/token, positive: worse), each with a 95% interval.", "",
             "| strategy | " + " | ".join(f"{t} [95% CI]" for t in tasks)
             + " | forgetting pt | knowledge lost | knowledge gained | Δ CE | steps | best dev loss | adapt s |",
             "|---|" + "---|" * len(tasks) + "---|---|---|---|---|---|---|"]
    for r in rows:
        cells = [f"{r['tasks'][t]['mean']:.3f} [{r['tasks'][t]['low']:.3f}, {r['tasks'][t]['high']:.3f}]"
                 if t in r["tasks"] else "–" for t in tasks]
        lines.append(f"| {r['strategy']} | " + " | ".join(cells) + f" | {fmt(r['forgetting_pt'])} | "
                     f"{fmt(r['knowledge_lost'], 3)} | {fmt(r['knowledge_gained'], 3)} | {fmt(r['ce_delta'], 3)} | "
                     f"{r['train_steps']:.0f} | {r['best_dev_loss']:.3f} | {r['adapt_wall_s']:.0f} |")
    lines += ["", "Paired differences on the retention items (a minus b; accuracy: positive means a kept more):", "",
              "| a vs b | retention accuracy pt [95% CI] | p | Δ CE nats/token [95% CI] | p |", "|---|---|---|---|---|"]
    for p in result["pairs"]:
        lines.append(f"| {p['a']} vs {p['b']} | {fmt(p['accuracy_pt'])} | {p['accuracy_pt']['p']:.3f} | "
                     f"{fmt(p['ce'], 3)} | {p['ce']['p']:.3f} |")
    return "\n".join([*lines, "", *result["verdict"]]) + "\n"


def verdict(result: dict[str, Any]) -> list[str]:
    """What the figures say, in words computed from them."""
    def shown(e: dict[str, float]) -> bool:
        return e["low"] > 0 or e["high"] < 0

    out = []
    for p in result["pairs"]:
        acc, ce = p["accuracy_pt"], p["ce"]
        out.append(f"{p['a']} vs {p['b']}: retention accuracy {acc['mean']:+.1f} pt "
                   f"({'an interval that excludes 0' if shown(acc) else 'not distinguishable from 0'}), "
                   f"general-text cross-entropy {ce['mean']:+.3f} nats/token "
                   f"({'an interval that excludes 0' if shown(ce) else 'not distinguishable from 0'}).")
    out.append("One seed: the intervals draw items, not training seeds. Adapt seconds are wall times on a "
               "machine shared with other jobs: not a speed comparison.")
    return out


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--out", type=Path, default=Path("/tmp/bench-ewc"))
    args = parser.parse_args(argv)
    import harness

    t0 = time.perf_counter()
    run = harness.compare({"suite": "legal-qa", "strategies": list(STRATEGIES), "seeds": [0], "out": str(args.out),
                           "options": {s: budget(args.steps) for s in STRATEGIES}})
    records = [r for r in run.records if r.status == "ok"]
    if {r.strategy for r in records} != set(STRATEGIES):
        raise SystemExit(f"error: not every cell finished: {[(r.strategy, r.status, r.error) for r in run.records]}")
    result: dict[str, Any] = {
        "command": f"python benchmarks/ewc.py --steps {args.steps}", "steps": args.steps,
        "model": records[0].model, "run": str(run.folder), "wall_s": time.perf_counter() - t0,
        "rows": [row(r) for r in records], "pairs": pairs(records)}
    result["verdict"] = verdict(result)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "ewc.json").write_text(json.dumps(result, indent=2) + "\n")
    (RESULTS / "ewc.md").write_text(markdown(result))
    print((RESULTS / "ewc.md").read_text())


if __name__ == "__main__":
    main(sys.argv[1:])
