"""rag with and without solved examples (`shots`) before the passages, on legal-qa's statute-qa test
split: does a small reader learn to answer with the span instead of copying the passage?

One `harness.compare` per shot count (options are per strategy name, so each count is its own
compare into its own run folder, cells cached under --work), the default model, seed 0, no
retention (rag does not change weights). Scores: key_match (the task's main metric), exact_match,
f1 and answer_in_output, overall and by coverage (`seen`: a differently worded train question
teaches the same fact, and a similar one may be among the shots; `unseen`: only the corpus has it),
with the answers' length and a few answers side by side.

    python benchmarks/rag_shots.py --shots 0 2 4 [--retriever bm25] [--work /tmp/rag_shots]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path
from typing import Any

import harness

TASK = "statute-qa"
METRICS = ("key_match", "exact_match", "f1", "answer_in_output")


def one(shots: int, retriever: str, work: Path) -> dict[str, Any]:
    t0 = time.perf_counter()
    run = harness.compare({"suite": "legal-qa", "strategies": ["rag"], "seeds": [0], "retention": False,
                           "out": str(work / f"shots-{shots}"),
                           "options": {"rag": {"shots": shots, "retriever": retriever}}})
    [rec] = run.records
    if rec.status != "ok":
        raise SystemExit(f"rag shots={shots}: cell {rec.status}")
    preds = [p for p in rec.predictions if p.task == TASK]
    [task] = [t for t in rec.tasks if t.task == TASK]
    by_cov = {cov: {m: statistics.fmean(p.scores[m] for p in ps) for m in METRICS} | {"n": len(ps)}
              for cov in ("seen", "unseen") if (ps := [p for p in preds if p.meta.get("coverage") == cov])}
    return {"shots": shots, "n": task.n, **{m: task.metrics[m] for m in METRICS}, "by_coverage": by_cov,
            "answer_words_mean": statistics.fmean(len(p.output.split()) for p in preds),
            "prompt_tokens_mean": statistics.fmean(p.prompt_tokens for p in preds),
            "latency_s_mean": statistics.fmean(p.latency_s for p in preds),
            "retrieval_ms_mean": 1000 * statistics.fmean(p.meta.get("retrieval_s", 0.0) for p in preds),
            "wall_s": time.perf_counter() - t0, "run": str(run.folder),
            "answers": {p.example_id: p.output for p in preds}, "targets": {p.example_id: p.target for p in preds}}


def markdown(res: dict[str, Any]) -> str:
    rows = res["rows"]
    lines = [f"Command: `{res['command']}` ({res['wall_s']:.0f} s wall; {res['machine']}; model {res['model']}; "
             f"rag retriever {res['retriever']}, k=3, seed 0)", "",
             f"legal-qa {TASK}, test split ({rows[0]['n']} questions):", "",
             "| shots | " + " | ".join(METRICS) + " | seen key_match | unseen key_match | answer words | prompt tok "
             "| s per query |", "|---|" + "---|" * (len(METRICS) + 5)]
    for r in rows:
        cov = r["by_coverage"]
        seen = cov.get("seen", {}).get("key_match")
        unseen = cov.get("unseen", {}).get("key_match")
        lines.append(f"| {r['shots']} | " + " | ".join(f"{r[m]:.3f}" for m in METRICS)
                     + f" | {_f(seen)} (n={cov.get('seen', {}).get('n', 0)}) | {_f(unseen)} "
                     f"(n={cov.get('unseen', {}).get('n', 0)}) | {r['answer_words_mean']:.1f} | "
                     f"{r['prompt_tokens_mean']:.0f} | {r['latency_s_mean']:.1f} |")
    lines += ["", "Answers side by side (the first items where the shot counts disagree):", "",
              "| target | " + " | ".join(f"shots={r['shots']}" for r in rows) + " |", "|---|" + "---|" * len(rows)]
    first = rows[0]
    differ = [i for i in first["answers"] if len({r["answers"][i] for r in rows}) > 1][:6]
    for i in differ:
        cells = [r["answers"][i].replace("|", "/").replace("\n", " ")[:90] for r in rows]
        lines.append(f"| {first['targets'][i]} | " + " | ".join(cells) + " |")
    lines += ["", f"Decision: {res['decision']}"]
    return "\n".join(lines) + "\n"


def _f(x: float | None) -> str:
    return "–" if x is None else f"{x:.3f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shots", type=int, nargs="+", default=[0, 2, 4])
    ap.add_argument("--retriever", default="bm25")
    ap.add_argument("--work", type=Path, default=Path("/tmp/rag_shots"))
    ap.add_argument("--decision", default="", help="what the numbers decided (written into the markdown)")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = ap.parse_args()
    t0 = time.perf_counter()
    rows = [one(k, args.retriever, args.work) for k in args.shots]
    best = max(rows, key=lambda r: (r["key_match"], r["exact_match"], -r["shots"]))
    from harness.model.spec import resolve_model

    res = {"command": "python benchmarks/rag_shots.py --shots " + " ".join(map(str, args.shots))
           + f" --retriever {args.retriever}", "wall_s": time.perf_counter() - t0,
           "machine": f"{platform.machine()}, 2 CPU cores shared with other jobs, no GPU",
           "model": resolve_model(None).identity, "retriever": args.retriever, "best_shots": best["shots"],
           "decision": args.decision or f"best key_match at shots={best['shots']}", "rows": rows}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "rag_shots.json").write_text(json.dumps(res, indent=1) + "\n")
    (args.out / "rag_shots.md").write_text(markdown(res))
    print(markdown(res))


if __name__ == "__main__":
    main()
