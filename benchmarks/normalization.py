"""Which choice rule measures better: summed log-likelihood (`normalize = "none"`) or per byte
(`"bytes"`, lm-eval's acc_norm), on the built-in suites' dev splits, for the prompt strategies the
harness runs by default (zero-shot, few-shot) and each model given.

Only legal-qa's clause-type has a dev split among the built-in choice tasks; the general suite's
multiple-choice questions (its test split: the retention instrument, scored zero-shot with no system
prompt as retention scores it) are shown beside it, marked as such. Both rules are computed from the
same forward passes (ranked_choice records both), so the comparison is paired.

    python benchmarks/normalization.py [--models smollm2-135m-instruct,gemma-3-270m] [--out DIR]

Writes DIR/normalization.json and .md (default DIR: benchmarks/results).
"""

from __future__ import annotations

import argparse
import json
import platform
from dataclasses import replace
from pathlib import Path
from typing import Any

from harness.core.stats import mcnemar_exact
from harness.data.catalog import load_suite
from harness.data.evaluation import evaluate_task
from harness.data.prompts import zero_shot_prompt
from harness.model.load import load_runtime
from harness.model.spec import resolve_model
from harness.strategy.protocol import RunContext
from harness.strategy.registry import Registry


def rows_for(rt: Any, spec: Any, registry: Registry) -> list[dict[str, Any]]:
    legal = load_suite("legal-qa")
    clause = next(t for t in legal.tasks if t.name == "clause-type")
    dev = replace(clause, test=clause.dev)
    run = RunContext(0, rt.device, Path("/tmp/harness-normalization"), Path("/tmp/harness-normalization"), spec,
                     lambda: rt)
    out = []
    for name in ("zero-shot", "few-shot"):
        cls = registry.get(name)
        strategy = cls(cls.Options())
        strategy.adapt(run, replace(legal, tasks=(dev,)))
        preds, _ = evaluate_task(rt, dev, dev.test, strategy.prompts(run, dev, dev.test))
        out.append(_row(spec.ref, "legal-qa clause-type (dev)", name, preds))
    general = load_suite("general")
    mc = next(t for t in general.tasks if t.spec.ranks_choices)
    preds, _ = evaluate_task(rt, mc, mc.test, [zero_shot_prompt(mc, ex, "") for ex in mc.test])
    out.append(_row(spec.ref, "general mc (test: the retention items)", "plain zero-shot", preds))
    return out


def _row(model: str, task: str, strategy: str, preds: list[Any]) -> dict[str, Any]:
    summed = [p.scores["accuracy"] for p in preds]
    normed = [p.scores["accuracy_norm"] for p in preds]
    return {"model": model, "task": task, "strategy": strategy, "n": len(preds),
            "accuracy_sum": sum(summed) / len(preds), "accuracy_norm": sum(normed) / len(preds),
            "p_mcnemar": mcnemar_exact(normed, summed)}


def markdown(rows: list[dict[str, Any]], machine: str) -> str:
    lines = [f"Choice rule on the built-in suites ({machine}); paired on the same forwards, exact McNemar.", "",
             "| model | task | strategy | n | summed (none) | per byte (bytes) | p |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['model']} | {r['task']} | {r['strategy']} | {r['n']} | {r['accuracy_sum']:.3f} | "
                     f"{r['accuracy_norm']:.3f} | {r['p_mcnemar']:.2g} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default="smollm2-135m-instruct,gemma-3-270m")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = ap.parse_args()
    registry = Registry.discover()
    rows = []
    for ref in args.models.split(","):
        spec = resolve_model(ref)
        rows += rows_for(load_runtime(spec, "cpu"), spec, registry)
    machine = f"{platform.machine()}, CPU"
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "normalization.json").write_text(json.dumps({"machine": machine, "rows": rows}, indent=1))
    (args.out / "normalization.md").write_text(markdown(rows, machine))
    print(markdown(rows, machine))


if __name__ == "__main__":
    main()
