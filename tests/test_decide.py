"""Analysis, cost model and the recommendation, on synthetic records with known answers."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

from harness.core.errors import HarnessError
from harness.core.records import (
    AdaptReport,
    CellRecord,
    KnowledgeUpdate,
    LatencySummary,
    Prediction,
    Provenance,
    Retention,
    TaskResult,
)
from harness.core.stats import grouped_ci, grouped_paired_test
from harness.decide.analysis import analyze
from harness.decide.cost import Cost, break_even, break_evens, fmt_count, fmt_usd, hardware_key, strategy_cost
from harness.decide.decision import Constraints, pareto, parse_weights, recommend


def prov(device: str = "cpu", accelerator: str | None = None) -> Provenance:
    return Provenance("0", {}, None, None, "3.11", "linux", 2, device, accelerator, "t0", "t1")


def cell(strategy: str, correct: list[int], *, seed: int = 0, adapt_s: float = 0.0, items_per_s: float = 10.0,
         p50_s: float = 0.1, forgot: float = 0.0, mem: int = 10**9, status: str = "ok",
         f1: list[float] | None = None) -> CellRecord:
    """A cell with a classification task (`correct`) and optionally a short-answer task (`f1`)."""
    preds = [Prediction(f"c{i}", "ct", "a", "a", {"accuracy": float(c)}, p50_s, 10, 0) for i, c in enumerate(correct)]
    tasks = [TaskResult("ct", "classification", len(correct), {"accuracy": float(np.mean(correct or [0]))})]
    if f1 is not None:
        preds += [Prediction(f"q{i}", "qa", "x", "y", {"exact_match": float(v == 1), "f1": v}, p50_s, 10, 3)
                  for i, v in enumerate(f1)]
        tasks.append(TaskResult("qa", "short-answer", len(f1), {"exact_match": 0.0, "f1": float(np.mean(f1))},
                                main_metric="f1"))
    lost = round(forgot)  # of 100 retention items the base answers 60 right; `forgot` of those now wrong
    base_mc, mine_mc = (1.0,) * 60 + (0.0,) * 40, (0.0,) * lost + (1.0,) * (60 - lost) + (0.0,) * 40
    base_ce, mine_ce = (3.0,) * 10, (3.0 + forgot / 10,) * 10
    base = (TaskResult("mc", "multiple-choice", 100, {"accuracy_norm": 0.6}, "accuracy_norm"),
            TaskResult("text", "language-modeling", 10, {"cross_entropy": 3.0}, "cross_entropy"))
    mine = (TaskResult("mc", "multiple-choice", 100, {"accuracy_norm": 0.6 - lost / 100}, "accuracy_norm"),
            TaskResult("text", "language-modeling", 10, {"cross_entropy": 3.0 + forgot / 10}, "cross_entropy"))
    ids = {"mc": tuple(f"m{i}" for i in range(100)), "text": tuple(f"t{i}" for i in range(10))}
    retention = Retention("general", mine, base, ids, {"mc": mine_mc, "text": mine_ce},
                          {"mc": base_mc, "text": base_ce})
    return CellRecord(
        cell_id=f"{strategy}-{seed}", suite="s", suite_hash="h", strategy=strategy, options={}, seed=seed,
        model="m", limit=None, status=status, error=None if status == "ok" else "needs CUDA",
        tasks=tuple(tasks) if status == "ok" else (), predictions=tuple(preds) if status == "ok" else (),
        adapt=AdaptReport(wall_s=adapt_s, peak_mem_bytes=mem),
        latency=LatencySummary(p50_s, 2 * p50_s, p50_s, items_per_s, 10, 1, 8) if status == "ok" else None,
        retention=retention if status == "ok" else None, provenance=prov(),
    )


# ---------------------------------------------------------------- statistics


def test_grouped_interval_covers_the_true_macro_mean_about_95_percent_of_the_time():
    rng = np.random.default_rng(7)
    covered, trials = 0, 300
    for t in range(trials):
        groups = [rng.binomial(1, 0.3, size=60), rng.binomial(1, 0.7, size=30)]
        ci = grouped_ci(groups, seed=t, n_boot=1000)
        covered += ci.low <= 0.5 <= ci.high
    assert 0.90 <= covered / trials <= 0.99


def test_grouped_paired_test_is_seeded_and_separates_signal_from_noise():
    rng = np.random.default_rng(1)
    a = {("t1", f"i{i}"): float(v) for i, v in enumerate(rng.uniform(0.4, 1, 50))}
    a |= {("t2", f"i{i}"): float(v) for i, v in enumerate(rng.uniform(0.4, 1, 20))}
    better = {k: v + 0.3 for k, v in a.items()}
    shuffled = dict(zip(a, rng.permutation(list(a.values())), strict=True))
    assert grouped_paired_test("b", better, "a", a).p_value < 0.01
    assert grouped_paired_test("s", shuffled, "a", a).p_value > 0.05
    assert grouped_paired_test("b", better, "a", a, seed=3) == grouped_paired_test("b", better, "a", a, seed=3)


def test_analysis_averages_seeds_and_reports_their_spread():
    recs = [cell("lora", [1] * 6 + [0] * 4, seed=0), cell("lora", [1] * 8 + [0] * 2, seed=1)]
    s = analyze(recs).get("lora")
    assert s.seeds == (0, 1) and s.seed_scores == (0.6, 0.8)
    assert s.score.mean == pytest.approx(0.7)
    assert s.seed_spread == pytest.approx(np.std([0.6, 0.8], ddof=1))


def test_headline_score_weighs_tasks_equally_and_forgetting_is_in_points():
    rec = cell("lora", [1, 1, 1, 1], f1=[0.0, 0.5], forgot=4.0)
    s = analyze([rec]).get("lora")
    assert s.score.mean == pytest.approx((1.0 + 0.25) / 2)
    assert set(s.tasks) == {"ct", "qa"}
    assert s.forgetting_pt == pytest.approx(4.0)
    assert s.ce_delta == pytest.approx(0.4)


# ---------------------------------------------------------------- cost


def test_hardware_keys_and_price_override():
    assert hardware_key("cpu", None) == "cpu"
    assert hardware_key("cuda:0", "NVIDIA H100 80GB HBM3") == "h100"
    assert hardware_key("cuda", "NVIDIA A100-SXM4-80GB") == "a100"
    assert hardware_key("cuda", "Tesla T4") == "gpu"
    s = analyze([cell("lora", [1, 0], adapt_s=3600, items_per_s=2.0)]).get("lora")
    c = strategy_cost(s, price_per_hour=3.6)
    assert c.adapt_usd == pytest.approx(3.6)
    assert c.usd_per_1k_queries == pytest.approx(3.6 / 3600 * 0.5 * 1000)
    assert strategy_cost(s, prices={"cpu": 1.0}).adapt_usd == pytest.approx(1.0)


def test_break_even_arithmetic():
    rag = Cost("rag", "cpu", 1.0, adapt_usd=1.0, usd_per_1k_queries=2.0, update_usd=None)
    ft = Cost("full-ft", "cpu", 1.0, adapt_usd=47.0, usd_per_1k_queries=0.02, update_usd=None)
    # 46 dollars more up front, 1.98 dollars less per 1,000 queries: 46 / 0.00198 queries
    assert break_even(ft, rag) == pytest.approx(46 / 0.00198)
    assert break_even(rag, ft) is None
    assert ft.total(break_even(ft, rag)) == pytest.approx(rag.total(break_even(ft, rag)))
    assert [(a.strategy, b.strategy) for a, b, _ in break_evens([rag, ft])] == [("full-ft", "rag")]
    assert fmt_count(2.3e6) == "2.3 M" and fmt_usd(0) == "$0" and fmt_usd(0.0083) == "$0.0083"


# ---------------------------------------------------------------- decision


def test_best_score_wins_when_it_is_significantly_better():
    recs = [cell("zero-shot", [0] * 30 + [1] * 10), cell("lora", [1] * 36 + [0] * 4, adapt_s=600)]
    d = recommend(analyze(recs), Constraints())
    assert d.pick == "lora"
    assert d.rationale[0].startswith("Pick lora: score 0.900")
    assert "every other scores significantly lower" in d.rationale[1]


def test_not_significant_is_underpowered_not_tied_and_the_leader_keeps_the_pick():
    a = [1] * 20 + [0] * 20
    b = [1] * 21 + [0] * 19  # one item better of 40: neither different nor shown within 2 points
    recs = [cell("few-shot", a), cell("lora", b, adapt_s=900)]
    d = recommend(analyze(recs), Constraints())
    assert d.pick == "lora" and d.tied == () and d.underpowered == ("few-shot",)
    text = " ".join(d.rationale)
    assert "underpowered" in text and "smallest detectable difference" in text and "items would separate" in text
    assert any("not shown better than few-shot" in w for w in d.warnings)
    assert "40 test items and 1 seed" in d.power


def test_shown_equivalent_goes_to_the_cheaper_and_says_so():
    rng = np.random.default_rng(3)
    a = list(rng.integers(0, 2, 3000))
    b = list(a)
    for i in rng.choice(3000, 30, replace=False):  # 1% of the items answered the other way
        b[i] = 1 - b[i]
    recs = [cell("few-shot", a if np.mean(a) <= np.mean(b) else b), cell("lora", b if np.mean(a) <= np.mean(b) else a,
                                                                       adapt_s=900)]
    d = recommend(analyze(recs), Constraints())
    assert d.pick == "few-shot" and d.tied == ("few-shot",) and d.underpowered == ()
    assert "lora leads on score, but few-shot is shown equivalent to it" in d.rationale[1]
    assert "equivalent within" in d.rationale[1] and "cheaper" in d.rationale[1]


def test_a_wider_margin_can_make_a_tie():
    a = [1] * 300 + [0] * 300
    b = [0] * 27 + [1] * 273 + [1] * 33 + [0] * 267  # 60 items differ both ways: +1 point net on 600
    recs = [cell("few-shot", a), cell("lora", b, adapt_s=900)]
    assert recommend(analyze(recs), Constraints()).pick == "lora"
    assert recommend(analyze(recs), Constraints(margin_pt=6)).pick == "few-shot"


@pytest.mark.parametrize(("constraint", "excluded", "says"), [
    ({"max_latency_ms": 200}, "lora", "p50 latency 500 ms > 200 ms limit"),
    ({"max_forgetting_pt": 1.0}, "lora", "forgetting 15.0 pt [95% CI"),
    ({"max_memory_gb": 2.0}, "lora", "peak memory 4.00 GB > 2.00 GB limit"),
    ({"budget_usd": 0.01, "price_per_hour": 1.0}, "lora", "total cost $0.25 > $0.01 budget"),
])
def test_each_constraint_excludes_with_the_measured_number(constraint, excluded, says):
    recs = [cell("zero-shot", [0] * 30 + [1] * 10),
            cell("lora", [1] * 38 + [0] * 2, adapt_s=900, p50_s=0.5, forgot=15.0, mem=4 * 10**9)]
    d = recommend(analyze(recs), Constraints(**constraint))
    assert d.pick == "zero-shot"
    opt = next(o for o in d.options if o.strategy == excluded)
    assert opt.excluded is not None and opt.excluded.startswith(says)
    assert f"Excluded: lora ({opt.excluded})." in d.rationale


def test_forgetting_whose_interval_straddles_the_limit_may_exceed_it():
    recs = [cell("zero-shot", [0] * 30 + [1] * 10), cell("lora", [1] * 38 + [0] * 2, forgot=3.0)]
    d = recommend(analyze(recs), Constraints(max_forgetting_pt=3.0))
    lora = next(o for o in d.options if o.strategy == "lora")
    assert lora.excluded is None and lora.flags and "may exceed the 3.0 pt limit" in lora.flags[0]
    assert d.pick == "lora" and any("Caution for lora" in line for line in d.rationale)
    f = analyze(recs).get("lora").forgetting
    assert f.lost.mean == pytest.approx(3 / 60) and f.gained.mean == 0.0 and f.ce_delta.mean == pytest.approx(0.3)


def test_queries_per_month_enter_the_budget_through_serving_cost():
    recs = [cell("rag", [1] * 38 + [0] * 2, items_per_s=0.5), cell("lora", [1] * 38 + [0] * 2, adapt_s=36)]
    c = Constraints(queries_per_month=10_000, months=12, price_per_hour=1.0)
    d = recommend(analyze(recs), c)
    rag = next(o for o in d.options if o.strategy == "rag")
    assert rag.tco_usd == pytest.approx(120_000 * 2 / 3600)
    assert d.pick == "lora"  # tied on score; cheaper over a year of queries


def test_skipped_cells_are_excluded_with_their_reason_and_nothing_left_is_said():
    d = recommend(analyze([cell("qlora", [], status="skipped")]), Constraints())
    assert d.pick is None and "qlora (skipped: needs CUDA)" in d.rationale[0]


def test_weights_trade_accuracy_for_cost_and_pareto_front():
    recs = [cell("cheap", [1] * 28 + [0] * 12), cell("pricey", [1] * 40, adapt_s=36000)]
    an = analyze(recs)
    assert recommend(an, Constraints()).pick == "pricey"
    d = recommend(an, Constraints(weights={"accuracy": 1, "cost": 3}))
    assert d.pick == "cheap"
    assert pareto(list(d.options)) == {"cheap", "pricey"}


def test_recommendation_is_stable():
    recs = [cell("zero-shot", [0, 1] * 20), cell("few-shot", [1, 1, 0] * 13 + [1]), cell("lora", [1] * 40)]
    one = recommend(analyze(recs), Constraints(max_latency_ms=900))
    two = recommend(analyze(list(reversed(recs))), Constraints(max_latency_ms=900))
    assert one.pick == two.pick and one.rationale == two.rationale


def test_parse_weights_rejects_junk():
    assert parse_weights("accuracy=1, cost=0.5") == {"accuracy": 1.0, "cost": 0.5}
    with pytest.raises(HarnessError):
        parse_weights("accuracy=lots")
    with pytest.raises(HarnessError):
        parse_weights("cost")
    with pytest.raises(ValueError):
        Constraints(weights={"speed": 1.0})


def test_knowledge_update_cost_is_priced():
    rec = cell("rag", [1, 0])
    rec = replace(rec, adapt=replace(rec.adapt, update=KnowledgeUpdate(2, 36.0, "index-add", 4)))
    c = strategy_cost(analyze([rec]).get("rag"), price_per_hour=1.0)
    assert c.update_usd == pytest.approx(0.01)
    assert math.isfinite(c.usd_per_1k_queries)


def test_ties_go_to_the_cheaper_only_when_ranking_by_score():
    fast = cell("fast", [1] * 30 + [0] * 20, p50_s=0.01, adapt_s=3600)
    slow = cell("slow", [1] * 31 + [0] * 19, p50_s=5.0)
    d = recommend(analyze([fast, slow]), Constraints(weights={"latency": 1}))
    assert d.pick == "fast" and d.tied == ()
    assert "scores significantly lower" not in " ".join(d.rationale)
    assert recommend(analyze([fast, slow]), Constraints()).pick == "slow"  # tied on score: slow costs $0


def test_paired_tests_are_symmetric_in_their_arguments():
    rng = np.random.default_rng(4)
    recs = [cell("a", list(rng.integers(0, 2, 40)), f1=list(rng.random(15))),
            cell("b", list(rng.integers(0, 2, 40)), f1=list(rng.random(15)))]
    an = analyze(recs)
    ab, ba = an.compare("a", "b"), an.compare("b", "a")
    assert ab.p_value == ba.p_value and ab.diff == -ba.diff and ba.a == "b" and (ab.low, ab.high) == (-ba.high, -ba.low)


def test_no_shared_items_is_not_a_tie():
    one = cell("one", [1] * 20)
    other = replace(cell("other", [0] * 20), predictions=tuple(
        replace(p, example_id=f"x{p.example_id}") for p in cell("other", [0] * 20).predictions))
    assert recommend(analyze([one, other]), Constraints()).pick == "one"


def test_missing_latency_counts_as_the_worst_not_the_best():
    a = cell("a", [1] * 20)
    b = replace(cell("b", [1] * 20), latency=None)
    d = recommend(analyze([a, b]), Constraints(weights={"latency": 1}))
    assert d.pick == "a"


def test_constraints_reject_non_finite_weights_and_unknown_hardware():
    with pytest.raises(ValueError, match="finite"):
        Constraints(weights={"accuracy": float("inf")})
    with pytest.raises(ValueError, match="unknown hardware"):
        Constraints(prices={"tpu": 1.0})
    with pytest.raises(HarnessError):
        parse_weights("accuracy=inf")


def test_cli_shows_error_text_with_brackets_verbatim(capsys):
    from harness.cli.recommend import show

    failed = replace(cell("x", [], status="failed"), error="[/INST] broke [bold]")
    show(recommend(analyze([cell("a", [1, 0]), failed]), Constraints()))
    assert "[/INST] broke [bold]" in capsys.readouterr().out


def test_a_pick_off_the_leaders_side_never_claims_an_equivalence_it_did_not_show():
    """Every arm scores nothing (knowledge-and-style under the CPU cap): whichever leads by order may be
    off the Pareto front, and the pick then comes from the front; the card says that, not "shown
    equivalent" (the comparison was underpowered)."""
    nothing = [0] * 72
    recs = [cell("few-shot", nothing, p50_s=2.0), cell("zero-shot", nothing)]  # few-shot first by name
    d = recommend(analyze(recs), Constraints())
    assert d.pick == "zero-shot" and d.tied == ()
    text = " ".join(d.rationale)
    assert "is shown equivalent to it" not in text
    assert d.rationale[1] == ("few-shot leads on score but is not on the Pareto front (another scores as well at no "
                              "more cost, latency or forgetting); zero-shot is the cheapest on the front.")
