"""Constraint sweeps: each change of pick sits exactly where the cost model or the measurements say it
must (the break-even of two total-cost lines, a strategy's measured p50 or peak memory)."""

import math
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from harness.core.records import KnowledgeUpdate
from harness.decide.analysis import analyze
from harness.decide.cost import break_even
from harness.decide.decision import Constraints, recommend
from harness.decide.sweeps import DIMENSIONS, break_points

sys.path.insert(0, str(Path(__file__).parent))
from test_decide import cell

SAME = [1] * 30 + [0] * 10
DIM = {d.name: d for d in DIMENSIONS}


def tied_records():
    """rag and lora answer the same items right (shown equivalent); rag is cheap to build and update and
    slow to serve, lora the other way round; zero-shot is worse and fastest (nothing to update)."""
    recs = [cell("zero-shot", [1] * 10 + [0] * 30, p50_s=0.05, items_per_s=40.0, mem=5 * 10**8),
            cell("rag", SAME, adapt_s=20.0, items_per_s=2.0, p50_s=0.4, mem=2 * 10**9),
            cell("lora", SAME, adapt_s=900.0, items_per_s=20.0, p50_s=0.1, mem=4 * 10**9, forgot=6.0)]
    update = {"zero-shot": 0.0, "rag": 2.0, "lora": 300.0}
    return [replace(r, adapt=replace(r.adapt, update=KnowledgeUpdate(3, update[r.strategy], "m", 5))) for r in recs]


@pytest.mark.parametrize("months", [1, 12])
def test_volume_break_point_is_the_cost_models_break_even(months):
    analysis, base = analyze(tied_records()), Constraints(months=months)
    points = break_points(analysis, base, DIM["queries_per_month"])
    assert [(p.before, p.after) for p in points] == [("rag", "lora")]
    costs = {o.strategy: o.cost for o in recommend(analysis, base).options}
    per_month = break_even(costs["lora"], costs["rag"]) / months
    assert points[0].value == pytest.approx(per_month, rel=1e-6)
    assert points[0].explained == pytest.approx(per_month, rel=1e-9)


def test_months_and_update_rate_break_points_match_the_total_cost_lines():
    analysis = analyze(tied_records())
    months = break_points(analysis, Constraints(queries_per_month=50), DIM["months"])
    assert [(p.before, p.after) for p in months] == [("rag", "lora")]  # serving volume adds up
    assert months[0].value == math.ceil(months[0].explained)  # whole months: the first one past the crossing
    updates = break_points(analysis, Constraints(queries_per_month=2000), DIM["updates_per_month"])
    assert [(p.before, p.after) for p in updates] == [("lora", "rag")]  # frequent updates favour retrieval
    assert updates[0].value == pytest.approx(updates[0].explained, rel=1e-6)


def test_latency_and_memory_limits_move_the_pick_at_the_measured_figures():
    analysis = analyze(tied_records())
    lat = break_points(analysis, Constraints(), DIM["max_latency_ms"])
    # nothing is fast enough, then zero-shot, then lora (better), then rag (as good, cheaper to build)
    assert [(p.before, p.after) for p in lat] == [(None, "zero-shot"), ("zero-shot", "lora"), ("lora", "rag")]
    for p, p50 in zip(lat, (50.0, 100.0, 400.0), strict=True):
        assert p.value == pytest.approx(p50, rel=1e-6) and p.explained == pytest.approx(p50)
    mem = break_points(analysis, Constraints(), DIM["max_memory_gb"])
    assert [(p.before, p.after) for p in mem] == [(None, "zero-shot"), ("zero-shot", "rag")]
    assert [p.explained for p in mem] == [pytest.approx(0.5), pytest.approx(2.0)]
    assert all(p.value == pytest.approx(p.explained, rel=1e-6) for p in mem)


def test_forgetting_limit_admits_lora_at_its_interval_lower_end():
    recs = [r for r in tied_records() if r.strategy != "rag"]
    analysis = analyze(recs)
    points = break_points(analysis, Constraints(), DIM["max_forgetting_pt"])
    assert [(p.before, p.after) for p in points] == [("zero-shot", "lora")]
    low = analysis.get("lora").forgetting.accuracy_pt.low
    assert points[0].explained == pytest.approx(low) and points[0].value == pytest.approx(low, abs=1e-6)


def test_a_pick_that_never_changes_has_no_break_points():
    recs = [cell("zero-shot", [1] * 5 + [0] * 35), cell("lora", [1] * 38 + [0] * 2, adapt_s=60.0)]
    assert break_points(analyze(recs), Constraints(), DIM["queries_per_month"]) == []


def test_the_report_shows_where_the_pick_would_change(tmp_path):
    import json

    from harness.report import write_run

    write_run(tmp_path, "run-1", tied_records(), {"queries_per_month": 100})
    md = (tmp_path / "report.md").read_text()
    assert "### When the answer would change" in md and "| queries/month | 163 | rag | lora |" in md
    points = json.loads((tmp_path / "report.json").read_text())["results"]["break_points"]
    volume = next(p for p in points if p["dimension"] == "queries_per_month")
    assert volume["value"] == pytest.approx(volume["explained"], rel=1e-6)


def test_changes_closer_than_the_grid_are_each_found():
    """Two measured latencies within one grid step (here 100 and 104 ms): each admission is a row, and
    the last row leads to the pick at the grid's next value."""
    recs = [cell("zero-shot", [1] * 10 + [0] * 30, p50_s=0.05),
            cell("lora", [1] * 20 + [0] * 20, p50_s=0.100),
            cell("full-ft", SAME, p50_s=0.104)]
    lat = break_points(analyze(recs), Constraints(), DIM["max_latency_ms"])
    assert [(p.before, p.after) for p in lat] == [(None, "zero-shot"), ("zero-shot", "lora"), ("lora", "full-ft")]
    assert [p.explained for p in lat] == [pytest.approx(50.0), pytest.approx(100.0), pytest.approx(104.0)]


def test_a_change_at_any_positive_value_is_said_so():
    """Updates a month with no update cost measured: from any value above 0 nothing qualifies, and the
    row says why (not a break point at 1e-21)."""
    recs = [cell("zero-shot", [1] * 10 + [0] * 30), cell("few-shot", SAME)]
    [p] = break_points(analyze(recs), Constraints(), DIM["updates_per_month"])
    assert (p.value, p.before, p.after) == (0.0, "few-shot", None)
    assert p.reason.startswith("any value above 0: nothing qualifies from here (few-shot is excluded: ")
