"""When would the answer change: sweep each decision constraint alone over its range and re-decide from
an existing run's records (no model runs, no retraining), with the run's own constraints for the rest.

    python benchmarks/decision_sweeps.py [RUN_DIR] [--out benchmarks/results]

RUN_DIR defaults to the newest run under reports/legal-qa/. Writes decision_sweeps.json (the pick at
every grid point and each break point), decision_sweeps.md (the break-point table) and
decision_sweeps.svg (the pick along each constraint). Each break point is located by bisection
(harness.decide.sweeps) and set beside the figure that should explain it, computed independently: the
crossing of two total-cost lines (the cost model's break-even) or the measured figure a limit crosses;
`agrees` says whether the two match (within 1e-6 relative, or one month).
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

from harness.api import load_run
from harness.decide.analysis import analyze
from harness.decide.arms import with_arms
from harness.decide.decision import Constraints, recommend
from harness.decide.sweeps import DIMENSIONS, BreakPoint, Dimension, break_points, grid
from harness.report.charts import Band, bands
from harness.report.results import plain


def newest_run(root: Path) -> Path:
    runs = sorted(p.parent for p in root.glob("*/report.json"))
    if not runs:
        raise SystemExit(f"no run under {root}: run `harness compare --suite legal-qa` first")
    return runs[-1]


def agrees(d: Dimension, bp: BreakPoint) -> bool | None:
    if bp.explained is None:
        return None
    if d.integer:
        return bp.value == math.ceil(bp.explained - 1e-9)
    return abs(bp.value - bp.explained) <= 1e-6 * max(abs(bp.explained), 1e-9)


def axis(d: Dimension, v: float) -> float:
    """A constraint value -> 0..1 along the chart (log axes put 0 at the left end)."""
    if d.log:
        lo = math.log10(d.low if d.low > 0 else d.high * 1e-9)
        return 0.0 if v <= 0 else min(max((math.log10(v) - lo) / (math.log10(d.high) - lo), 0.0), 1.0)
    return (v - d.low) / (d.high - d.low)


def band(d: Dimension, first: str | None, points: list[BreakPoint]) -> Band:
    edges = [0.0, *(axis(d, p.value) for p in points), 1.0]
    picks = [first, *(p.after for p in points)]
    segments = tuple((a, b, p or "none qualifies") for a, b, p in zip(edges, edges[1:], picks, strict=False))
    ticks = tuple((axis(d, v), f"{v:.3g}") for v in (grid(d, 5) if not d.log else
                                                    [d.low, d.high ** 0.25, d.high ** 0.5, d.high]))
    return Band(d.label, segments, ticks)


def sweep_dimension(analysis: Any, base: Constraints, d: Dimension) -> dict[str, Any]:
    points = break_points(analysis, base, d)
    low = round(d.low) if d.integer else d.low
    first = recommend(analysis, base.model_copy(update={d.name: low})).pick
    return {"dimension": d.name, "label": d.label, "low": d.low, "high": d.high, "log": d.log,
            "pick_at_low": first,
            "break_points": [{**plain(p), "agrees": agrees(d, p)} for p in points]}


def markdown(result: dict[str, Any]) -> str:
    lines = [f"Run `{result['run']}` ({result['suite']}), constraints {result['constraints'] or 'none'}; "
             f"pick under them: **{result['pick']}**.", "",
             "| constraint | range | pick at the low end | break point | pick below | pick from there | "
             "explained by | agrees |", "|---|---|---|---|---|---|---|---|"]
    for dim in result["dimensions"]:
        rng = f"{dim['low']:g} to {dim['high']:g}"
        if not dim["break_points"]:
            lines.append(f"| {dim['label']} | {rng} | {dim['pick_at_low']} | none | | | | |")
        for p in dim["break_points"]:
            explained = "–" if p["explained"] is None else f"{p['explained']:.6g}"
            lines.append(f"| {dim['label']} | {rng} | {dim['pick_at_low']} | {p['value']:.6g} | {p['before']} | "
                         f"{p['after']} | {explained} ({p['reason']}) | {p['agrees']} |")
    lines += ["", "Each constraint is swept alone over its range (the run's own constraints for the others) and "
              "the pick re-decided from the same records; a break point is found by bisection and compared with "
              "the figure the cost model or the measurements give for it."]
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run", nargs="?", type=Path, default=None)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = ap.parse_args()
    run = load_run(args.run or newest_run(Path("reports/legal-qa")))
    base = Constraints.model_validate(run.constraints)
    analysis = analyze(with_arms(list(run.records)))
    dims = [sweep_dimension(analysis, base, d) for d in DIMENSIONS]
    result = {"run": run.run_id, "suite": run.suite, "constraints": run.constraints,
              "pick": recommend(analysis, base).pick, "dimensions": dims}
    by_name = {d.name: d for d in DIMENSIONS}
    chart = bands([band(by_name[x["dimension"]], x["pick_at_low"],
                        [BreakPoint(**{k: v for k, v in p.items() if k != "agrees"}) for p in x["break_points"]])
                   for x in dims], f"Pick along each constraint ({run.suite})")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "decision_sweeps.json").write_text(json.dumps(result, indent=1))
    (args.out / "decision_sweeps.md").write_text(markdown(result))
    (args.out / "decision_sweeps.svg").write_text(chart)
    print(markdown(result))


if __name__ == "__main__":
    main()
