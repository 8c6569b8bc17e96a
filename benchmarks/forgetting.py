"""Does the published direction reproduce here: does full fine-tuning forget more than LoRA?
(Biderman et al. 2024, "LoRA learns less and forgets less".)

Trains `lora` and `full-ft` on legal-qa long enough to matter on this CPU (`--steps`, default 200
optimizer steps of 8 rows: about 9 epochs of the train split, past the default 24-step CPU cap),
each at its CPU learning rate, one seed, and measures forgetting the harness's way: the general
retention suite as plain text, per-byte choice log-likelihood, byte-identical requests for base and
adapted model; accuracy change with a paired 95% interval, knowledge lost and gained, general-text
cross-entropy change. Early stopping is off (patience above the step count) so both train the
same number of steps. Reports what it finds, whichever way it goes.

    python benchmarks/forgetting.py [--steps 200] [--strategies lora,full-ft] [--out DIR]

Writes DIR/forgetting.json and .md (default DIR: benchmarks/results); the compare itself goes to a
temporary folder (its cells cached there).
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

import harness


def run(steps: int, strategies: list[str], out: Path) -> Any:
    options = {s: {"max_steps": steps, "cpu_max_steps": steps, "eval_every": max(1, steps // 4),
                   "patience": steps} for s in strategies}
    config = {"suite": "legal-qa", "strategies": strategies, "out": str(out), "options": options}
    return harness.compare(config)


def rows(run_: Any) -> list[dict[str, Any]]:
    from harness.decide.analysis import analyze

    analysis = analyze(list(run_.records))
    out = []
    for s in analysis.summaries:
        f = s.forgetting
        if s.status != "ok" or f is None or f.accuracy_pt is None:
            continue
        est = lambda e: None if e is None else {"mean": e.mean, "low": e.low, "high": e.high}  # noqa: E731
        out.append({"strategy": s.strategy, "steps": s.budget.steps if s.budget else None,
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
    lines = [f"Forgetting after {result['steps']} training steps on legal-qa ({result['machine']}, seed 0, "
             f"{result['wall_s']:.0f} s). Retention: {result['retention']}.", "",
             "| strategy | steps | trainable params | legal-qa score | forgetting pt (base - adapted) | knowledge lost "
             "| knowledge gained | Δ CE nats/token |", "|---|---|---|---|---|---|---|---|"]
    for r in result["rows"]:
        lines.append(f"| {r['strategy']} | {r['steps']} | {r['trainable_params']:,} | {fmt(r['score'], 3)} | "
                     f"{fmt(r['forgetting_pt'])} | {pct(r['knowledge_lost'])} | {pct(r['knowledge_gained'])} | "
                     f"{fmt(r['ce_delta'], 3)} |")
    lines += ["", f"Verdict: {result['verdict']}."]
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--strategies", default="lora,full-ft")
    ap.add_argument("--work", type=Path, default=None, help="Output folder of the compare (default: a temp dir).")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = ap.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="harness-forgetting-"))
    t0 = time.perf_counter()
    done = run(args.steps, args.strategies.split(","), work)
    found = rows(done)
    result = {"steps": args.steps, "machine": f"{platform.machine()}, {platform.processor() or 'CPU'}",
              "wall_s": time.perf_counter() - t0, "run": str(done.folder), "rows": found, "verdict": verdict(found),
              "retention": "general (500 four-choice questions, 115 paragraphs), plain text, per-byte choice"}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "forgetting.json").write_text(json.dumps(result, indent=1))
    (args.out / "forgetting.md").write_text(markdown(result))
    print(markdown(result))


if __name__ == "__main__":
    main()
