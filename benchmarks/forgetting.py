"""Does the published direction reproduce here: does full fine-tuning forget more than LoRA?
(Biderman et al. 2024, "LoRA learns less and forgets less".)

Trains `lora` and `full-ft` on legal-qa long enough to matter on this CPU (`--steps`, default 200
optimizer steps of 8 rows: about 9 epochs of the train split, past the default 24-step CPU cap),
each at its CPU learning rate, one seed, and measures forgetting the harness's way: the general
retention suite as plain text, per-byte choice log-likelihood, byte-identical requests for base and
adapted model; accuracy change with a paired 95% interval, knowledge lost and gained, general-text
cross-entropy change. Early stopping is off (patience above the step count) so both train the
same number of steps. `--keep last` (default) evaluates the weights after the last step (one dev
evaluation, at the end); `--keep best` the harness's own policy, the best of 4 dev evaluations, which
may be an early step. Reports what it finds, whichever way it goes.

    python benchmarks/forgetting.py [--steps 200] [--keep last|best] [--strategies lora,full-ft] [--out DIR]

Writes DIR/forgetting.json and .md, or forgetting_best.* (default DIR: benchmarks/results); the compare itself goes to a
temporary folder (its cells cached there).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import harness


def run(steps: int, strategies: list[str], out: Path, keep: str) -> Any:
    """`keep`: best (the harness's policy: the best of 4 dev evaluations) or last (one dev evaluation, at
    the end, so the weights evaluated are those after every step)."""
    every = steps if keep == "last" else max(1, steps // 4)
    options = {s: {"max_steps": steps, "cpu_max_steps": steps, "eval_every": every, "patience": steps}
               for s in strategies}
    config = {"suite": "legal-qa", "strategies": strategies, "out": str(out), "options": options}
    return harness.compare(config)


def cells_wall(run_: Any) -> float:
    """Seconds the cells of a run spent, all phases."""
    return float(sum(sum(r.phase_s.values()) for r in run_.records))


def evaluated_step(run_: Any, cell_id: str) -> int | None:
    """The optimizer step whose weights were evaluated: the best dev loss of the cell's training curve."""
    curve = run_.folder.parent / "cells" / cell_id / "train" / "curve.json"
    if not curve.is_file():
        return None
    dev = [r for r in json.loads(curve.read_text())["curve"] if "dev_loss" in r]
    return int(min(dev, key=lambda r: r["dev_loss"])["step"]) if dev else None


def rows(run_: Any) -> list[dict[str, Any]]:
    from harness.decide.analysis import analyze

    analysis = analyze(list(run_.records))
    out = []
    cells = {r.strategy: r.cell_id for r in run_.records}
    for s in analysis.summaries:
        f = s.forgetting
        if s.status != "ok" or f is None or f.accuracy_pt is None:
            continue
        est = lambda e: None if e is None else {"mean": e.mean, "low": e.low, "high": e.high}  # noqa: E731
        out.append({"strategy": s.strategy, "steps": s.budget.steps if s.budget else None,
                    "evaluated_step": evaluated_step(run_, cells[s.strategy]),
                    "trainable_params": s.trainable_params, "score": est(s.score),
                    "forgetting_pt": est(f.accuracy_pt), "knowledge_lost": est(f.lost),
                    "knowledge_gained": est(f.gained), "ce_delta": est(f.ce_delta)})
    return out


def verdict(found: list[dict[str, Any]]) -> str:
    by = {r["strategy"]: r for r in found}
    if "lora" not in by or "full-ft" not in by:
        return "needs both lora and full-ft"
    lo, ft = by["lora"]["forgetting_pt"], by["full-ft"]["forgetting_pt"]
    if ft["low"] > lo["high"]:
        return "full-ft forgets more than lora (intervals do not overlap): the published direction reproduces"
    if lo["low"] > ft["high"]:
        return "lora forgets more than full-ft (intervals do not overlap): the published direction does not reproduce"
    return (f"not separated: full-ft {ft['mean']:+.1f} pt [{ft['low']:+.1f}, {ft['high']:+.1f}] vs lora "
            f"{lo['mean']:+.1f} pt [{lo['low']:+.1f}, {lo['high']:+.1f}]; direction "
            f"{'as published' if ft['mean'] > lo['mean'] else 'opposite to published'}, not significant")


def markdown(result: dict[str, Any]) -> str:
    fmt = lambda e, k=1: "–" if e is None else f"{e['mean']:+.{k}f} [{e['low']:+.{k}f}, {e['high']:+.{k}f}]"  # noqa: E731
    pct = lambda e: "–" if e is None else f"{100 * e['mean']:.1f}% [{100 * e['low']:.1f}, {100 * e['high']:.1f}]"  # noqa: E731
    kept = {"best": "the best of 4 dev evaluations (the harness's checkpoint policy)",
            "last": "the last (one dev evaluation, at the end)"}[result["keep"]]
    lines = [f"Forgetting after {result['steps']} training steps on legal-qa ({result['machine']}, seed 0, "
             f"{result['wall_s']:.0f} s). Retention: {result['retention']}.", "",
             f"Command: `{result['command']}`. Weights evaluated: {kept}; the step is in the table.", "",
             "| strategy | steps | evaluated step | trainable params | legal-qa score | forgetting pt (base - adapted) "
             "| knowledge lost "
             "| knowledge gained | Δ CE nats/token |", "|---|---|---|---|---|---|---|---|---|"]
    for r in result["rows"]:
        step = r.get("evaluated_step") or "–"
        lines.append(f"| {r['strategy']} | {r['steps']} | {step} | {r['trainable_params']:,} | {fmt(r['score'], 3)} | "
                     f"{fmt(r['forgetting_pt'])} | {pct(r['knowledge_lost'])} | {pct(r['knowledge_gained'])} | "
                     f"{fmt(r['ce_delta'], 3)} |")
    lines += ["", f"Verdict: {result['verdict']}."]
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--strategies", default="lora,full-ft")
    ap.add_argument("--keep", choices=["best", "last"], default="last", help="Weights evaluated: after the last "
                    "step, or the best dev checkpoint (results named forgetting_best.*)")
    ap.add_argument("--from-run", type=Path, default=None, help="Read an earlier compare's run folder (made with "
                    "the same --steps and --keep) instead of running one; its cells' summed phase times are the "
                    "wall time")
    ap.add_argument("--work", type=Path, default=None, help="Output folder of the compare (default: a temp dir).")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = ap.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="harness-forgetting-"))
    t0 = time.perf_counter()
    done = harness.load_run(args.from_run) if args.from_run else run(args.steps, args.strategies.split(","), work,
                                                                      args.keep)
    found = rows(done)
    result = {"steps": args.steps, "keep": args.keep, "command": "python " + " ".join(sys.argv),
              "machine": f"{platform.machine()}, {platform.processor() or 'CPU'}",
              "wall_s": cells_wall(done) if args.from_run else time.perf_counter() - t0,
              "run": str(done.folder), "rows": found, "verdict": verdict(found),
              "retention": "general (500 four-choice questions, 115 paragraphs), plain text, per-byte choice"}
    args.out.mkdir(parents=True, exist_ok=True)
    name = "forgetting" if args.keep == "last" else "forgetting_best"
    (args.out / f"{name}.json").write_text(json.dumps(result, indent=1))
    (args.out / f"{name}.md").write_text(markdown(result))
    print(markdown(result))


if __name__ == "__main__":
    main()
