"""lora vs dpo vs grpo on legal-qa at an equal step budget on this CPU, with intervals from the run's
analysis (items and seeds drawn), and the five-strategy compare timed.

    python benchmarks/preference.py                          # lora, dpo, grpo: 24 optimizer steps each
    python benchmarks/preference.py --steps 12 --limit 20    # a smaller budget, 20 test items per task
    python benchmarks/preference.py --time-all --limit 10    # lora,dpo,grpo,rlhf,rlaif: the compare's wall time
    python benchmarks/preference.py --resummarize            # the committed runs' analysis again (times kept)

Every strategy gets the same options `max_steps = cpu_max_steps = --steps` (dpo spends them on its SFT and
DPO phases, half each; grpo on RL steps of 2 prompts x 4 completions; rlhf on its reward model and RLOO;
rlaif on SFT and DPO) and otherwise its defaults; the default model, seed 0, the retention suite on.
Writes benchmarks/results/preference.json and .md (the --time-all run adds its own part to both).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results"
COMPARED = ("lora", "dpo", "grpo")
ALL = ("lora", "dpo", "grpo", "rlhf", "rlaif")
EXTRAS = ("train_steps", "kl_to_base", "rl_reward_start", "rl_reward_end", "rl_kl_end", "dpo_reward_accuracy",
          "pref_pairs", "rm_accuracy", "judge_agreement", "judge_known")


def run_compare(strategies: tuple[str, ...], steps: int, limit: int | None, out: Path) -> tuple[Any, float, str]:
    """harness.compare from Python, every strategy at `steps` optimizer steps."""
    import harness

    options = {s: {"max_steps": steps, "cpu_max_steps": steps} for s in strategies}
    cfg = {"suite": "legal-qa", "strategies": list(strategies), "seeds": [0], "limit": limit, "out": str(out),
           "options": options}
    t0 = time.perf_counter()
    run = harness.compare(cfg)
    return run, time.perf_counter() - t0, f"harness.compare({cfg})"


def run_cli(steps: int | None, limit: int | None, out: Path) -> tuple[Any, float, str]:
    """The command line `harness compare --suite legal-qa --strategies lora,dpo,grpo,rlhf,rlaif --limit N`,
    timed (with a run.toml capping every strategy at `steps` when given; else their defaults)."""
    import subprocess
    import sys

    import harness

    cmd = [sys.executable, "-m", "harness", "compare", "--suite", "legal-qa", "--strategies", ",".join(ALL),
           "--out", str(out)] + (["--limit", str(limit)] if limit else [])
    if steps is not None:
        out.mkdir(parents=True, exist_ok=True)
        (out / "run.toml").write_text("".join(f"[options.{s}]\nmax_steps = {steps}\ncpu_max_steps = {steps}\n"
                                              for s in ALL))
        cmd += ["--config", str(out / "run.toml")]
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True)
    wall = time.perf_counter() - t0
    runs = sorted((d for d in (out / "legal-qa").iterdir() if (d / "report.json").is_file()),
                  key=lambda d: d.stat().st_mtime)
    shown = "harness compare --suite legal-qa --strategies " + ",".join(ALL) + (f" --limit {limit}" if limit else "")
    return harness.load_run(runs[-1]), wall, shown + (f" (run.toml: max_steps = cpu_max_steps = {steps})"
                                                      if steps is not None else "")


def est(e: Any) -> dict[str, float]:
    return {"mean": e.mean, "low": e.low, "high": e.high, "n_items": e.n_items}


def summarize(run: Any) -> dict[str, Any]:
    """Per strategy: score and per-task intervals, forgetting, adaptation time and budget, the training
    extras; the pairs of the compared strategies in words."""
    from harness.decide.analysis import analyze
    from harness.decide.rationale import comparison_text

    analysis = analyze(list(run.records))
    strategies = {}
    for s in analysis.summaries:
        rec = next(r for r in run.records if r.strategy == s.strategy)
        strategies[s.strategy] = {
            "status": s.status, "score": est(s.score), "tasks": {t: est(e) for t, e in s.tasks.items()},
            "task_metrics": {t.task: t.metrics for t in rec.tasks}, "forgetting_pt": s.forgetting_pt,
            "adapt_s": s.adapt_s, "budget": s.budget.reason if s.budget else None,
            "extras": {k: rec.adapt.extras[k] for k in EXTRAS if k in rec.adapt.extras}, "notes": rec.adapt.notes}
    ok = [s.strategy for s in analysis.summaries if s.status == "ok"]
    pairs = [comparison_text(analysis.compare(a, b)) for i, a in enumerate(ok) for b in ok[i + 1:]]
    caps = {r.options.get("max_steps") for r in run.records}
    steps = caps.pop() if len(caps) == 1 and None not in caps and -1 not in caps else "defaults"
    return {"strategies": strategies, "pairs": pairs, "task_metrics": analysis.task_metrics, "steps": steps}


def table(part: dict[str, Any]) -> list[str]:
    lines = ["| strategy | score [95% CI] | " + " | ".join(part["task_metrics"]) + " | forgetting pt | adapt s | "
             "budget | KL to base | reward start → end |", "|" + "---|" * (7 + len(part["task_metrics"]))]
    for name, s in part["strategies"].items():
        tasks = " | ".join(f"{s['tasks'][t]['mean']:.3f} [{s['tasks'][t]['low']:.3f}, {s['tasks'][t]['high']:.3f}]"
                           if t in s["tasks"] else "–" for t in part["task_metrics"])
        x = s["extras"]
        reward = f"{x['rl_reward_start']:.3f} → {x['rl_reward_end']:.3f}" if "rl_reward_end" in x else "–"
        kl = f"{x['kl_to_base']:.4f}" if "kl_to_base" in x else "–"
        forgetting = "–" if s["forgetting_pt"] is None else f"{s['forgetting_pt']:+.1f}"
        lines.append(f"| {name} | {s['score']['mean']:.3f} [{s['score']['low']:.3f}, {s['score']['high']:.3f}] | "
                     f"{tasks} | {forgetting} | {s['adapt_s']:.0f} | {s['budget'] or '–'} | {kl} | {reward} |")
    return lines


def markdown(results: dict[str, Any]) -> str:
    out = ["# Preference and RL strategies on legal-qa (CPU)", "",
           "Written by `benchmarks/preference.py`; every number below comes from the compare runs it made.", ""]
    for key, title in (("compared", "lora vs dpo vs grpo at an equal step budget"),
                       ("time_all", "The five-strategy compare, timed")):
        part = results.get(key)
        if not part:
            continue
        out += [f"## {title}", "", f"Command: `{part['command']}`; steps per strategy: {part['steps']}, "
                f"limit {part['limit']}, seed 0; wall time {part['wall_s']:.0f} s ({part['wall_s'] / 60:.1f} min); "
                f"load average {part['load'][0]:.1f} at the start, {part['load'][1]:.1f} at the end "
                f"(2 cores, shared with other jobs).", "", *table(part), "", "Pairs (paired over items):", ""]
        out += [f"- {p}" for p in part["pairs"]] + [""]
        out += [f"- {s['notes'] if s['notes'].startswith(name + ':') else f'{name}: ' + s['notes']}"
                for name, s in part["strategies"].items() if s["notes"]] + [""]
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=None, help="max_steps = cpu_max_steps of every strategy "
                        "(default: 24; with --time-all: the strategies' own defaults)")
    parser.add_argument("--limit", type=int, default=None, help="test items per task (default: all)")
    parser.add_argument("--out", type=Path, default=Path("/tmp/harness-preference-bench"))
    parser.add_argument("--time-all", action="store_true", help="time the five-strategy command line instead")
    parser.add_argument("--resummarize", action="store_true", help="recompute the committed parts' intervals and "
                        "tests from their run folders (after a change to the statistics; times are kept)")
    args = parser.parse_args()
    if args.resummarize:
        return resummarize()
    load0 = os.getloadavg()[0]
    if args.time_all:
        run, wall, command = run_cli(args.steps, args.limit, args.out / "time-all")
    else:
        run, wall, command = run_compare(COMPARED, args.steps or 24, args.limit, args.out / "compared")
    part = {"strategies_run": list(ALL if args.time_all else COMPARED),
            "limit": args.limit, "wall_s": wall, "load": [load0, os.getloadavg()[0]], "run": str(run.folder),
            "command": command, **summarize(run)}
    path = RESULTS / "preference.json"
    results = json.loads(path.read_text()) if path.is_file() else {}
    results["time_all" if args.time_all else "compared"] = part
    write(results)
    print(markdown(results))


def write(results: dict[str, Any]) -> None:
    """preference.json and .md under benchmarks/results."""
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "preference.json").write_text(json.dumps(results, indent=1) + "\n")
    (RESULTS / "preference.md").write_text(markdown(results))


def resummarize() -> None:
    """Each committed part's summary again from its run folder: same records, today's analysis."""
    import harness

    path = RESULTS / "preference.json"
    results = json.loads(path.read_text())
    for part in results.values():
        part.update(summarize(harness.load_run(Path(part["run"]))))
    write(results)


if __name__ == "__main__":
    main()
