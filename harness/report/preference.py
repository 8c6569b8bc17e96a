"""The report's "Preference and RL" section, from records alone: the cells of the preference and
reinforcement strategies (dpo, grpo, rlhf, rlaif, and any plugin recording the same figures), found by
what their records carry (`pref_pairs` or `rl_prompts` among the adaptation extras), beside SFT LoRA
(`lora`) trained on the same budget. Per strategy: the usual score, forgetting, cost and training
budget (from the summary), and what only they have: the reward at the start and end of RL (task
metric or reward model), the KL divergence from the base (measured on gold answers after training,
and TRL's own KL to the starting policy at the last RL step), the reward model's held-out pair
accuracy, the judge's agreement with gold; and the reward curves as a chart.
"""

from __future__ import annotations

import math
from typing import Any

from harness.core.records import CellRecord
from harness.report import charts

MARKERS = ("pref_pairs", "rl_prompts")
"""Adaptation extras that only preference and RL strategies record."""
BESIDE = "lora"
"""The supervised strategy shown beside them (the same budget rules)."""
CURVES = {"reward": "RL reward (task metric or reward model)", "reward_margin": "DPO implicit reward margin"}


def is_preference(rec: CellRecord) -> bool:
    return rec.status == "ok" and any(k in rec.adapt.extras for k in MARKERS)


def _mean(records: list[CellRecord], key: str) -> float | None:
    values = [r.adapt.extras[key] for r in records if key in r.adapt.extras and not math.isnan(r.adapt.extras[key])]
    return sum(values) / len(values) if values else None


def _num(x: float | None, digits: int = 3) -> str:
    return "–" if x is None else f"{x:.{digits}f}"


def _extras_text(cells: list[CellRecord]) -> dict[str, str]:
    """The preference and RL figures of one strategy's cells, averaged over seeds, as display text."""
    start, end = _mean(cells, "rl_reward_start"), _mean(cells, "rl_reward_end")
    known = _mean(cells, "judge_known")
    agreement = _mean(cells, "judge_agreement")
    return {
        "pairs": _num(_mean(cells, "pref_pairs"), 0),
        "reward": "–" if start is None or end is None else f"{start:.3f} → {end:.3f}",
        "kl": _num(_mean(cells, "kl_to_base"), 4),
        "rl_kl": _num(_mean(cells, "rl_kl_end"), 4),
        "rm_accuracy": "–" if _mean(cells, "rm_accuracy") is None else
        f"{_mean(cells, 'rm_accuracy'):.3f} (n={_num(_mean(cells, 'rm_heldout_pairs'), 0)})",
        "judge": "–" if agreement is None else f"{agreement:.3f} (n={_num(known, 0)})",
        "dpo_accuracy": _num(_mean(cells, "dpo_reward_accuracy")),
    }


def _row(strategy: str, cells: list[CellRecord], summary: Any, budget_text: Any, usd: Any) -> dict[str, Any]:
    s = summary.s if summary is not None else None
    score = "–" if s is None else f"{s.score.mean:.3f} [{s.score.low:.3f}, {s.score.high:.3f}]"
    forgetting = "–" if s is None or s.forgetting_pt is None else f"{s.forgetting_pt:+.1f}"
    budget = s.budget if s is not None else None
    return {"strategy": strategy, "score": score, "forgetting": forgetting,
            "adapt_usd": usd(summary.cost.adapt_usd) if summary is not None else "–",
            "adapt_s": _num(s.adapt_s, 1) if s is not None else "–", "budget": budget_text(budget),
            "capped": bool(budget is not None and budget.capped), "notes": cells[0].adapt.notes if cells else "",
            **_extras_text(cells)}


def reward_chart(records: list[CellRecord]) -> str | None:
    """Reward curves against the optimizer step: RL rewards, and DPO's implicit reward margins (dashed);
    the first seed of each strategy."""
    lines = []
    for rec in sorted(records, key=lambda r: (r.strategy, r.seed)):
        if rec.seed != min(r.seed for r in records if r.strategy == rec.strategy):
            continue
        for key, dashed in (("reward", False), ("reward_margin", True)):
            pts = tuple((row["step"], row[key]) for row in rec.adapt.curve if key in row)
            if pts:
                lines.append(charts.Line(f"{rec.strategy} {key.replace('_', ' ')}", pts, dashed))
    return charts.lines(lines, "Reward curves", "optimizer step", "reward") if lines else None


def preference_context(records: list[CellRecord], ctx: dict[str, Any]) -> dict[str, Any]:
    """`preference` (None when no such cell ran) and the report's charts with the reward curves added:
    what report.md.j2 and report.html.j2 read. `ctx` is the report's context (summary rows, charts,
    the budget and USD formatters)."""
    cells = [r for r in records if is_preference(r)]
    if not cells:
        return {"preference": None}
    by_strategy: dict[str, list[CellRecord]] = {}
    for r in cells + [r for r in records if r.strategy == BESIDE and r.status == "ok"]:
        by_strategy.setdefault(r.strategy, []).append(r)
    summaries = {row.s.strategy: row for row in ctx["summary"]}
    order = ([BESIDE] if BESIDE in by_strategy else []) + sorted(s for s in by_strategy if s != BESIDE)
    rows = [_row(s, by_strategy[s], summaries.get(s), ctx["budget"], ctx["usd"]) for s in order]
    chart = reward_chart(cells)
    section = {"rows": rows, "capped": [r["strategy"] for r in rows if r["capped"]], "beside": BESIDE,
               "charts": ["rewards"] if chart else []}
    return {"preference": section, "charts": {**ctx["charts"], **({"rewards": chart} if chart else {})}}
